"""The till's HTTP client for the backend (httpx, short timeouts).

Turns the backend's answers into Python values and its failures into two
kinds: `Unreachable` (network, timeout, 5xx: try again later, decide offline)
and `Refused` (a 4xx: the backend said no and will say it again).
"""

from __future__ import annotations

from typing import Any

import httpx

API = "/api/v1"
DEFAULT_TIMEOUT_S = 1.5


class Unreachable(Exception):
    """The backend could not be asked, or failed: retry later."""


class Refused(Exception):
    """The backend answered with a permanent refusal (4xx other than 408/429)."""

    def __init__(self, status: int, code: str, message: str, body: dict | None = None):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.body = body or {}


class BackendClient:
    def __init__(self, base_url: str, device_token: str | None = None, *,
                 timeout: float = DEFAULT_TIMEOUT_S, transport: httpx.BaseTransport | None = None):
        headers = {"User-Agent": "pika-till/0.1"}
        if device_token:
            headers["Authorization"] = f"Bearer {device_token}"
        self._http = httpx.Client(base_url=base_url.rstrip("/") + API, headers=headers,
                                  timeout=timeout, transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _call(self, method: str, path: str, *, json: Any = None, params=None, headers=None,
              ok=(200, 201), answer_statuses=()) -> tuple[int, dict]:
        try:
            response = self._http.request(method, path, json=json, params=params, headers=headers)
        except httpx.HTTPError as exc:
            raise Unreachable(f"{type(exc).__name__}: {exc}") from exc
        try:
            body = response.json()
        except ValueError:
            body = {}
        status = response.status_code
        if status in ok or status in answer_statuses:
            return status, body
        if status >= 500 or status in (408, 429):
            raise Unreachable(f"backend answered {status}")
        error = body.get("error", {}) if isinstance(body, dict) else {}
        raise Refused(status, str(error.get("code", "unknown")), str(error.get("message", "")), body)

    def health(self) -> dict:
        return self._call("GET", "/health")[1]

    def enroll(self, code: str, name: str) -> dict:
        return self._call("POST", "/devices/enroll", json={"code": code, "name": name})[1]

    def catalog(self) -> dict:
        return self._call("GET", "/catalog")[1]

    def redeem(self, key: str, *, input: str, method: str, staff_id: str | None, at: float) -> tuple[int, dict]:
        """Online redemption: (status, body) for 201, 409 and 422 — all three are verdicts."""
        return self._call("POST", "/redemptions", json={"input": input, "method": method,
                                                        "staff_id": staff_id, "at": at},
                          headers={"Idempotency-Key": key}, answer_statuses=(409, 422))

    def lookup_redemption(self, key: str) -> dict | None:
        """The backend's first answer for a key, or None if it never saw the key."""
        try:
            return self._call("GET", f"/redemptions/{key}")[1]
        except Refused as exc:
            if exc.status == 404:
                return None
            raise

    def sync(self, entries: list[dict]) -> dict:
        return self._call("POST", "/sync", json={"entries": entries})[1]

    def feed(self, after: int) -> dict:
        return self._call("GET", "/feed", params={"after": after})[1]

