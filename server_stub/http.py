"""WSGI plumbing: requests in, JSON out, errors as `{"error": {code, message}}`.

Operations raise the domain errors of `errors.py`, which know no HTTP; this
module maps each kind to its status (`STATUS`) and is the one place that turns
any exception into a JSON answer. `ApiError` is for what only HTTP has: a body
that is no JSON, a method or media type not served, a missing length.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable, Iterable
from urllib.parse import parse_qs

from .storage.base import disk_full
from .errors import (Busy, Conflict, DomainError, Forbidden, Invalid, NotFound, RateLimited, StorageFull, TooLarge,
                     TooMany, Unauthorized, Unprocessable)

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1_048_576  # a sync batch of 500 entries is ~200 KB

_STATUS_TEXT = {
    200: "OK", 201: "Created", 303: "See Other", 304: "Not Modified", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
    404: "Not Found", 405: "Method Not Allowed", 409: "Conflict", 411: "Length Required",
    413: "Payload Too Large", 415: "Unsupported Media Type", 422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error", 503: "Service Unavailable",
}


STATUS: dict[type[DomainError], int] = {
    Invalid: 400, Unauthorized: 401, Forbidden: 403, NotFound: 404, Conflict: 409, TooLarge: 413,
    Unprocessable: 422, TooMany: 429, Busy: 503, StorageFull: 503, RateLimited: 429,
}


def status_of(exc: DomainError) -> int:
    """The HTTP status of a domain error: its own kind's, or the nearest kind it derives from."""
    for kind in type(exc).__mro__:
        if kind in STATUS:
            return STATUS[kind]
    return 400


class ApiError(Exception):
    """An answer other than success, with its HTTP status and stable code."""

    def __init__(self, status: int, code: str, message: str, extra: dict | None = None,
                 headers: Iterable[tuple[str, str]] = ()):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra or {}
        self.headers = tuple(headers)  # e.g. a 405's Allow

    def body(self) -> dict:
        return {"error": {"code": self.code, "message": self.message}, **self.extra}


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    environ: dict
    params: dict[str, str] = field(default_factory=dict)
    _body: Any = None

    @classmethod
    def from_environ(cls, environ: dict) -> "Request":
        headers = {
            key[5:].replace("_", "-").lower(): value
            for key, value in environ.items() if key.startswith("HTTP_")
        }
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = environ["CONTENT_TYPE"]
        query = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True).items()}
        return cls(
            method=environ.get("REQUEST_METHOD", "GET").upper(),
            path=environ.get("PATH_INFO", "/") or "/",
            query=query, headers=headers, environ=environ,
        )

    def bearer(self) -> str | None:
        value = self.headers.get("authorization", "")
        if value[:7].lower() == "bearer " and 0 < len(value) - 7 <= 512:
            return value[7:].strip()
        return None

    def json(self) -> Any:
        """The body as JSON, refusing oversize bodies before reading them."""
        if self._body is not None:
            return self._body
        try:
            length = int(self.environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            raise ApiError(400, "invalid_value", "Content-Length is not a number") from None
        if length > MAX_BODY_BYTES:
            raise ApiError(413, "payload_too_large", f"the body is over {MAX_BODY_BYTES} bytes")
        if length <= 0:
            if self.environ.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked":
                raise ApiError(411, "length_required", "send a Content-Length")
            raise ApiError(400, "invalid_json", "the request needs a JSON body")
        ctype = self.headers.get("content-type", "application/json").split(";")[0].strip().lower()
        if ctype not in ("application/json", ""):
            raise ApiError(415, "unsupported_media_type", "send application/json")
        raw = self.environ["wsgi.input"].read(length)
        try:
            text = raw.decode("utf-8")
            body = _decode_json(text)
        except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: absurdly deep nesting
            raise ApiError(400, "invalid_json", "the body is not valid UTF-8 JSON") from None
        if "\\u" in text:  # only a \u escape can smuggle in a NUL or a lone surrogate
            _refuse_bad_strings(body)
        self._body = body
        return self._body


def _no_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if value != value or value in (float("inf"), float("-inf")):  # 1e400 parses as inf
        raise ValueError("number out of range")
    return value


def _refuse_bad_strings(body: Any) -> None:
    """400 if any string or key holds a NUL or a lone surrogate (not storable, not encodable)."""
    stack = [body]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str) and ("\x00" in item or not _encodable(item)):
            raise ApiError(400, "invalid_value", "a string holds a NUL character or a lone surrogate")


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# Made once: json.loads/dumps with options build a new decoder/encoder per call.
_decode_json = json.JSONDecoder(parse_constant=_no_constant, parse_float=_finite_float).decode
_encode_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


class Download(bytes):
    """A binary answer (a PDF, a CSV, a console page) with its media type, and any headers of its own
    (a console page's cookies, its security policy, a download's file name)."""

    def __new__(cls, data: bytes, content_type: str = "application/octet-stream",
                headers: Iterable[tuple[str, str]] = ()):
        self = super().__new__(cls, data)
        self.content_type = content_type
        self.headers = tuple(headers)
        return self


Handler = Callable[[Request], tuple[int, Any]]
ROUTE_KEY = "pika.route"  # the environ's key for the route template a request matched (metrics.py)


class Router:
    """Routes `METHOD /path/{param}` patterns to handlers."""

    def __init__(self) -> None:
        self._routes: list[tuple[re.Pattern, dict[str, Handler]]] = []
        self._templates: list[tuple[str, str]] = []
        self._exact: dict[str, dict[str, Handler]] = {}  # paths without parameters: one lookup
        self._template: dict[str, str] = {}  # a parameter route's regex → its template (metrics' label)
        # Called with the environ before any routing or body (the client address's rate limit): may raise.
        self.admit: Callable[[dict], None] | None = None

    def routes(self) -> list[tuple[str, str]]:
        """Every (METHOD, path template) registered, in order: what the OpenAPI document must list."""
        return list(self._templates)

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        self._templates.append((method, pattern))
        if "{" not in pattern:
            self._exact.setdefault(pattern, {})[method] = handler
            return
        regex = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[A-Za-z0-9_.-]{1,128})", pattern) + "$")
        self._template[regex.pattern] = pattern
        for existing, handlers in self._routes:
            if existing.pattern == regex.pattern:
                handlers[method] = handler
                return
        self._routes.append((regex, {method: handler}))

    def resolve(self, request: Request) -> Handler:
        handlers = self._exact.get(request.path)
        if handlers is not None:
            request.environ[ROUTE_KEY] = request.path
            handler = handlers.get(request.method)
            if handler is None:
                raise _not_allowed(request, handlers)
            return handler
        for regex, handlers in self._routes:
            match = regex.match(request.path)
            if match:
                request.environ[ROUTE_KEY] = self._template[regex.pattern]  # never the path: ids make no labels
                handler = handlers.get(request.method)
                if handler is None:
                    raise _not_allowed(request, handlers)
                request.params = match.groupdict()
                return handler
        raise ApiError(404, "not_found", "no such endpoint")


def _not_allowed(request: Request, handlers: dict[str, Handler]) -> ApiError:
    """405, with the `Allow` header RFC 9110 asks for: the methods this path serves."""
    allowed = ", ".join(sorted(handlers))
    return ApiError(405, "method_not_allowed", f"{request.method} is not allowed here (allowed: {allowed})",
                    headers=[("Allow", allowed)])


def client_address(environ: dict, trusted: Iterable) -> str:
    """Who is asking: the connection's address (REMOTE_ADDR), unless it is one of the `trusted` proxies
    (networks, config's `trusted_proxies`) and the request carries `X-Real-IP` of one valid address, which
    the shipped nginx front sets to its client's. Anyone may write X-Real-IP (or X-Forwarded-For, never
    read): from an untrusted connection it is ignored, and so is one that is no address."""
    remote = str(environ.get("REMOTE_ADDR") or "")[:64] or "unknown"
    real = environ.get("HTTP_X_REAL_IP")
    if real is None:
        if "HTTP_X_FORWARDED_FOR" in environ:
            _proxy_without_real_ip(remote, trusted)
        return remote
    if not _trusted(remote, tuple(trusted)):
        return remote
    return _canonical(real.strip()[:64]) or remote


# Both asked for every request with the same few strings (a shop's addresses, the proxy's): remembered.
@lru_cache(maxsize=4096)
def _trusted(remote: str, trusted: tuple) -> bool:
    try:
        ip = _ip(remote)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


@lru_cache(maxsize=4096)
def _canonical(text: str) -> str | None:
    try:
        return str(_ip(text))
    except ValueError:
        return None


_warned_proxies: set[str] = set()


def _proxy_without_real_ip(remote: str, trusted: Iterable) -> None:
    """A trusted proxy that forwards (X-Forwarded-For) but does not name its client in X-Real-IP: all its
    clients would look like it (not rate limited, enrollments counted together). Said once per proxy."""
    if remote in _warned_proxies or not _trusted(remote, tuple(trusted)):
        return
    _warned_proxies.add(remote)
    log.warning("the proxy at %s forwards requests without X-Real-IP: its clients are not told apart and not "
                "rate limited; set X-Real-IP to the client's address (packaging/nginx does)", remote)


def _ip(text: str):
    """An address, an IPv4 one a dual-stack socket wrote as `::ffff:a.b.c.d` said as itself."""
    ip = ipaddress.ip_address(text)
    return getattr(ip, "ipv4_mapped", None) or ip


def respond(start_response, status: int, body: Any, extra_headers: Iterable[tuple[str, str]] = ()) -> list[bytes]:
    if isinstance(body, bytes):
        ctype = getattr(body, "content_type", "application/octet-stream")
        extra_headers = (*extra_headers, *getattr(body, "headers", ()))
        data = body if type(body) is bytes else bytes(body)  # wsgiref takes bytes itself, no subclass
    else:
        data, ctype = _encode_json(body).encode(), "application/json"
    headers = [("Content-Type", ctype), ("Content-Length", str(len(data))), *extra_headers]
    start_response(f"{status} {_STATUS_TEXT.get(status, 'Unknown')}", headers)
    return [data]


def serve_request(router: Router, environ: dict, start_response) -> list[bytes]:
    try:
        if router.admit is not None:
            router.admit(environ)
        request = Request.from_environ(environ)
        status, body = router.resolve(request)(request)
        return respond(start_response, status, body)
    except ApiError as exc:
        return respond(start_response, exc.status, exc.body(), exc.headers)
    except DomainError as exc:
        # A wait (a lockout's `retry_after_s`) is also said the way HTTP clients read it.
        wait = exc.extra.get("retry_after_s")
        headers = [("Retry-After", str(wait))] if isinstance(wait, int) else []
        return respond(start_response, status_of(exc), {"error": {"code": exc.code, "message": exc.message},
                                                        **exc.extra}, headers)
    except Exception as exc:
        if disk_full(exc):  # a read's temporary file, a file written: the disk is full, not a bug
            return _storage_full(start_response)
        # a bug: log it, answer calmly
        log.exception("unhandled error for %s %s", environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"))
        return respond(start_response, 500, {"error": {"code": "internal", "message": "internal error"}})


def _storage_full(start_response) -> list[bytes]:
    exc = StorageFull()
    return respond(start_response, status_of(exc), {"error": {"code": exc.code, "message": exc.message}, **exc.extra},
                   [("Retry-After", str(exc.extra["retry_after_s"]))])


def serve_measured(router: Router, environ: dict, start_response, metrics, serve=None) -> list[bytes]:
    """`serve` (default `serve_request`), timed and counted by route template and status (`metrics`: metrics.py's)."""
    started = time.perf_counter()
    seen: list[str] = []

    def noting(status, headers, exc_info=None):
        seen.append(status)
        return start_response(status, headers) if exc_info is None else start_response(status, headers, exc_info)
    body = (serve or serve_request)(router, environ, noting)
    metrics.answered(environ.get(ROUTE_KEY) or "unmatched", environ.get("REQUEST_METHOD", "GET"),
                     int(seen[-1][:3]) if seen else 500, time.perf_counter() - started, body)
    return body
