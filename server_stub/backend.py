"""The backend over one data folder: its storage, its keys, and every operation behind one facade.

The operations live by resource in `operations/` and take the process's
`Context`; this class makes that context once (storage, clock, settings,
keys, caches) and offers each operation as a method, so the routes
(app.py), the demo data, the booklet and the tests call `backend.redeem(...)`
and need not know which module holds it.
"""

from __future__ import annotations

import time
from typing import Callable

from pos_app.core import tokens

from .datadir import DataDir, NotInitialised
from .limits import open_limiter
from .operations import admin, credentials, health, redemptions, reports, staff_auth, sync_entries, tills, vouchers, voids
from .operations import audit, devices, pin_lockout, staff_admin, staff_pins
from .operations import enrollment_codes, readiness
from .operations import till_logs, web_tills
from .operations import retailer_info, voucher_edit
from .operations import booklet_overview
from .operations import console_reports
from .operations import audit_search, test_claims, till_kinds
from .operations.context import Context
from .operations.keyring import KeyRing


class Backend:
    """`database`: a PostgreSQL URL overriding the folder's config (`serve --database`); SQLite without."""

    def __init__(self, data_dir, *, clock: Callable[[], float] = time.time, database: str | None = None):
        self.data = DataDir(data_dir)
        if not self.data.initialised:
            raise NotInitialised(f"{self.data.path} holds no backend: run `python -m server_stub init` first")
        self.config = self.data.config()
        self.database = self.data.database(database)
        self.storage = self.data.open_storage(self.database)  # migrations applied on the way
        # The booklet reads through `read` (its writes go through the storage, as operations' do); `writer`
        # is SQLite's group-commit writer, which tests watch batch (None over PostgreSQL).
        self.writer = getattr(self.storage, "writer", None)
        self.read = self.storage.read
        # The signing keys, re-read every few seconds: another process's rotation needs no restart here.
        self.keys = KeyRing(self.read, self.data.signing_key)
        self.ctx = Context(storage=self.storage, config=self.config, clock=clock, keys=self.keys)
        # Token buckets per device and client address, shared with every other process (limits/).
        self.limiter = open_limiter(self.data.path, self.database, self.config)
        self.readiness = readiness.Readiness(self.ctx, str(self.data.path),
                                             None if self.database else str(self.data.db_path))

    @property
    def kid(self) -> str | None:
        """The key that signs now."""
        return self.ctx.kid

    @property
    def public_keys(self) -> list[dict]:
        return self.ctx.public_keys

    @property
    def trust(self) -> tokens.TrustSet:
        return self.ctx.trust

    @property
    def signing_key(self):
        """The private key that signs now (tests sign tokens of their own with it)."""
        return self.ctx.signer()[0]

    @property
    def clock(self) -> Callable[[], float]:
        """The operations' clock: setting it here (as tests do to move time) sets theirs."""
        return self.ctx.clock

    @clock.setter
    def clock(self, clock: Callable[[], float]) -> None:
        self.ctx.clock = clock

    def close(self) -> None:
        """Let queued writes commit, then close every connection opened: the writer's and each thread's reads."""
        self.limiter.close()
        self.storage.close()

    # --- credentials -------------------------------------------------------------

    def require_admin(self, token: str | None, scopes: tuple[str, ...] = credentials.OPERATOR) -> str:
        return credentials.require_admin(self.ctx, token, scopes)

    def require_device(self, token: str | None, touch: bool = True) -> dict:
        device = credentials.require_device(self.ctx, token, touch)
        audit.identify("device", device["id"], device["name"], device["retailer_id"])
        self.limiter.check_device(device["id"])  # 429 rate_limited once its bucket is used up
        return device

    def admit(self, address: str, named_by_proxy: bool = False) -> None:
        """A request from `address` (http.client_address; `named_by_proxy`: a trusted proxy's X-Real-IP),
        before routing: 429 rate_limited if it sends too many."""
        self.limiter.check_address(address, named_by_proxy)

    def require_admin_or_staff(self, token: str | None, staff_id: str | None, pin: str,
                               roles: tuple[str, ...]) -> staff_auth.Caller:
        return staff_auth.require_admin_or_staff(self.ctx, token, staff_id, pin, roles)

    def require_staff(self, token: str | None, staff_id: str, pin: str, roles: tuple[str, ...]) -> staff_auth.Caller:
        return staff_auth.require_staff(self.ctx, token, staff_id, pin, roles)

    def pin_lockouts(self) -> list[dict]:
        return pin_lockout.lockouts(self.ctx)

    # --- admin: retailers, stores, staff, enrollment codes -------------------------

    def create_retailer(self, name: str) -> dict:
        return admin.create_retailer(self.ctx, name)

    def list_retailers(self) -> list[dict]:
        return admin.list_retailers(self.ctx)

    def create_store(self, retailer_id: str, name: str, timezone: str = "America/Asuncion") -> dict:
        return admin.create_store(self.ctx, retailer_id, name, timezone)

    def list_stores(self, retailer_id: str | None) -> list[dict]:
        return admin.list_stores(self.ctx, retailer_id)

    def create_staff(self, retailer_id: str, name: str, role: str, pin: str, store_id: str | None = None) -> dict:
        return admin.create_staff(self.ctx, retailer_id, name, role, pin, store_id)

    def list_staff(self, retailer_id: str | None = None, store_id: str | None = None,
                   include_disabled: bool = False) -> list[dict]:
        return staff_admin.list_staff(self.ctx, retailer_id, store_id, include_disabled)

    def get_staff(self, staff_id: str) -> dict:
        return staff_admin.show(self.ctx, staff_id)

    def change_staff(self, staff_id: str, changes: dict) -> dict:
        return staff_admin.change(self.ctx, staff_id, changes)

    def disable_staff(self, staff_id: str, disabled: bool = True) -> dict:
        return staff_admin.set_disabled(self.ctx, staff_id, disabled)

    def set_staff_pin(self, staff_id: str, pin: object) -> dict:
        return staff_admin.set_pin(self.ctx, staff_id, pin)

    def get_retailer(self, retailer_id: str) -> dict:
        return retailer_info.retailer(self.ctx, retailer_id)

    def retailers_overview(self) -> list[dict]:
        return retailer_info.overview(self.ctx)

    def retailer_settings(self, retailer_id: str, staff_anywhere: bool | None = None,
                          offline_days: int | None = None) -> dict:
        return admin.retailer_settings(self.ctx, retailer_id, staff_anywhere, offline_days)

    # --- admin: devices (tills) -----------------------------------------------------

    def list_devices(self, retailer_id: str | None = None, store_id: str | None = None) -> list[dict]:
        return devices.list_devices(self.ctx, retailer_id, store_id)

    def get_device(self, device_id: str) -> dict:
        return devices.get_device(self.ctx, device_id)

    def rename_device(self, device_id: str, name: object) -> dict:
        return devices.rename(self.ctx, device_id, name)

    def revoke_device(self, device_id: str, reason: object = None) -> dict:
        return devices.revoke(self.ctx, device_id, reason)

    def roll_device(self, device_id: str, ttl_s: object = devices.ROLL_TTL_S) -> dict:
        return devices.roll(self.ctx, device_id, ttl_s)

    def staff_me(self, caller: staff_auth.Caller) -> dict:
        return staff_pins.staff_me(self.ctx, caller)

    def change_pin(self, caller: staff_auth.Caller, new_pin: object) -> dict:
        return staff_pins.change_pin(self.ctx, caller, new_pin)

    def create_enrollment_code(self, store_id: str, ttl_s: int = admin.ENROLLMENT_TTL_S) -> dict:
        return admin.create_enrollment_code(self.ctx, store_id, ttl_s)

    def open_enrollment_codes(self, retailer_id: str | None = None, store_id: str | None = None) -> list[dict]:
        return enrollment_codes.open_codes(self.ctx, retailer_id, store_id)

    def cancel_enrollment_code(self, handle: object, retailer_id: str | None = None,
                               store_id: str | None = None) -> dict:
        return enrollment_codes.cancel(self.ctx, handle, retailer_id, store_id)

    # --- web tills (the shop page's devices) -------------------------------------------

    def create_web_till(self, store_id: str, name: object) -> dict:
        return web_tills.create(self.ctx, store_id, name)

    def web_till_token(self, device_id: str) -> dict:
        return web_tills.new_token(self.ctx, device_id)

    def web_till_shop_code(self, device_id: str) -> dict:
        return web_tills.shop_code(self.ctx, device_id)

    def set_up_web_till(self, code_text: str, address: str) -> dict:
        return web_tills.set_up(self.ctx, code_text, address)

    def is_web_till(self, device_id: str) -> bool:
        return web_tills.is_web(self.ctx, device_id)

    def list_web_tills(self, retailer_id: str | None = None, store_id: str | None = None) -> list[dict]:
        return web_tills.list_web_tills(self.ctx, retailer_id, store_id)

    def web_till_today(self, device: dict) -> dict:
        return web_tills.today(self.ctx, device)

    # --- vouchers, printed codes, claims ---------------------------------------------

    def create_voucher(self, body: dict) -> dict:
        return vouchers.create_voucher(self.ctx, body)

    def get_voucher(self, voucher_id: str) -> dict:
        return vouchers.get_voucher(self.ctx, voucher_id)

    def list_vouchers(self, retailer_id: str | None) -> list[dict]:
        return vouchers.list_vouchers(self.ctx, retailer_id)

    def change_voucher(self, voucher_id: str, action: str) -> dict:
        return vouchers.change_voucher(self.ctx, voucher_id, action)

    def edit_voucher(self, voucher_id: str, changes: dict) -> dict:
        return voucher_edit.edit_voucher(self.ctx, voucher_id, changes)

    def voucher_extras(self, voucher_id: str, uses: bool = False) -> dict:
        return voucher_edit.voucher_extras(self.ctx, voucher_id, uses)

    def create_printed_code(self, voucher_id: str, code_text: str) -> dict:
        return vouchers.create_printed_code(self.ctx, voucher_id, code_text)

    def list_printed_codes(self, voucher_id: str | None) -> list[dict]:
        return vouchers.list_printed_codes(self.ctx, voucher_id)

    def static_token(self, code: str) -> str:
        return vouchers.static_token(self.ctx, code)

    def create_claim(self, voucher_id: str, customer_id: str) -> dict:
        return vouchers.create_claim(self.ctx, voucher_id, customer_id)

    def revoke_claim(self, jti: str) -> dict:
        return vouchers.revoke_claim(self.ctx, jti)

    # --- tills ----------------------------------------------------------------------

    def enroll(self, code_text: str, name: str, address: str = "local", log_key: str | None = None) -> dict:
        return tills.enroll(self.ctx, code_text, name, address, log_key)

    def till_log(self, device: dict, body: dict) -> dict:
        """A batch of a till's log checked and kept (operations/till_logs.py)."""
        return till_logs.receive(self.ctx, device, body)

    def catalog(self, device: dict) -> dict:
        return tills.catalog(self.ctx, device)

    def feed(self, device: dict, after: int, limit: int) -> dict:
        return tills.feed(self.ctx, device, after, limit)

    # --- redemptions, sync, voids ---------------------------------------------------------

    def redeem(self, device: dict, key: str, body: dict) -> redemptions.Answered:
        return redemptions.redeem(self.ctx, device, key, body)

    def lookup_redemption(self, device: dict, key: str) -> dict:
        return redemptions.lookup_redemption(self.ctx, device, key)

    def sync(self, device: dict, entries: list[dict], till_time: float | None = None, till: dict | None = None,
             user_agent: str | None = None) -> dict:
        """`till`: what the till reports of itself (version, outbox), recorded with the batch."""
        return sync_entries.sync(self.ctx, device, entries, till_time, devices.till_report(till, user_agent))

    def void(self, caller, redemption_key: str, reason: object) -> dict:
        return voids.void(self.ctx, caller, redemption_key, reason)

    # --- reports, health ----------------------------------------------------------------

    def daily_report(self, caller, query: dict[str, str]) -> reports.File | dict:
        return reports.daily(self.ctx, caller, query)

    # --- the console's manager pages (today, a report's redemptions) ----------------------

    def today_figures(self, stores: list[dict]) -> list[dict]:
        return console_reports.today(self.ctx, stores)

    def report_redemptions(self, stores: list[dict], first, last, offset: int = 0,
                           limit: int = 50) -> tuple[int, list[dict]]:
        return console_reports.redemptions(self.ctx, stores, first, last, offset=offset, limit=limit)

    def redemption(self, key: str) -> dict:
        return console_reports.redemption(self.ctx, key)

    def health(self) -> dict:
        return health.health(self.ctx)

    def ready(self, detail: bool = False) -> tuple[bool, dict]:
        """(ready, the answer) of `/health/ready`; `detail`: each check's value too."""
        return self.readiness.check(detail)

    def events_head(self) -> int:
        return readiness.events_head(self.ctx)

    def audit_log(self, **query) -> dict:
        return audit.listing(self.ctx, **query)

    # --- the console's staff, tills, test claims and audit pages ---------------------------

    def device_kinds(self, retailer_id: str | None = None) -> dict[str, str]:
        return till_kinds.kinds(self.ctx, retailer_id)

    def issue_test_claim(self, voucher_id: str, customer_id: str) -> dict:
        return test_claims.issue(self.ctx, voucher_id, customer_id)

    def test_claims(self, retailer_id: str | None) -> list[dict]:
        return test_claims.recent(self.ctx, retailer_id)

    def get_test_claim(self, jti: str) -> dict:
        return test_claims.get(self.ctx, jti)

    def audit_search(self, **query) -> dict:
        return audit_search.search(self.ctx, **query)

    def audit_actions(self, retailer_id: str | None = None) -> list[str]:
        return audit_search.actions(self.ctx, retailer_id)

    # --- the booklet's lists (the console) ------------------------------------------------

    def booklet_overview(self) -> dict[str, dict]:
        return booklet_overview.overview(self.ctx)

    def booklet_pdf_digest(self, edition_id: str) -> str | None:
        return booklet_overview.pdf_digest(self.ctx, edition_id)
