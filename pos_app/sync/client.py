"""The till's HTTP client for the backend (httpx, short timeouts).

Turns the backend's answers into Python values and its failures into two
kinds: `Unreachable` (network, timeout, 5xx, an answer that makes no sense:
try again later, decide offline) and `Refused` (a 4xx: the backend said no and
will say it again).
"""

from __future__ import annotations

import json as jsonlib
import math
import threading
import time
from typing import Any

import httpx

from ..core.domain import UsedToken, Verdict
from ..store import settings
from ..core.wire import parse_voucher

API = "/api/v1"
DEFAULT_TIMEOUT_S = settings.SETTINGS["online_timeout_s"].default
# Larger answers are refused unread: a broken or hostile server must not fill the till's memory.
MAX_ANSWER_BYTES = 32 << 20


class Unreachable(Exception):
    """The backend could not be asked, or failed: retry later."""


class BadAnswer(Unreachable):
    """The backend's answer was not what the API promises (garbage, oversize, wrong types)."""


class Refused(Exception):
    """The backend answered with a permanent refusal (4xx other than 408/429; also a lockout's 429 where
    the call says so: enrolling, changing a PIN)."""

    def __init__(self, status: int, code: str, message: str, body: dict | None = None):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.body = body or {}


class BackendClient:
    """One till's connection to the backend.

    `min_interval_s` spaces requests out (the sync engine's bound on its
    request rate); `requests`, `bytes_sent` and `bytes_received` count what
    went over the wire (HTTP headers and bodies).
    """

    def __init__(self, base_url: str, device_token: str | None = None, *,
                 timeout: float = DEFAULT_TIMEOUT_S, transport: httpx.BaseTransport | None = None,
                 min_interval_s: float = 0.0):
        headers = {"User-Agent": "pika-till/0.1"}
        if device_token:
            headers["Authorization"] = f"Bearer {device_token}"
        self._http = httpx.Client(base_url=base_url.rstrip("/") + API, headers=headers,
                                  timeout=timeout, transport=transport)
        self.min_interval_s = min_interval_s
        self._last_request = 0.0
        self._pace_lock = threading.Lock()
        self.requests = 0
        self.bytes_sent = 0
        self.bytes_received = 0

    def close(self) -> None:
        self._http.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

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
        self._pace()
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
            raise Unreachable(f"{type(exc).__name__}: {exc}") from exc
        finally:
            self.requests += 1
        self.bytes_sent += _head_size(request.method, request.url.raw_path, request.headers) + len(request.content)
        self.bytes_received += _head_size("HTTP/1.1", b"200 OK", response.headers) + len(raw)
        try:
            body = jsonlib.loads(raw) if raw else {}
        except ValueError:
            body = {}
        status = response.status_code
        if status in ok or status in answer_statuses:
            if not isinstance(body, dict):
                raise BadAnswer(f"the backend answered {status} with something that is not a JSON object")
            return status, body
        if status >= 500 or status in (408, 429):
            raise Unreachable(f"backend answered {status}")
        error = body.get("error", {}) if isinstance(body, dict) else {}
        raise Refused(status, str(error.get("code", "unknown")), str(error.get("message", "")), body)

    def health(self) -> dict:
        return self._call("GET", "/health")[1]

    def enroll(self, code: str, name: str) -> dict:
        """`POST /devices/enroll`. Too many wrong codes from this address is the backend's refusal
        (Refused 429 too_many_attempts), not a network failure: the person is told to wait, not to check cables."""
        status, body = self._call("POST", "/devices/enroll", json={"code": code, "name": name},
                                  answer_statuses=(429,))
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

    def sync(self, entries: list[dict], till_time: float | None = None) -> dict:
        """`till_time`: this till's clock as it sends (the clock the entries' times were read from), so the
        backend knows its skew and reads the entries' times by it."""
        till_time = time.time() if till_time is None else till_time
        return self._call("POST", "/sync", json={"entries": entries, "till_time": till_time})[1]

    def feed(self, after: int) -> dict:
        return self._call("GET", "/feed", params={"after": after})[1]

    # --- the booklet (a staff member with role admin, at this till) -------------------

    BOOKLET_TIMEOUT_S = 60.0  # a render of a thick edition takes seconds, not the redemption's 1.5 s

    @staticmethod
    def _staff(staff_id: str, pin: str) -> dict[str, str]:
        return {"X-Pika-Staff": staff_id, "X-Pika-Pin": pin}

    def _booklet(self, method: str, path: str, staff_id: str, pin: str, *, json: Any = None,
                 ok=(200, 201)) -> httpx.Response:
        """One booklet call with the staff member's credentials; errors as Unreachable / Refused."""
        try:
            response = self._http.request(method, path, json=json, headers=self._staff(staff_id, pin),
                                          timeout=self.BOOKLET_TIMEOUT_S)
        except httpx.HTTPError as exc:
            raise Unreachable(f"{type(exc).__name__}: {exc}") from exc
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
    return BackendClient(store.get("server_url") or "", store.get("device_token") or None, timeout=timeout,
                         transport=transport, min_interval_s=min_interval_s)


def _too_many(body: Any) -> Refused:
    """A lockout's 429 as the refusal it is."""
    body = body if isinstance(body, dict) else {}
    error = body.get("error") if isinstance(body.get("error"), dict) else {}
    return Refused(429, str(error.get("code", "too_many_attempts")), str(error.get("message", "")), body)
