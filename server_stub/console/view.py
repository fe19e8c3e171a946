"""One console request as its page sees it: who is signed in, in which language, what they may reach.

Every page handler takes a `View`. The scope checks live here, once: a page
asks `own_retailer`, `own_store`, `own_voucher` … for an id from a URL or a
form, and gets the row, or a 403 page when it belongs to another retailer or
store (a manager of store A opening store B's). Lists ask `retailer_filter`.
"""

from __future__ import annotations

import secrets
from typing import Any

from pos_app.core.domain import LANGUAGES

from ..errors import Forbidden, NotFound
from ..http import Request
from ..operations import console_sessions
from ..operations.console_signin import Who
from ..operations.staff_auth import Caller
from . import render, web
from .forms import Form

SESSION_COOKIE = "pika_session"
PRE_COOKIE = "pika_pre"  # signed-out forms' token (double submit): the sign-in page, the language switch
LANGUAGE_COOKIE = "pika_lang"

# Who may open each area of the console.
AREAS = {
    "open": lambda who: True,
    "any": lambda who: who is not None,
    "signed": lambda who: who is not None and who.kind != "shop",
    "retailers": lambda who: who is not None and who.operator,
    "chain": lambda who: who is not None and (who.operator or (who.kind == "staff" and who.role == "admin")),
    "claims": lambda who: who is not None and (who.kind == "operator" or (who.kind == "staff" and who.role == "admin")),
    "reports": lambda who: who is not None and (who.operator or who.kind == "staff"),
    "webtills": lambda who: who is not None and (who.operator or who.kind == "staff"),
    "audit": lambda who: who is not None and (who.operator or (who.kind == "staff" and who.role == "admin")),
    "booklet": lambda who: who is not None and who.operator,
    # the backend's findings (pages/findings.py): a manager their store's, an admin their retailer's
    "findings": lambda who: who is not None and (who.operator or who.kind == "staff"),
    "shop": lambda who: who is not None and who.kind == "shop",
}


class View:
    def __init__(self, console, request: Request):
        self.console = console
        self.backend = console.backend
        self.ctx = console.backend.ctx
        self.request = request
        self.cookies = web.cookies_of(request)
        self.session: console_sessions.Session | None = None
        self.who: Who | None = None
        self.form: Form | None = None
        self.errors: dict[str, tuple[str, dict]] = {}  # a form's wrong fields, when a POST is shown again
        self.message: tuple[str, dict] | None = None  # a refusal said above the form
        self.message_code = ""  # its stable code, shown small beside it
        self.set_cookies: list[str] = []
        self.secure = web.is_https(request, console.trusted_front(request))
        self._pre: str | None = None

    def may(self, area: str) -> bool:
        """Whether the signed-in person may open `area` (the menu shows only those)."""
        return AREAS[area](self.who)

    def notice(self, code: str) -> str | None:
        """The text of a `?ok=` code (a redirect's after a change), in the page's language; unknown: none."""
        from .texts import NOTICES

        return render.translate(NOTICES[code]) if code in NOTICES else None

    # --- the language --------------------------------------------------------------

    @property
    def lang(self) -> str:
        if self.session is not None and self.session.language in LANGUAGES:
            return self.session.language
        chosen = self.cookies.get(LANGUAGE_COOKIE)
        if chosen in LANGUAGES:
            return chosen
        for part in self.request.headers.get("accept-language", "")[:200].split(","):
            code = part.split(";")[0].strip().lower()[:2]
            if code in LANGUAGES:
                return code
        return "es"

    # --- forms' tokens ----------------------------------------------------------------

    def form_token(self) -> str:
        """The token a form of this page carries: the session's one-time kind, or the signed-out one."""
        if self.session is not None:
            return console_sessions.form_token(self.session)
        if self._pre is None:
            self._pre = self.cookies.get(PRE_COOKIE) or ""
            if len(self._pre) != 43:
                self._pre = secrets.token_urlsafe(32)
                self.set_cookies.append(web.cookie(PRE_COOKIE, self._pre, secure=self.secure, same_site="Strict",
                                                   path="/console/"))
        return self._pre

    # --- answers -----------------------------------------------------------------------

    def page(self, template: str, status: int = 200, **context: Any) -> tuple[int, Any]:
        body = render.render(template, self.lang, view=self, who=self.who, errors=self.errors,
                             values=self.form.values if self.form is not None else {}, message=self.message,
                             path=self.request.path, **context)
        return status, web.page(body, tuple(self.set_cookies))

    def sign_out(self) -> None:
        """End this browser's session (audited as a sign-out) and forget its cookie."""
        if self.session is not None:
            who = self.who
            console_sessions.end(self.ctx, self.session, retailer_id=who.retailer_id,
                                 signed_out_by=who.staff_id or (who.token_hash or "")[:12])
            self.session = None
        self.set_cookies.append(web.cookie(SESSION_COOKIE, "", secure=self.secure, max_age=0))

    def redirect(self, location: str) -> tuple[int, Any]:
        return web.redirect(location, tuple(self.set_cookies))

    def query(self, name: str, max_len: int = 64) -> str:
        return self.request.query.get(name, "")[:max_len]

    # --- scope -------------------------------------------------------------------------

    def retailer_filter(self) -> str | None:
        """The retailer a list is limited to: the signed-in staff's, or None (the operator sees all)."""
        return None if self.who is None or self.who.retailer_id is None else self.who.retailer_id

    def store_filter(self) -> str | None:
        """The store a manager is limited to (None: every store of the retailer, or the operator's all)."""
        if self.who is not None and self.who.kind == "staff" and self.who.role == "manager":
            return self.who.store_id
        return self.who.store_id if self.who is not None and self.who.kind == "shop" else None

    def _refuse(self) -> Forbidden:
        return Forbidden("not_yours", "this belongs to another retailer or store")

    def own_retailer(self, retailer_id: str | None) -> dict:
        if not retailer_id:
            raise NotFound("not_found", "no such retailer")
        mine = self.retailer_filter()
        if mine is not None and retailer_id != mine:
            raise self._refuse()
        for row in self.backend.list_retailers():
            if row["id"] == retailer_id:
                return row
        raise NotFound("not_found", "no such retailer")

    def own_store(self, store_id: str | None) -> dict:
        from ..operations.common import store_of

        if not store_id or len(store_id) > 64:
            raise NotFound("not_found", "no such store")
        store = store_of(self.ctx, store_id)
        mine = self.retailer_filter()
        if mine is not None and store["retailer_id"] != mine:
            raise self._refuse()
        limited = self.store_filter()
        if limited is not None and store["id"] != limited:
            raise self._refuse()
        return store

    def own_voucher(self, voucher_id: str | None) -> dict:
        if not voucher_id or len(voucher_id) > 64:
            raise NotFound("not_found", "no such voucher")
        voucher = self.backend.get_voucher(voucher_id)
        mine = self.retailer_filter()
        if mine is not None and voucher["retailer_id"] != mine:
            raise self._refuse()
        return voucher

    def own_staff(self, staff_id: str | None) -> dict:
        if not staff_id or len(staff_id) > 64:
            raise NotFound("not_found", "no such staff member")
        member = self.backend.get_staff(staff_id)
        mine = self.retailer_filter()
        if mine is not None and member["retailer_id"] != mine:
            raise self._refuse()
        return member

    def own_device(self, device_id: str | None) -> dict:
        if not device_id or len(device_id) > 64:
            raise NotFound("not_found", "no such till")
        device = self.backend.get_device(device_id)
        mine = self.retailer_filter()
        if mine is not None and device["retailer_id"] != mine:
            raise self._refuse()
        limited = self.store_filter()
        if limited is not None and device["store_id"] != limited:
            raise self._refuse()
        return device

    def stores(self) -> list[dict]:
        """The stores this person may see."""
        stores = self.backend.list_stores(self.retailer_filter())
        limited = self.store_filter()
        return [s for s in stores if limited is None or s["id"] == limited]

    def retailers(self) -> list[dict]:
        mine = self.retailer_filter()
        return [r for r in self.backend.list_retailers() if mine is None or r["id"] == mine]

    def caller(self) -> Caller:
        """Who asks, as the reports and voids operations take it (the operator: every retailer)."""
        who = self.who
        if who is None or who.kind == "operator":
            return Caller("admin")
        return Caller("staff", who.retailer_id, who.store_id, who.device_id, who.staff_id, who.role,
                      retailer_wide=who.store_id is None)
