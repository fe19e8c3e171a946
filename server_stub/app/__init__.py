"""The WSGI application: routes, request shapes, and nothing else.

Each handler checks credentials and the body's shape, calls one Backend
operation and returns its answer. `make_app(data_dir)` is what servers load.

The handlers live by resource: admin.py, tills.py, booklet.py (over callers.py and
shapes.py); this module holds the route table, the WSGI entry and `make_app`.
"""

from __future__ import annotations

import json
from importlib import resources

from ..backend import Backend
from ..booklet.editions import Booklets
from ..console import Console
from ..errors import Forbidden, Unauthorized
from ..http import Download, Router, client_address, serve_measured, serve_request
from ..metrics import metrics
from ..operations import audit, credentials, devices
from .admin import AdminRoutes
from .booklet import BookletRoutes
from .shapes import API
from .tills import TillRoutes


class App(AdminRoutes, TillRoutes, BookletRoutes):
    """Holds the Backend and answers WSGI calls; the handlers live by resource in this package."""

    def __init__(self, backend: Backend):
        self.backend = backend
        self.booklets = Booklets(backend)
        self.router = Router()
        self.router.admit = self._admit  # the client address's rate limit, before routing or any body
        self.metrics = metrics()  # None: answers uncounted (bench/metrics_cost.py's reference)
        # The web console's pages (console/): `/` and everything under /console/, with a router of its own.
        self.console = Console(backend, self.booklets)
        self.console.router.admit = self._admit
        self.console.metrics = self.metrics
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
        r("POST", f"{API}/till-log", self.till_log)
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
        # Reconciliation's findings: the admin token every retailer's, a retailer's admin in person theirs.
        r("GET", f"{API}/findings", self.list_findings)
        r("POST", f"{API}/findings/{{finding_id}}/resolve", self.resolve_finding)
        r("POST", f"{API}/reconcile", self.run_reconcile)

    def __call__(self, environ, start_response):
        # Who acts is said afresh for each request (a thread serves many): the credential check names them.
        audit.begin(client_address(environ, self.backend.limiter.trusted_proxies))
        devices.call_begins()

        def answering(status, headers, exc_info=None):
            # A till's call that answered without an error: when it was last seen, once a minute at most.
            devices.answered(status[:1] in "23")
            return start_response(status, headers) if exc_info is None else start_response(status, headers, exc_info)
        path = environ.get("PATH_INFO") or "/"
        if path == "/" or path.startswith("/console/") or path == "/console":
            router, serve = self.console.router, self.console.serve
        else:
            router, serve = self.router, serve_request
        if self.metrics is None:
            return serve(router, environ, answering)
        return serve_measured(router, environ, answering, self.metrics, serve)

    def _admit(self, environ) -> None:
        address = client_address(environ, self.backend.limiter.trusted_proxies)
        # Another address than the connection's: a trusted proxy named its client, who is limited even when
        # that address lies in the proxies' own networks (tills over a VPN): never the local exemption.
        self.backend.admit(address, named_by_proxy=address != str(environ.get("REMOTE_ADDR") or "")[:64])

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


def make_app(data_dir: str | None = None, database: str | None = None) -> App:
    """The app over a data folder (default: $PIKA_DATA, for servers that load a factory) and its database
    (default: $PIKA_DATABASE if set, else the folder's own)."""
    import os

    data_dir = data_dir or os.environ.get("PIKA_DATA")
    if not data_dir:
        raise RuntimeError("no data folder: pass one or set PIKA_DATA")
    return App(Backend(data_dir, database=database or os.environ.get("PIKA_DATABASE") or None))
