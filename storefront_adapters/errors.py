"""Errors raised by the storefront adapters.

Every error carries a message a merchant-facing operator can act on. None of them ever
includes credential material: adapters build messages from platform codes and texts only.
"""

from __future__ import annotations


class StorefrontError(Exception):
    """Base class for every error raised by this package."""


class ListingError(StorefrontError, ValueError):
    """A listing or price/stock update that cannot be sent as given (e.g. a negative price)."""


class AmountError(StorefrontError, ValueError):
    """A money amount that cannot be represented exactly in integer fen."""


class WebhookError(StorefrontError):
    """Base class for rejected webhook deliveries: nothing from them may be stored."""


class WebhookSignatureError(WebhookError):
    """The delivery's signature is missing or does not match."""


class WebhookPayloadError(WebhookError, ValueError):
    """The delivery is signed correctly but its body or headers are malformed."""


class PlatformError(StorefrontError):
    """The platform answered with an error (HTTP status and/or its own error code)."""

    def __init__(
        self,
        platform: str,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
    ) -> None:
        self.platform = platform
        self.message = message
        self.status = status
        self.code = code
        details = [f"HTTP {status}"] if status is not None else []
        if code:
            details.append(f"code {code}")
        suffix = f" ({', '.join(details)})" if details else ""
        super().__init__(f"{platform}: {message}{suffix}")


class AuthenticationError(PlatformError):
    """The platform rejected the credentials (wrong, expired or revoked)."""


class ThrottledError(PlatformError):
    """Still throttled after the bounded retries, or asked to wait longer than we will."""

    def __init__(
        self,
        platform: str,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(platform, message, status=status, code=code)
        self.retry_after = retry_after


class UnknownProductError(PlatformError):
    """The platform does not know the product id."""


class UnknownSkuError(PlatformError):
    """The product exists but has no SKU with the given code."""
