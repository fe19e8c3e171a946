"""The till's HTTP client for the backend (httpx, short timeouts).

Turns the backend's answers into Python values and its failures into two
kinds: `Unreachable` (network, timeout, 5xx, an answer that makes no sense:
try again later, decide offline) and `Refused` (a 4xx: the backend said no and
will say it again).
"""

from __future__ import annotations

import ipaddress
import json as jsonlib
import logging
import math
import ssl
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import httpx

from .. import __version__
from ..core.domain import UsedToken, Verdict
from ..store import settings
from ..store.standing import WITHDRAWN
from ..core.wire import parse_voucher

API = "/api/v1"
DEFAULT_TIMEOUT_S = settings.SETTINGS["online_timeout_s"].default
# Larger answers are refused unread: a broken or hostile server must not fill the till's memory.
MAX_ANSWER_BYTES = 32 << 20
USER_AGENT = f"pika-till/{__version__}"  # the operator's device list shows which version each till runs
log = logging.getLogger(__name__)


class Unreachable(Exception):
    """The backend could not be asked, or failed: retry later."""


class BadAnswer(Unreachable):
    """The backend's answer was not what the API promises (garbage, oversize, wrong types)."""


class RateLimited(Unreachable):
    """The backend said 429 (`rate_limited`): this till sends too much; no request goes out for
    `retry_after_s` (the client keeps quiet that long), and meanwhile the till decides offline."""

    def __init__(self, message: str, retry_after_s: float):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Untrusted(Unreachable):
    """The backend's TLS certificate is not one the till trusts (or the till's CA file cannot be read):
    while working the backend is away, and enrolling says how to give the till its CA."""


class Refused(Exception):
    """The backend answered with a permanent refusal (4xx other than 408/429; also a lockout's 429 where
    the call says so: enrolling, changing a PIN)."""

    def __init__(self, status: int, code: str, message: str, body: dict | None = None):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.body = body or {}

    @property
    def withdrawal(self) -> str | None:
        """`device_revoked` or `device_rolled` when the backend says this till's credential is ended, else None."""
        return self.code if self.status == 401 and self.code in WITHDRAWN else None


class BackendClient:
    """One till's connection to the backend.

    `min_interval_s` spaces requests out (the sync engine's bound on its
    request rate); `requests`, `bytes_sent` and `bytes_received` count what
    went over the wire (HTTP headers and bodies).
    """

    def __init__(self, base_url: str, device_token: str | None = None, *,
                 timeout: float = DEFAULT_TIMEOUT_S, transport: httpx.BaseTransport | None = None,
                 min_interval_s: float = 0.0, ca_file: str | None = None):
        headers = {"User-Agent": USER_AGENT}
        if device_token:
            headers["Authorization"] = f"Bearer {device_token}"
        verify, self._tls_problem = _verify(ca_file)
        # Said in the log as the first request goes over the network (a transport of its own, the demo's or a
        # test's, carries nothing over one).
        self._plain_http_unsaid = base_url if transport is None else ""
        self._http = httpx.Client(base_url=base_url.rstrip("/") + API, headers=headers,
                                  timeout=timeout, transport=transport, verify=verify)
        self.min_interval_s = min_interval_s
        self._last_request = 0.0
        self._pace_lock = threading.Lock()
        self._quiet_until = 0.0  # monotonic: a 429's Retry-After, before which nothing is sent
        self.requests = 0
        self.bytes_sent = 0
        self.bytes_received = 0

    def close(self) -> None:
        self._http.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _before_sending(self) -> None:
        if self._plain_http_unsaid:
            url, self._plain_http_unsaid = self._plain_http_unsaid, ""
            warn_if_plain_http(url)
        if self._tls_problem:
            raise Untrusted(self._tls_problem)

    def _pace(self) -> None:
        if self.min_interval_s <= 0:
            return
        with self._pace_lock:
            wait = self._last_request + self.min_interval_s - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            self._last_request = time.monotonic()

    def _call(self, method: str, path: str, *, json: Any = None, params=None, headers=None,
              ok=(200, 201), answer_statuses=(), timeout: float | None = None) -> tuple[int, dict]:
        self._keep_quiet()
        self._pace()
        self._before_sending()
        extra = {} if timeout is None else {"timeout": timeout}
        try:
            request = self._http.build_request(method, path, json=json, params=params, headers=headers, **extra)
            response = self._http.send(request, stream=True)
            try:
                raw = bytearray()
                for chunk in response.iter_bytes():
                    raw += chunk
                    if len(raw) > MAX_ANSWER_BYTES:
                        raise BadAnswer(f"the backend's answer is over {MAX_ANSWER_BYTES} bytes")
            finally:
                response.close()
        except httpx.HTTPError as exc:
            raise _unreachable(exc) from exc
        finally:
            self.requests += 1
        self.bytes_sent += _head_size(request.method, request.url.raw_path, request.headers) + len(request.content)
        self.bytes_received += _head_size("HTTP/1.1", b"200 OK", response.headers) + len(raw)
        try:
            body = jsonlib.loads(raw) if raw else {}
        except ValueError:
            body = {}
        status = response.status_code
        if status == 429:
            wait = self._note_wait(response.headers, body, limited=429 not in answer_statuses)
            if 429 not in answer_statuses:
                raise RateLimited(f"backend answered 429: wait {wait:g} s", wait)
        if status in ok or status in answer_statuses:
            if not isinstance(body, dict):
                raise BadAnswer(f"the backend answered {status} with something that is not a JSON object")
            return status, body
        if status >= 500 or status in (408, 429):
            raise Unreachable(f"backend answered {status}")
        error = body.get("error", {}) if isinstance(body, dict) else {}
        raise Refused(status, str(error.get("code", "unknown")), str(error.get("message", "")), body)

    def retry_after_s(self) -> float:
        """Seconds the backend asked this client to wait still (0: it may send)."""
        return max(0.0, self._quiet_until - time.monotonic())

    def _keep_quiet(self) -> None:
        wait = self.retry_after_s()
        if wait > 0:
            raise RateLimited(f"the backend asked this till to wait {wait:.1f} s more", wait)

    def _note_wait(self, headers: httpx.Headers, body: Any, limited: bool) -> float:
        """A 429's wait: Retry-After (whole seconds), else the body's `retry_after_s`, within 1 s to an hour.
        Kept as the client's quiet time when it limits the till itself (`rate_limited`, or a 429 the call
        does not take as its answer), not when it is one staff member's PIN lockout."""
        error = body.get("error") if isinstance(body, dict) else None
        code = error.get("code") if isinstance(error, dict) else None
        wait = _seconds(headers.get("retry-after"))
        if wait is None and isinstance(body, dict):
            wait = _seconds(body.get("retry_after_s"))
        wait = min(3600.0, max(1.0, wait if wait is not None else 5.0))
        if limited or code == "rate_limited":
            self._quiet_until = max(self._quiet_until, time.monotonic() + wait)
        return wait

    def health(self) -> dict:
        return self._call("GET", "/health")[1]

    def enroll(self, code: str, name: str, *, log_key: str | None = None) -> dict:
        """`POST /devices/enroll`. Too many wrong codes from this address is the backend's refusal
        (Refused 429 too_many_attempts), not a network failure: the person is told to wait, not to check cables.
        `log_key`: the public half of the till's log key (store/chain.py), registered with the device."""
        request = {"code": code, "name": name}
        if log_key is not None:
            request["log_key"] = log_key
        try:
            status, body = self._call("POST", "/devices/enroll", json=request, answer_statuses=(429,))
        except Refused as exc:
            if log_key is None or exc.status != 400 or exc.code != "unknown_field" or "log_key" not in str(exc):
                raise
            # A backend older than the till's log refuses the field before it looks at the code: enrolled
            # without it, the key is registered with the log's first records (trust on first use).
            return self.enroll(code, name)
        if status == 429:
            raise _too_many(body)
        return body

    def catalog(self) -> dict:
        return self._call("GET", "/catalog")[1]

    def redeem(self, key: str, *, input: str, method: str, staff_id: str | None, at: float,
               timeout: float | None = None) -> tuple[int, dict]:
        """Online redemption: (status, body) for 201, 409 and 422 — all three are verdicts."""
        return self._call("POST", "/redemptions", json={"input": input, "method": method,
                                                        "staff_id": staff_id, "at": at},
                          headers={"Idempotency-Key": key}, answer_statuses=(409, 422), timeout=timeout)

    def lookup_redemption(self, key: str) -> dict | None:
        """The backend's first answer for a key, or None if it never saw the key."""
        try:
            return self._call("GET", f"/redemptions/{key}")[1]
        except Refused as exc:
            if exc.status == 404:
                return None
            raise

    def change_pin(self, staff_id: str, pin: str, new_pin: str) -> dict:
        """`POST /staff/me/pin`: the staff member (with their PIN now) chooses a new one; the backend's answer.
        A lockout's 429 is the backend's refusal (Refused too_many_attempts), not a network failure."""
        status, body = self._call("POST", "/staff/me/pin", json={"pin": new_pin},
                                  headers={"X-Pika-Staff": staff_id, "X-Pika-Pin": pin},
                                  ok=(200, 201, 204), answer_statuses=(429,))
        if status == 429:
            raise _too_many(body)
        return body

    def sync(self, entries: list[dict], till_time: float | None = None, till: dict | None = None) -> dict:
        """`till_time`: this till's clock as it sends (the clock the entries' times were read from), so the
        backend knows its skew and reads the entries' times by it. `till`: what the till reports of itself
        ({app_version, outbox, outbox_oldest_at}, the operator's device list)."""
        till_time = time.time() if till_time is None else till_time
        body = {"entries": entries, "till_time": till_time}
        if till is not None:
            body["till"] = till
        return self._call("POST", "/sync", json=body)[1]

    def feed(self, after: int) -> dict:
        return self._call("GET", "/feed", params={"after": after})[1]

    def till_log(self, body: dict) -> dict:
        """`POST /till-log`: records of the till's log, its signed head and what its self-check found
        ({public_key, after, records, head, tampered}); the answer's `log` says what the backend holds."""
        return self._call("POST", "/till-log", json=body)[1]

    # --- the booklet (a staff member with role admin, at this till) -------------------

    BOOKLET_TIMEOUT_S = 60.0  # a render of a thick edition takes seconds, not the redemption's 1.5 s

    @staticmethod
    def _staff(staff_id: str, pin: str) -> dict[str, str]:
        return {"X-Pika-Staff": staff_id, "X-Pika-Pin": pin}

    def _booklet(self, method: str, path: str, staff_id: str, pin: str, *, json: Any = None,
                 ok=(200, 201)) -> httpx.Response:
        """One booklet call with the staff member's credentials; errors as Unreachable / Refused."""
        self._before_sending()
        try:
            response = self._http.request(method, path, json=json, headers=self._staff(staff_id, pin),
                                          timeout=self.BOOKLET_TIMEOUT_S)
        except httpx.HTTPError as exc:
            raise _unreachable(exc) from exc
        if response.status_code in ok:
            return response
        if response.status_code >= 500 or response.status_code in (408, 429):
            raise Unreachable(f"backend answered {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            body = {}
        error = body.get("error", {}) if isinstance(body, dict) else {}
        raise Refused(response.status_code, str(error.get("code", "unknown")), str(error.get("message", "")), body)

    def booklets(self, staff_id: str, pin: str) -> list[dict]:
        """The finished booklet editions, newest month first (a till's admin lists and prints them; making
        and rendering them is the platform operator's)."""
        return self._booklet("GET", "/booklets", staff_id, pin).json()["editions"]

    def booklet_pdf(self, edition_id: str, staff_id: str, pin: str) -> bytes:
        return self._booklet("GET", f"/booklets/{edition_id}.pdf", staff_id, pin).content


def _verify(ca_file: str | None) -> tuple[ssl.SSLContext | bool, str | None]:
    """What httpx verifies the backend's certificate with, and why it cannot (a CA file that cannot be read).

    No `ca_file`: the system's trust, or $SSL_CERT_FILE / $SSL_CERT_DIR (httpx's trust_env). A `ca_file`
    (the till's setting): only the authorities in it, e.g. the chain's private CA."""
    if not ca_file:
        return True, None
    try:
        return ssl.create_default_context(cafile=ca_file), None
    except (OSError, ssl.SSLError, ValueError) as exc:
        problem = f"the backend's certificate cannot be checked: the CA file {ca_file} cannot be used ({exc})"
        log.warning("%s", problem)
        return ssl.create_default_context(), problem


def _unreachable(exc: httpx.HTTPError) -> Unreachable:
    """A failed request as Unreachable; a certificate the till does not trust as Untrusted, its reason logged."""
    cause = exc.__cause__ or exc.__context__
    while cause is not None and not isinstance(cause, ssl.SSLCertVerificationError):
        cause = cause.__cause__ or cause.__context__
    if cause is not None:
        message = f"the backend's certificate is not trusted: {cause.verify_message or cause}"
        log.warning("%s", message)
        return Untrusted(message)
    return Unreachable(f"{type(exc).__name__}: {exc}")


def plain_http_to_another_host(url: str) -> bool:
    """True when `url` is http:// to a host that is not this machine (127.0.0.0/8, ::1, localhost): device
    tokens and staff PINs would cross the network readable by anyone on the way."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or ""
    except ValueError:
        return False
    if parts.scheme.lower() != "http":
        return False
    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True  # a name: it may resolve anywhere


_warned_urls: set[str] = set()
_warned_lock = threading.Lock()


def warn_if_plain_http(url: str) -> bool:
    """Log a warning, once per URL in this process, when `url` is plain HTTP to another host; True if it is."""
    if not plain_http_to_another_host(url):
        return False
    with _warned_lock:
        first = url not in _warned_urls
        _warned_urls.add(url)
    if first:
        log.warning("the backend %s is plain HTTP to another machine: device tokens and PINs cross the network "
                    "unencrypted; enroll this till again with its https:// address", url)
    return True


def _seconds(value: Any) -> float | None:
    """A Retry-After's or `retry_after_s`'s whole seconds, or None if it is none (an HTTP date is not waited for)."""
    if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) <= 9:
        return float(value.strip())
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0:
        return float(value)
    return None


def _head_size(first: str, second: bytes, headers: httpx.Headers) -> int:
    """Bytes of an HTTP/1.1 start line and header block, as sent."""
    return len(first) + 1 + len(second) + 11 + sum(len(k) + len(v) + 4 for k, v in headers.raw) + 2


def verdict_from_answer(body: Any) -> Verdict:
    """The verdict in an answer of `POST /redemptions` or `GET /redemptions/{key}`; BadAnswer if it is not one."""
    data = body.get("verdict") if isinstance(body, dict) else None
    if not isinstance(data, dict) or not isinstance(data.get("accepted"), bool):
        raise BadAnswer("the answer holds no verdict")
    for name in ("reason", "kind", "source", "jti", "code", "message"):
        if data.get(name) is not None and not isinstance(data[name], str):
            raise BadAnswer(f"the verdict's {name} is not a text")
    used = data.get("used")
    if used is not None and not (
            isinstance(used, dict) and set(used) <= {"jti", "at", "till", "store_id"}
            and isinstance(used.get("at"), (int, float)) and not isinstance(used.get("at"), bool)
            and math.isfinite(used["at"]) and all(isinstance(used.get(n, ""), str) for n in ("jti", "till", "store_id"))):
        raise BadAnswer("the verdict's `used` is malformed")
    try:
        voucher = parse_voucher(data["voucher"]) if data.get("voucher") else None
        return Verdict(accepted=data["accepted"], reason=data.get("reason"), kind=data.get("kind"),
                       source=data.get("source"), voucher=voucher, jti=data.get("jti"), code=data.get("code"),
                       message=data.get("message") or "",
                       used=UsedToken(**{"till": "", **used}) if used else None)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise BadAnswer(f"the verdict is malformed: {exc}") from exc


def server_time(body: Any) -> float | None:
    """An answer's `server_time`, if it is a plausible epoch time."""
    value = body.get("server_time") if isinstance(body, dict) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        return None
    return float(value)


def client_for(store, *, timeout: float | None = None, min_interval_s: float = 0.0,
               transport: httpx.BaseTransport | None = None) -> BackendClient:
    """The one way the till makes its backend client (the headless commands, the sync engine, the window).

    `store` is anything with `.get(name)`: a TillStore, or a mapping holding
    `server_url` and `device_token` (what the window knows of its store, for a
    client made off the store's thread). The request timeout is `timeout`,
    else the setting `online_timeout_s`.
    """
    if timeout is None:
        timeout = settings.value(store, "online_timeout_s")
    return BackendClient(store.get("server_url") or "", store.get("device_token") or None, timeout=timeout, transport=transport,
                         min_interval_s=min_interval_s, ca_file=settings.value(store, "ca_file") or None)


def _too_many(body: Any) -> Refused:
    """A lockout's 429 as the refusal it is."""
    body = body if isinstance(body, dict) else {}
    error = body.get("error") if isinstance(body.get("error"), dict) else {}
    return Refused(429, str(error.get("code", "too_many_attempts")), str(error.get("message", "")), body)
