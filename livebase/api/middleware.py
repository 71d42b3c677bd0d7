"""The one place errors become the JSON error envelope, and request metrics are counted."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client import CollectorRegistry, Counter, Histogram
from sqlalchemy.exc import TimeoutError as SATimeoutError

from livebase.api.routing import json_response
from livebase.api.state import SETTINGS
from livebase.errors import ApiError, NotFound

log = logging.getLogger("livebase.api")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
}


def envelope(
    status: int, code: str, message: str, fields: list[dict[str, str]] | None = None
) -> web.Response:
    return json_response(
        {"error": {"status": status, "code": code, "message": message, "fields": fields or []}},
        status,
    )


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        if "\x00" in request.path:
            # No resource has a NUL in its name, and PostgreSQL and the file system refuse one.
            raise NotFound(f"no resource at {request.path!r}")
        return await handler(request)
    except ApiError as exc:
        fields = [{"field": f.field, "message": f.message} for f in exc.fields]
        return envelope(exc.status, exc.code, exc.message, fields)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message = exc.text if exc.text and not exc.text.startswith(str(exc.status)) else exc.reason
        if exc.status == 413:
            limit = request.app[SETTINGS].max_request_bytes
            message = f"the request body is larger than the limit of {limit} bytes"
        elif exc.status == 404:
            message = f"no route for {request.path}"
        elif exc.status == 405:
            message = f"{request.method} is not allowed on {request.path}"
        response = envelope(exc.status, HTTP_CODES.get(exc.status, "http_error"), message)
        for name in ("Allow", "Retry-After"):
            if name in exc.headers:
                response.headers[name] = exc.headers[name]
        return response
    except SATimeoutError:
        # Every database connection is busy (a burst such as a flash sale): ask to retry.
        log.warning("database pool exhausted on %s %s", request.method, request.path)
        response = envelope(503, "busy", "the service is busy; retry in a moment")
        response.headers["Retry-After"] = "1"
        return response
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return envelope(500, "internal_error", "an internal error occurred; it has been logged")


class Metrics:
    """Prometheus metrics of the HTTP API, in a registry owned by the app."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "livebase_http_requests_total",
            "HTTP requests by route, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "livebase_http_request_seconds",
            "HTTP request latency by route",
            ["route", "method"],
            registry=self.registry,
        )

    def middleware(self) -> Middleware:
        @web.middleware
        async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
            start = time.perf_counter()
            response = await handler(request)
            resource = request.match_info.route.resource
            route = resource.canonical if resource is not None else "unmatched"
            self.requests.labels(route, request.method, str(response.status)).inc()
            self.latency.labels(route, request.method).observe(time.perf_counter() - start)
            return response

        return metrics_middleware
