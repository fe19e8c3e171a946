"""A till's routes: enroll, catalog, redeem, look up, void, sync, its log, feed."""

from __future__ import annotations

from pos_app.core import till_log, wire
from pos_app.core.domain import IDEMPOTENCY_KEY

from ..errors import Invalid
from ..http import client_address
from ..operations import till_logs
from ..operations.redemptions import SYNC_BATCH_MAX
from ..operations.tills import FEED_LIMIT_MAX
from ..validation import DICT, INT, LIST, NONE, NUM, STR, check
from .callers import Callers
from .shapes import _ID, _NAME, VALID_METHODS, _query_int, _TILL_REPORT, _VOID_REASON, _SYNC_ENTRY, _entry_fields


class TillRoutes(Callers):
    """Each handler: the device checked, the body's shape checked, one Backend operation."""

    def enroll(self, request):
        body = check(request.json(), {"code": (STR, True, 64), "name": (STR, True, _NAME),
                                      "log_key": (STR, False, 44)})
        if not body["name"].strip():
            raise Invalid("invalid_value", "name is empty")
        if "log_key" in body:
            try:
                till_log.parse_public_key(body["log_key"])
            except ValueError as exc:
                raise Invalid("invalid_value", f"log_key: {exc}") from None
        # The connection's address, or a trusted proxy's X-Real-IP; never X-Forwarded-For: see enrollment_guard.
        address = client_address(request.environ, self.backend.limiter.trusted_proxies)
        return 201, self.backend.enroll(body["code"], body["name"].strip(), address, body.get("log_key"))

    def catalog(self, request):
        return 200, self.backend.catalog(self.backend.require_device(request.bearer()))

    def redeem(self, request):
        device = self.backend.require_device(request.bearer())
        key = request.headers.get("idempotency-key", "")
        if not IDEMPOTENCY_KEY.match(key):
            raise Invalid("invalid_value", "an Idempotency-Key header of 8 to 64 [A-Za-z0-9_-] is required")
        body = check(request.json(), {"input": (STR, True, 8192), "method": (STR, True, 16),
                                      "staff_id": (STR + NONE, False, _ID), "at": (NUM + NONE, False, None)})
        if body["method"] not in VALID_METHODS:
            raise Invalid("invalid_value", f"method is one of {', '.join(VALID_METHODS)}")
        answered = self.backend.redeem(device, key, body)
        if self.metrics is not None:
            verdict = answered.body.get("verdict") or {}
            self.metrics.redemption("online", answered.status == 201, verdict.get("reason"))
        return answered.status, answered.body  # 201, or the refusal's 409 or 422: as recorded with the answer

    def void_redemption(self, request):
        caller = self._admin_or_staff(request, ("manager", "admin"))
        if not IDEMPOTENCY_KEY.match(request.params["key"]):
            raise Invalid("invalid_value", "malformed idempotency key")
        body = check(request.json(), {"reason": (STR, True, _VOID_REASON)})
        return 201, self.backend.void(caller, request.params["key"], body["reason"])

    def lookup_redemption(self, request):
        device = self.backend.require_device(request.bearer())
        if not IDEMPOTENCY_KEY.match(request.params["key"]):
            raise Invalid("invalid_value", "malformed idempotency key")
        return 200, self.backend.lookup_redemption(device, request.params["key"])

    def sync(self, request):
        device = self.backend.require_device(request.bearer(), touch=False)  # the sync's write says it was seen
        body = check(request.json(), {"entries": (LIST, True, SYNC_BATCH_MAX), "till_time": (NUM, False, None),
                                      "till": (DICT, False, len(_TILL_REPORT))})
        if "till" in body:  # what the till says of itself: its version and outbox (devices.till_report)
            check(body["till"], _TILL_REPORT, "till")
        seen = set()
        for i, entry in enumerate(body["entries"]):
            check(entry, _SYNC_ENTRY, f"entries[{i}]")
            if not IDEMPOTENCY_KEY.match(entry["key"]) or entry["key"] in seen:
                raise Invalid("invalid_value", f"entries[{i}].key is malformed or repeated")
            if not wire.is_time(entry["at"]):  # every number bounded: 1e308 is finite, and no time
                raise Invalid("invalid_value", f"entries[{i}].at must be a time in seconds since 1970, before 2200")
            seen.add(entry["key"])
            if _entry_fields(entry, i) == "void":
                continue
            if entry["decided"] not in ("online", "offline") or entry["method"] not in VALID_METHODS:
                raise Invalid("invalid_value", f"entries[{i}] has an unknown method or decided")
            if entry.get("kind") not in (None, "personal", "printed"):
                raise Invalid("invalid_value", f"entries[{i}].kind is personal or printed")
        answer = self.backend.sync(device, body["entries"], body.get("till_time"), body.get("till"),
                                   request.headers.get("user-agent"))
        if self.metrics is not None:
            self.metrics.synced(body["entries"], answer)
        return 200, answer

    def till_log(self, request):
        device = self.backend.require_device(request.bearer())
        body = check(request.json(), {"public_key": (STR, True, 44), "after": (INT, True, None),
                                      "records": (LIST, True, till_logs.MAX_RECORDS), "head": (DICT, True, 3),
                                      "tampered": (LIST + NONE, False, till_logs.MAX_TAMPERED)})
        return 200, self.backend.till_log(device, body)

    def feed(self, request):
        device = self.backend.require_device(request.bearer())
        after = _query_int(request, "after", 0, 0, 2**62)
        limit = _query_int(request, "limit", FEED_LIMIT_MAX, 1, FEED_LIMIT_MAX)
        return 200, self.backend.feed(device, after, limit)
