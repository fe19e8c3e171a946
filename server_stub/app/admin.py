"""The operator's routes: retailers, stores, vouchers, printed codes, staff, tills, claims, reports, the audit log."""

from __future__ import annotations

import re

from ..errors import Invalid, NotFound
from ..http import Download
from ..operations import audit, credentials, findings, reconcile
from ..operations.admin import ENROLLMENT_TTL_S
from ..operations.devices import ROLL_TTL_S
from ..operations.reports import File
from ..validation import BOOL, DICT, INT, NONE, STR, check
from .callers import Callers
from .shapes import _ID, _NAME, _query_int, _optional_json

_CODE = re.compile(r"[a-z][a-z0-9_]{0,39}")
_SAFE_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_FINDINGS_QUERY = ("state", "code", "limit", "offset", "retailer_id", "store_id")
_NOTE_WIRE = 2000  # a note's characters on the wire; the rule (findings.NOTE_CHARS) keeps 500 after stripping


class AdminRoutes(Callers):
    """Each handler: the caller checked, the body's shape checked, one Backend operation."""

    def create_retailer(self, request):
        self._admin(request)
        body = check(request.json(), {"name": (STR, True, _NAME)})
        return 201, self.backend.create_retailer(body["name"])

    def list_retailers(self, request):
        self._admin(request)
        return 200, {"retailers": self.backend.list_retailers()}

    def create_store(self, request):
        self._admin(request)
        body = check(request.json(), {"retailer_id": (STR, True, _ID), "name": (STR, True, _NAME),
                                      "timezone": (STR, False, 64)})
        return 201, self.backend.create_store(body["retailer_id"], body["name"],
                                              body.get("timezone", "America/Asuncion"))

    def list_stores(self, request):
        self._admin(request)
        return 200, {"stores": self.backend.list_stores(request.query.get("retailer_id"))}

    def create_voucher(self, request):
        self._admin(request)
        opt_int = INT + NONE
        body = check(request.json(), {
            "retailer_id": (STR, True, _ID), "kind": (STR, True, 16), "texts": (DICT, True, 8),
            "discount": (DICT, True, 3), "valid_from": (opt_int, False, None), "valid_until": (opt_int, False, None),
            "total_limit": (opt_int, False, None), "store_day_limit": (opt_int, False, None),
            "claim_ttl_s": (opt_int, False, None),
        })
        check(body["discount"], {"kind": (STR, True, 16), "value": (INT, True, None), "currency": (STR, False, 3)},
              "discount")
        return 201, self.backend.create_voucher(body)

    def list_vouchers(self, request):
        self._admin(request)
        return 200, {"vouchers": self.backend.list_vouchers(request.query.get("retailer_id"))}

    def get_voucher(self, request):
        self._admin(request)
        return 200, self.backend.get_voucher(request.params["voucher_id"])

    def _voucher_action(self, action):
        def handler(request):
            self._admin(request)
            return 200, self.backend.change_voucher(request.params["voucher_id"], action)
        handler.__name__ = f"voucher_{action}"
        return handler

    def create_printed_code(self, request):
        self._admin(request)
        body = check(request.json(), {"voucher_id": (STR, True, _ID), "code": (STR, True, 64)})
        return 201, self.backend.create_printed_code(body["voucher_id"], body["code"])

    def list_printed_codes(self, request):
        self._admin(request)
        return 200, {"printed_codes": self.backend.list_printed_codes(request.query.get("voucher_id"))}

    def create_staff(self, request):
        self._admin(request)
        body = check(request.json(), {"retailer_id": (STR, True, _ID), "store_id": (STR + NONE, False, _ID),
                                      "name": (STR, True, _NAME), "role": (STR, True, 16), "pin": (STR, True, 12)})
        return 201, self.backend.create_staff(body["retailer_id"], body["name"], body["role"], body["pin"],
                                              body.get("store_id"))

    def list_staff(self, request):
        self._admin(request)
        q = request.query
        if q.get("include_disabled", "false") not in ("true", "false") or any(
                len(q.get(name, "")) > _ID for name in ("retailer_id", "store_id")):
            raise Invalid("invalid_value", "include_disabled is true or false; retailer_id and store_id are ids")
        return 200, {"staff": self.backend.list_staff(q.get("retailer_id"), q.get("store_id"),
                                                      q.get("include_disabled") == "true")}

    def get_staff(self, request):
        self._admin(request)
        return 200, self.backend.get_staff(request.params["staff_id"])

    def change_staff(self, request):
        self._admin(request)
        body = check(request.json(), {"name": (STR, False, _NAME), "role": (STR, False, 16),
                                      "store_id": (STR + NONE, False, _ID)})
        return 200, self.backend.change_staff(request.params["staff_id"], body)

    def _staff_action(self, action):
        def handler(request):
            self._admin(request)
            if action == "pin":  # the operator sets it; PIN rules as the role's (staff_admin)
                return 200, self.backend.set_staff_pin(request.params["staff_id"], check(
                    request.json(), {"pin": (STR, True, 12)})["pin"])
            return 200, self.backend.disable_staff(request.params["staff_id"], action == "disable")
        handler.__name__ = f"staff_{action}"
        return handler

    def staff_me(self, request):
        return 200, self.backend.staff_me(self._staff(request))

    def change_pin(self, request):
        caller = self._staff(request)
        body = check(request.json(), {"pin": (STR, True, 12)})
        return 200, self.backend.change_pin(caller, body["pin"])

    def pin_lockouts(self, request):
        self._admin(request)
        return 200, {"lockouts": self.backend.pin_lockouts()}

    def retailer_settings(self, request):
        self._admin(request)
        body = check(request.json(), {"staff_anywhere": (BOOL, False, None), "offline_days": (INT, False, None)})
        return 200, self.backend.retailer_settings(request.params["retailer_id"], body.get("staff_anywhere"),
                                                   body.get("offline_days"))

    def list_devices(self, request):
        self._admin(request)
        ids = {name: request.query.get(name) for name in ("retailer_id", "store_id")}
        if any(value is not None and len(value) > _ID for value in ids.values()):
            raise Invalid("invalid_value", "an id is too long")
        return 200, {"devices": self.backend.list_devices(**ids)}

    def get_device(self, request):
        self._admin(request)
        return 200, self.backend.get_device(request.params["device_id"])

    def rename_device(self, request):
        self._admin(request)
        body = check(request.json(), {"name": (STR, True, _NAME)})
        return 200, self.backend.rename_device(request.params["device_id"], body["name"])

    def revoke_device(self, request):
        self._admin(request)
        body = check(_optional_json(request), {"reason": (STR + NONE, False, _NAME)})
        return 200, self.backend.revoke_device(request.params["device_id"], body.get("reason"))

    def roll_device(self, request):
        self._admin(request)
        body = check(_optional_json(request), {"ttl_s": (INT, False, None)})
        return 200, self.backend.roll_device(request.params["device_id"], body.get("ttl_s", ROLL_TTL_S))

    def create_enrollment_code(self, request):
        self._admin(request)
        body = check(request.json(), {"store_id": (STR, True, _ID), "ttl_s": (INT, False, None)})
        ttl = body.get("ttl_s", ENROLLMENT_TTL_S)
        if not 60 <= ttl <= 90 * 24 * 3600:
            raise Invalid("invalid_value", "ttl_s is between a minute and 90 days")
        return 201, self.backend.create_enrollment_code(body["store_id"], ttl)

    def create_claim(self, request):
        self._admin(request, credentials.CLAIMS)  # the customer app's token, or the operator's
        body = check(request.json(), {"voucher_id": (STR, True, _ID), "customer_id": (STR, True, 128)})
        if not body["customer_id"].strip():
            raise Invalid("invalid_value", "customer_id is empty")
        return 201, self.backend.create_claim(body["voucher_id"], body["customer_id"])

    def revoke_claim(self, request):
        self._admin(request, credentials.CLAIMS)
        return 200, self.backend.revoke_claim(request.params["jti"])

    def daily_report(self, request):
        caller = self._admin_or_staff(request, ("manager", "admin"))
        answer = self.backend.daily_report(caller, request.query)
        return 200, Download(*answer) if isinstance(answer, File) else answer

    def audit_log(self, request):
        self._admin(request)
        since = request.query.get("since")
        try:
            since_at = None if since is None else float(since)
        except ValueError:
            raise Invalid("invalid_value", "since is a time in seconds since 1970") from None
        action = request.query.get("action")
        if action is not None and (len(action) > 64 or not action.isascii()):
            raise Invalid("invalid_value", "action is a name such as device.revoke")
        retailer = request.query.get("retailer_id")
        if retailer is not None and len(retailer) > _ID:
            raise Invalid("invalid_value", "retailer_id is too long")
        return 200, self.backend.audit_log(retailer_id=retailer, action=action, since=since_at,
                                           after=_query_int(request, "after", 0, 0, 2**62),
                                           limit=_query_int(request, "limit", 100, 1, audit.LIST_MAX))

    # --- findings (operations/findings.py, reconcile.py) ------------------------------------------------

    def _findings_scope(self, request) -> tuple[str | None, str | None]:
        """(retailer, store) whose findings the caller may see: the operator's token every one (None, None); a
        retailer's admin in person their retailer's, or only their store's if they belong to one."""
        caller = self._admin_or_staff(request, ("admin",))
        if caller.kind == "admin":
            return None, None
        return caller.retailer_id, None if caller.retailer_wide else caller.store_id

    def list_findings(self, request):
        retailer, store = self._findings_scope(request)
        q = request.query
        unknown = sorted(set(q) - set(_FINDINGS_QUERY))
        if unknown:
            raise Invalid("unknown_field", f"unknown query parameter {unknown[0][:40]!r}")
        asked = {name: _query_id(q, name) for name in ("retailer_id", "store_id")}
        code = q.get("code")
        if code is not None and not _CODE.fullmatch(code):
            raise Invalid("invalid_value", "code is a finding's code such as outbox_stuck")
        numbers = {name: _query_number(q, name) for name in ("limit", "offset")}
        empty = {"findings": [], "total": 0, "last_run_at": None}
        # A caller's own scope wins: asking for another retailer's (or store's) answers none, as if none existed.
        for mine, name in ((retailer, "retailer_id"), (store, "store_id")):
            if mine is not None and asked[name] not in (None, mine):
                return 200, empty
        answer = findings.list_findings(
            self.backend.ctx, retailer_id=retailer or asked["retailer_id"], store_id=store or asked["store_id"],
            state=q.get("state", "open"), code=code, limit=numbers["limit"] if numbers["limit"] is not None else 100,
            offset=numbers["offset"] or 0)
        # The operator's last run of all, or of the retailer asked; a retailer's admin that of their own.
        last = reconcile.last_run(self.backend.ctx, retailer or asked["retailer_id"])
        return 200, {**answer, "last_run_at": last.get("ran_at") if last else None}

    def resolve_finding(self, request):
        retailer, store = self._findings_scope(request)
        raw = request.params["finding_id"]
        if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
            raise Invalid("invalid_value", "a finding's id is a whole number")
        body = check(request.json(), {"note": (STR, True, _NOTE_WIRE)})
        finding_id = int(raw)
        if store is not None and findings.get_finding(self.backend.ctx, finding_id)["store_id"] != store:
            raise NotFound("not_found", "no such finding")
        return 200, findings.resolve(self.backend.ctx, finding_id, body["note"], retailer_id=retailer)

    def run_reconcile(self, request):
        retailer, _ = self._findings_scope(request)
        body = check(_optional_json(request), {"retailer_id": (STR, False, _ID)})
        asked = body.get("retailer_id")
        if asked is not None and not _SAFE_ID.fullmatch(asked):
            raise Invalid("invalid_value", "retailer_id is an id of 1 to 64 [A-Za-z0-9_-]")
        if retailer is not None and asked not in (None, retailer):
            raise NotFound("not_found", "no such retailer")
        return 200, reconcile.run(self.backend.ctx, retailer_id=retailer or asked)


def _query_id(query: dict, name: str) -> str | None:
    value = query.get(name)
    if value is not None and not _SAFE_ID.fullmatch(value):
        raise Invalid("invalid_value", f"{name} is an id of 1 to 64 [A-Za-z0-9_-]")
    return value


def _query_number(query: dict, name: str) -> int | None:
    raw = query.get(name)
    if raw is None:
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 9:
        raise Invalid("invalid_value", f"{name} is a whole number")
    return int(raw)
