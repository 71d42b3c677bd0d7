"""Shared HTTP: bounded retries with exponential backoff and jitter, Retry-After on 429.

Logs name the platform, method, path, status and attempt only. Query strings, headers and
bodies are never logged because Douyin Shop and Youzan carry access tokens in the query.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp

from storefront_adapters.clock import Clock
from storefront_adapters.errors import PlatformError, ThrottledError

#: Looks at a response that came back 2xx and says how long to wait before retrying it
#: (a body-level throttle such as Shopify's THROTTLED), or None when it is final.
ThrottleProbe = Callable[["HttpResponse"], float | None]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    jitter: float = 0.2  # each delay is scaled by a random factor in [1 - jitter, 1 + jitter]
    #: A Retry-After longer than this is not waited out in-line: the caller gets a
    #: ThrottledError with ``retry_after`` and can reschedule the whole job.
    max_retry_after: float = 120.0
    retry_statuses: frozenset[int] = field(default_factory=lambda: frozenset({429, 502, 503, 504}))

    def backoff(self, attempt: int, rng: random.Random) -> float:
        delay = min(self.max_delay, self.base_delay * float(2 ** (attempt - 1)))
        return delay * rng.uniform(1 - self.jitter, 1 + self.jitter)


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes
    platform: str

    def json(self) -> Any:
        try:
            return json.loads(self.body, parse_float=Decimal)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise PlatformError(
                self.platform, f"response is not JSON ({exc})", status=self.status
            ) from exc

    def json_or_none(self) -> Any:
        """The JSON body, or None when there is none or it is not JSON (a proxy's error page)."""
        try:
            return self.json()
        except PlatformError:
            return None


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP-date."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


class HttpClient:
    def __init__(
        self,
        platform: str,
        session: aiohttp.ClientSession,
        *,
        clock: Clock,
        policy: RetryPolicy | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.platform = platform
        self._session = session
        self._clock = clock
        self._policy = policy or RetryPolicy()
        self._rng = rng or random.Random()  # noqa: S311 (jitter, not cryptography)
        self._log = logging.getLogger(f"storefront_adapters.{platform}")
        self.attempts = 0  # total HTTP attempts made, for metrics and tests

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool = True,
        throttle_probe: ThrottleProbe | None = None,
    ) -> HttpResponse:
        """Send with retries; returns the final response (any status) for the caller to map.

        Non-idempotent requests (creates) are retried only when the platform says it did not
        process them (429 or a body-level throttle), never after a 5xx or a network error.
        """
        policy = self._policy
        path = url.split("?", 1)[0]
        for attempt in range(1, policy.max_attempts + 1):
            self.attempts += 1
            try:
                async with self._session.request(
                    method,
                    url,
                    params=params,
                    json=json_body,
                    data=data,
                    headers=headers,
                ) as raw:
                    response = HttpResponse(
                        raw.status, dict(raw.headers), await raw.read(), self.platform
                    )
            except (aiohttp.ClientError, TimeoutError) as exc:
                reason = type(exc).__name__
                if not idempotent or attempt == policy.max_attempts:
                    raise PlatformError(
                        self.platform, f"{method} {path} failed: {reason}", code="network"
                    ) from exc
                pause = policy.backoff(attempt, self._rng)
                self._log.warning(
                    "%s %s: %s, attempt %d/%d, retrying in %.2fs",
                    method,
                    path,
                    reason,
                    attempt,
                    policy.max_attempts,
                    pause,
                )
                await self._clock.sleep(pause)
                continue

            delay = self._retry_delay(response, attempt, idempotent, throttle_probe)
            self._log.debug("%s %s -> HTTP %d (attempt %d)", method, path, response.status, attempt)
            if delay is None:
                return response
            throttled = response.status == 429 or response.status < 300
            if delay > policy.max_retry_after or attempt == policy.max_attempts:
                if throttled:
                    raise ThrottledError(
                        self.platform,
                        f"{method} {path} still throttled after {attempt} attempt(s)",
                        status=response.status,
                        code="throttled",
                        retry_after=delay,
                    )
                return response
            self._log.info(
                "%s %s: HTTP %d%s, attempt %d/%d, retrying in %.2fs",
                method,
                path,
                response.status,
                " (throttled)" if throttled else "",
                attempt,
                policy.max_attempts,
                delay,
            )
            await self._clock.sleep(delay)
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover

    def _retry_delay(
        self,
        response: HttpResponse,
        attempt: int,
        idempotent: bool,
        throttle_probe: ThrottleProbe | None,
    ) -> float | None:
        policy = self._policy
        if response.status == 429:
            wait = parse_retry_after(response.headers.get("Retry-After"), self._clock.time())
            return wait if wait is not None else policy.backoff(attempt, self._rng)
        if response.status in policy.retry_statuses:
            if not idempotent:
                return None
            wait = parse_retry_after(response.headers.get("Retry-After"), self._clock.time())
            return wait if wait is not None else policy.backoff(attempt, self._rng)
        if throttle_probe is not None and 200 <= response.status < 300:
            wait = throttle_probe(response)
            if wait is not None:
                return wait if wait > 0 else policy.backoff(attempt, self._rng)
        return None
