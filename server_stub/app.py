"""The WSGI application: routes, request shapes, and nothing else.

Each handler checks credentials and the body's shape, calls one Backend
operation and returns its answer. `make_app(data_dir)` is what servers load.
"""

from __future__ import annotations

import json
from importlib import resources

from pos_app.core import wire
from pos_app.core.domain import IDEMPOTENCY_KEY, Method

from .backend import Backend
from .booklet import placements as booklet_bodies
from .booklet.editions import Booklets
from .errors import Forbidden, Invalid, Unauthorized
from .http import Download, Request, Router, client_address, serve_measured, serve_request
from .metrics import metrics
from .operations import audit, credentials, devices
from .operations.admin import ENROLLMENT_TTL_S, ROLES
from .operations.devices import ROLL_TTL_S
from .operations.redemptions import SYNC_BATCH_MAX
from .operations.reports import File
from .operations.tills import FEED_LIMIT_MAX
from .validation import BOOL, DICT, INT, LIST, NONE, NUM, STR, check

API = "/api/v1"
_ID = 64  # longest id or name field we take
_NAME = 200
VALID_METHODS = Method.ALL


def _query_int(request: Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise Invalid("invalid_value", f"{name} must be a whole number")
    return max(lo, min(hi, int(raw)))


class App:
    """Holds the Backend and answers WSGI calls."""

    def __init__(self, backend: Backend):
        self.backend = backend
        self.booklets = Booklets(backend)
        self.router = Router()
        self.router.admit = self._admit  # the client address's rate limit, before routing or any body
        self.metrics = metrics()  # None: answers uncounted (bench/metrics_cost.py's reference)
        self._openapi = json.loads(resources.files("server_stub").joinpath("openapi.json").read_text())
        r = self.router.add
        r("GET", f"{API}/health", self.health)
        r("GET", f"{API}/health/ready", self.ready)  # open: the load balancer asks; values for a token only
        r("GET", f"{API}/metrics", self.metrics_text)  # Prometheus: an admin token of scope metrics
        r("GET", f"{API}/openapi.json", self.openapi)
        r("POST", f"{API}/retailers", self.create_retailer)
        r("GET", f"{API}/retailers", self.list_retailers)
        r("POST", f"{API}/stores", self.create_store)
        r("GET", f"{API}/stores", self.list_stores)
        r("POST", f"{API}/vouchers", self.create_voucher)
        r("GET", f"{API}/vouchers", self.list_vouchers)
        r("GET", f"{API}/vouchers/{{voucher_id}}", self.get_voucher)
        for action in ("publish", "unpublish", "revoke"):
            r("POST", f"{API}/vouchers/{{voucher_id}}/{action}", self._voucher_action(action))
        r("POST", f"{API}/printed-codes", self.create_printed_code)
        r("GET", f"{API}/printed-codes", self.list_printed_codes)
        r("POST", f"{API}/staff", self.create_staff)
        # A staff member at a till, in person: who they are (and whether their PIN is too short), a new PIN.
        r("GET", f"{API}/staff/me", self.staff_me)
        r("POST", f"{API}/staff/me/pin", self.change_pin)
        # The operator's staff: listed, shown, changed, disabled or enabled, given a PIN (staff_admin).
        r("GET", f"{API}/staff", self.list_staff)
        r("GET", f"{API}/staff/{{staff_id}}", self.get_staff)
        r("POST", f"{API}/staff/{{staff_id}}", self.change_staff)
        for action in ("disable", "enable", "pin"):
            r("POST", f"{API}/staff/{{staff_id}}/{action}", self._staff_action(action))
        r("GET", f"{API}/pin-lockouts", self.pin_lockouts)
        r("POST", f"{API}/retailers/{{retailer_id}}/settings", self.retailer_settings)
        r("POST", f"{API}/enrollment-codes", self.create_enrollment_code)
        r("POST", f"{API}/claims", self.create_claim)
        r("POST", f"{API}/claims/{{jti}}/revoke", self.revoke_claim)
        r("POST", f"{API}/devices/enroll", self.enroll)
        # The operator's tills: listed with what they last reported, renamed, withdrawn, given a new token.
        r("GET", f"{API}/devices", self.list_devices)
        r("GET", f"{API}/devices/{{device_id}}", self.get_device)
        r("POST", f"{API}/devices/{{device_id}}/rename", self.rename_device)
        r("POST", f"{API}/devices/{{device_id}}/revoke", self.revoke_device)
        r("POST", f"{API}/devices/{{device_id}}/roll", self.roll_device)
        r("GET", f"{API}/catalog", self.catalog)
        r("POST", f"{API}/redemptions", self.redeem)
        r("GET", f"{API}/redemptions/{{key}}", self.lookup_redemption)
        # A manager voids a redemption: the admin token, or a till's manager or admin in person.
        r("POST", f"{API}/redemptions/{{key}}/void", self.void_redemption)
        r("POST", f"{API}/sync", self.sync)
        r("GET", f"{API}/feed", self.feed)
        # The booklet is the platform operator's (admin token of scope all); a till's admin in person
        # (staff_auth) may only list finished editions and fetch their PDF, which are printed for all.
        r("POST", f"{API}/booklets", self.create_booklet)
        r("GET", f"{API}/booklets", self.list_booklets)
        r("GET", f"{API}/booklets/{{edition_id}}.pdf", self.booklet_pdf)  # before {edition_id}: ids hold no dot
        r("GET", f"{API}/booklets/{{edition_id}}", self.get_booklet)
        r("GET", f"{API}/booklets/{{edition_id}}/billing.csv", self.booklet_billing)
        r("POST", f"{API}/booklets/{{edition_id}}/placements", self.add_booklet_placement)
        r("POST", f"{API}/booklets/{{edition_id}}/placements/{{placement_id}}/lock", self.lock_booklet_placement)
        r("POST", f"{API}/booklets/{{edition_id}}/render", self.render_booklet)
        # The manager's report: the admin token, or a till's manager or admin in person.
        r("GET", f"{API}/reports/daily", self.daily_report)
        r("GET", f"{API}/audit", self.audit_log)

    def __call__(self, environ, start_response):
        # Who acts is said afresh for each request (a thread serves many): the credential check names them.
        audit.begin(client_address(environ, self.backend.limiter.trusted_proxies))
        devices.call_begins()

        def answering(status, headers, exc_info=None):
            # A till's call that answered without an error: when it was last seen, once a minute at most.
            devices.answered(status[:1] in "23")
            return start_response(status, headers) if exc_info is None else start_response(status, headers, exc_info)
        if self.metrics is None:
            return serve_request(self.router, environ, answering)
        return serve_measured(self.router, environ, answering, self.metrics)

    def _admit(self, environ) -> None:
        self.backend.admit(client_address(environ, self.backend.limiter.trusted_proxies))

    # --- open ------------------------------------------------------------------

    def health(self, request):
        return 200, self.backend.health()

    def ready(self, request):
        """200 when every check is ok, else 503 with the same body. Each check's value only for an admin token
        of scope metrics or all; any other caller (one sending a wrong token too) sees ok and why not."""
        token = request.bearer()
        detail = False
        if token:
            try:
                detail = bool(self.backend.require_admin(token, credentials.METRICS))
            except (Unauthorized, Forbidden):
                detail = False
        ready, body = self.backend.ready(detail)
        return (200 if ready else 503), body

    def metrics_text(self, request):
        self._admin(request, credentials.METRICS)
        text, content_type = (self.metrics or metrics()).exposition(self.backend.events_head())
        return 200, Download(text, content_type)

    def openapi(self, request):
        return 200, self._openapi

    # --- admin -----------------------------------------------------------------

    def _admin_or_staff(self, request, roles: tuple[str, ...]):
        return self.backend.require_admin_or_staff(request.bearer(), request.headers.get("x-pika-staff"),
                                                   request.headers.get("x-pika-pin", ""), roles)

    def _admin(self, request, scopes: tuple[str, ...] = credentials.OPERATOR) -> None:
        self.backend.require_admin(request.bearer(), scopes)

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

    def _staff(self, request, roles: tuple[str, ...] = ROLES):
        """A staff member at a till in person: the device token (401 without), X-Pika-Staff and X-Pika-Pin."""
        self.backend.require_device(request.bearer())
        staff_id = request.headers.get("x-pika-staff")
        if staff_id is None:
            raise Invalid("missing_field", "the X-Pika-Staff and X-Pika-Pin headers are required")
        return self.backend.require_staff(request.bearer(), staff_id, request.headers.get("x-pika-pin", ""), roles)

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

    # --- tills -----------------------------------------------------------------

    def enroll(self, request):
        body = check(request.json(), {"code": (STR, True, 64), "name": (STR, True, _NAME)})
        if not body["name"].strip():
            raise Invalid("invalid_value", "name is empty")
        # The connection's address, or a trusted proxy's X-Real-IP; never X-Forwarded-For: see enrollment_guard.
        address = client_address(request.environ, self.backend.limiter.trusted_proxies)
        return 201, self.backend.enroll(body["code"], body["name"].strip(), address)

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

    # --- the booklet ---------------------------------------------------------------

    def _booklet_admin(self, request) -> None:
        """The platform operator only: a till's admin in person is known (so told 403), not allowed."""
        if not self._booklet_reader(request):
            raise Forbidden("forbidden", "the booklet is made by the platform operator")

    def _booklet_reader(self, request) -> bool:
        """True for the operator; False for a till's admin in person, who sees finished editions only."""
        return self._admin_or_staff(request, ("admin",)).kind == "admin"

    def create_booklet(self, request):
        self._booklet_admin(request)
        return 201, self.booklets.create(booklet_bodies.edition(request.json(), check))

    def list_booklets(self, request):
        operator = self._booklet_reader(request)
        editions = self.booklets.list()
        if not operator:
            editions = [e for e in editions if e["status"] == "done"]
        return 200, {"editions": editions}

    def get_booklet(self, request):
        self._booklet_admin(request)
        return 200, self.booklets.get(request.params["edition_id"])

    def add_booklet_placement(self, request):
        self._booklet_admin(request)
        return 201, self.booklets.add_placement(request.params["edition_id"],
                                                booklet_bodies.placement(request.json(), check=check))

    def lock_booklet_placement(self, request):
        self._booklet_admin(request)
        page, position = booklet_bodies.lock(request.json(), check)
        return 200, self.booklets.lock(request.params["edition_id"], request.params["placement_id"], page, position)

    def render_booklet(self, request):
        self._booklet_admin(request)
        body = check(request.json(), booklet_bodies.RENDER_SPEC)
        return 200, self.booklets.render(request.params["edition_id"], bool(body.get("force", False)))

    def booklet_pdf(self, request):
        finished_only = not self._booklet_reader(request)
        return 200, Download(self.booklets.pdf(request.params["edition_id"], finished_only=finished_only),
                             "application/pdf")

    def booklet_billing(self, request):
        self._booklet_admin(request)
        csv_text = self.booklets.billing_csv(request.params["edition_id"])
        return 200, Download(csv_text.encode("utf-8"), "text/csv; charset=utf-8")

    # --- reports -------------------------------------------------------------------

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

    def feed(self, request):
        device = self.backend.require_device(request.bearer())
        after = _query_int(request, "after", 0, 0, 2**62)
        limit = _query_int(request, "limit", FEED_LIMIT_MAX, 1, FEED_LIMIT_MAX)
        return 200, self.backend.feed(device, after, limit)


def _optional_json(request: Request) -> dict:
    """A body that may be left out (no Content-Length, or 0): {} then; otherwise the JSON as `json()` reads it."""
    if request.environ.get("CONTENT_LENGTH") not in (None, "", "0") \
            or request.environ.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked":
        return request.json()
    return {}


_TILL_REPORT = {"app_version": (STR, False, 32), "outbox": (INT, False, None),
                "outbox_oldest_at": (NUM + NONE, False, None)}
# A sync Entry is a redemption (no `type`, as tills have always sent) or a
# manager's void (`type: "void"`); one shape declares both (openapi.json).
_VOID_REASON = 1000  # on the wire; the rule (pos_app.core.voids) keeps 200 characters after stripping
_SYNC_ENTRY = {
    "type": (STR, False, 16), "key": (STR, True, 64), "at": (NUM, True, None), "accepted": (BOOL, False, None),
    "reason": (STR + NONE, False, 32), "kind": (STR + NONE, False, 16),
    "voucher_id": (STR + NONE, False, _ID), "jti": (STR + NONE, False, 128),
    "code": (STR + NONE, False, 64), "method": (STR, False, 16), "staff_id": (STR + NONE, False, _ID),
    "decided": (STR, False, 8), "input": (STR + NONE, False, 8192), "redemption_key": (STR, False, 64), "void_reason": (STR, False, _VOID_REASON),
    "staff_proof": (STR, False, 64),  # a void's proof of its manager (pos_app.core.pins.void_proof): 64 hex
}
_REDEMPTION_ONLY = ("accepted", "reason", "kind", "voucher_id", "jti", "code", "method", "decided", "input")
_VOID_REQUIRED = ("redemption_key", "void_reason", "staff_id")


def _entry_fields(entry: dict, i: int) -> str:
    """The entry's type, once its fields fit that type (400 missing_field / unknown_field otherwise)."""
    kind = entry.get("type", "redemption")
    if kind == "void":
        required, refused = _VOID_REQUIRED, _REDEMPTION_ONLY
    elif kind == "redemption":
        required, refused = ("accepted", "method", "decided"), ("redemption_key", "void_reason", "staff_proof")
    else:
        raise Invalid("invalid_value", f"entries[{i}].type is redemption or void")
    for name in required:
        if name not in entry:
            raise Invalid("missing_field", f"entries[{i}] ({kind}) needs the field {name!r}")
    for name in refused:
        if name in entry:
            raise Invalid("unknown_field", f"entries[{i}] ({kind}) has the field {name!r}")
    if kind == "void" and (not isinstance(entry["staff_id"], str) or not IDEMPOTENCY_KEY.match(entry["redemption_key"])):
        raise Invalid("invalid_value", f"entries[{i}]: a void names its staff_id and a redemption_key")
    return kind


def make_app(data_dir: str | None = None, database: str | None = None) -> App:
    """The app over a data folder (default: $PIKA_DATA, for servers that load a factory) and its database
    (default: $PIKA_DATABASE if set, else the folder's own)."""
    import os

    data_dir = data_dir or os.environ.get("PIKA_DATA")
    if not data_dir:
        raise RuntimeError("no data folder: pass one or set PIKA_DATA")
    return App(Backend(data_dir, database=database or os.environ.get("PIKA_DATABASE") or None))
