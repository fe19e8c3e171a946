"""The shop page: a till in a browser, for a shop without one.

The browser is a web till (its token in the `pika_webtill` cookie, made on
the managers' page: shop_setup.py); a cashier of its store signs in with
staff id and PIN, checked as at a till (`require_staff` with the web till's
token: that device's own lockout), which opens a session of kind "shop" (no
manager page opens in it). A code typed, or read by the camera, is redeemed
online through the same `require_device` and `redeem` as a till's, so
revocation, rate limits, idempotency and the verdict are a till's; the
verdict is said in the till's own words (pos_app.words.reasons).

Redeeming works as a plain form POST (no script needed) and, from shop.js,
as a fetch() of the JSON route with the same form: still one-time-token
checked, a fresh token and idempotency key coming back with each answer.
There is no offline mode: when the backend cannot be reached, shop.js says
the discount cannot be checked, never an old verdict.
"""

from __future__ import annotations

import json
import re
import secrets
import time

from pos_app.core.domain import IDEMPOTENCY_KEY, Discount, Method, Reason, Verdict
from pos_app.core.tokens import MAX_TOKEN_LENGTH
from pos_app.words import i18n, labels, reasons
from pos_app.words.i18n import N_

from ...errors import DomainError, TooMany, Unauthorized
from ...http import Download, status_of
from ...operations import console_sessions
from ...operations.common import store_of
from .. import web
from ..forms import FormInvalid
from ..texts import ERROR_TEXTS
from ..view import SESSION_COOKIE
from .shop_setup import WEBTILL_COOKIE
from .static import version

SHOP_ROLES = ("cashier", "manager", "admin")
METHODS = (Method.TYPED, Method.CAMERA)
# What a code can hold: a short code (letters, digits, dashes), a printed code, or a token from a QR
# (base64url and dots; ' and ? are a scanner's keyboard layout, repaired by the verdict's reading).
_CODE = re.compile(r"[A-Za-z0-9 ._'?-]+")
SYMBOLS = {"accepted": "✓", "caution": "!", "refused": "✕"}
JSON_HEADERS = (("Cache-Control", "no-store"), ("X-Content-Type-Options", "nosniff"))
UNKNOWN_TILL = {
    "device_revoked": N_("This web till was withdrawn by a manager: it cannot redeem any more. Ask your manager "
                         "for a new one."),
    "device_rolled": N_("This web till's key was replaced: set it up again with the code your manager was given."),
    "unauthorized": N_("This browser's web till was set up in another browser, or no longer exists. Ask your "
                       "manager for a shop code."),
}


def new_key() -> str:
    """An idempotency key for one attempt: the same form sent twice redeems once."""
    return "web-" + secrets.token_urlsafe(18)


# --- the web till behind this browser ---------------------------------------------------------------


def _till(view, touch: bool = False) -> tuple[dict | None, str | None]:
    """(the web till of this browser's cookie, None) or (None, why not: none, unauthorized, device_revoked …)."""
    token = view.cookies.get(WEBTILL_COOKIE)
    if not token or len(token) > 128:
        return None, "none"
    try:
        device = view.backend.require_device(token, touch=touch)
    except Unauthorized as exc:
        return None, exc.code if exc.code in UNKNOWN_TILL else "unauthorized"
    return device, None


def _signed_in_here(view, device: dict | None) -> bool:
    return device is not None and view.who is not None and view.who.kind == "shop" \
        and view.who.device_id == device["id"]


# --- pages ----------------------------------------------------------------------------------------


def shop_page(view, verdict: dict | None = None, status: int = 200):
    device, problem = _till(view)
    if problem is not None:
        return view.page("shop_page.html", state=problem, problem=UNKNOWN_TILL.get(problem), device=None,
                         store=None, verdict=None, today=None, key="")
    store = store_of(view.ctx, device["store_id"])
    if not _signed_in_here(view, device):
        if view.form is not None:
            view.form.values.pop("pin", None)  # a refused sign-in: the PIN never echoed back
        return view.page("shop_page.html", status=status, state="sign_in", problem=None, device=device,
                         store=store, verdict=None, today=None, key="")
    if verdict is None and "code" in view.errors:  # the code field refused: said as the verdict's panel
        verdict = _refusal_panel(view.errors["code"], view.lang, None)
    elif verdict is None and view.message is not None:  # a refusal: in the panel, not above it as well
        verdict = _refusal_panel(view.message, view.lang, view.message_code)
        view.message = None
    today = _today(view, device)
    if view.form is not None:
        view.form.values.pop("code", None)  # the next code starts from an empty field
        view.form.values.pop("key", None)
    return view.page("shop_page.html", status=status, state="ready", problem=None, device=device, store=store,
                     verdict=verdict, today=today, key=new_key(),
                     zxing_wasm=version("zxing_reader.wasm", "vendor"))


def sign_in(view):
    form = view.form
    staff_id = form.text("staff_id", 64)
    pin = form.values.get("pin", "")
    if not pin:
        form.fail("pin", N_("This field is required."))
    elif len(pin) > 12 or not pin.isascii() or not pin.isdigit():
        form.fail("pin", N_("A PIN is 4 to 12 digits."))
    form.done()
    device, problem = _till(view)
    if device is None or not view.backend.is_web_till(device["id"]):
        raise Unauthorized(problem if problem in UNKNOWN_TILL else "unauthorized", "this browser is no web till")
    # As at a till: the member must work at this store, and wrong PINs lock them out of this web till.
    caller = view.backend.require_staff(view.cookies[WEBTILL_COOKIE], staff_id, pin, SHOP_ROLES)
    if view.session is not None:
        console_sessions.end(view.ctx, view.session)  # a manager who set the till up hands the browser over
    session_id = console_sessions.create(view.ctx, "shop", view.lang, staff_id=caller.staff_id,
                                         device_id=device["id"], retailer_id=caller.retailer_id)
    view.set_cookies.append(web.cookie(SESSION_COOKIE, session_id, secure=view.secure))
    return view.redirect("/console/shop")


def sign_out(view):
    view.sign_out()
    return view.redirect("/console/shop?ok=shift_ended")


sign_out.token_if_signed_in = True  # a session already ended has nothing left to protect


# --- redeeming ------------------------------------------------------------------------------------


def _redeem(view) -> dict:
    """The form's code redeemed at this web till: the verdict's panel, in the shop's language."""
    form = view.form
    code = form.text("code", MAX_TOKEN_LENGTH)
    if code is not None and not _CODE.fullmatch(code):
        form.fail("code", reasons.HEADLINES[Reason.MALFORMED])  # the till's words for what is no code
    method = form.choice("method", METHODS)
    key = form.values.get("key", "")
    if not IDEMPOTENCY_KEY.match(key):
        form.fail("key", N_("This form is incomplete: open the page again."))
    form.done()
    device, problem = _till(view, touch=True)
    if device is None:
        raise Unauthorized(problem if problem in UNKNOWN_TILL else "unauthorized", "this browser is no web till")
    if device["id"] != view.who.device_id:
        raise Unauthorized("unauthorized", "this browser's web till is not the one signed in")
    answered = view.backend.redeem(device, key, {"input": code, "method": method, "staff_id": view.who.staff_id})
    if view.console.metrics is not None:  # counted with the tills' online redemptions (/metrics)
        view.console.metrics.redemption("online", answered.status == 201,
                                        (answered.body.get("verdict") or {}).get("reason"))
    return verdict_panel(answered.body, view.lang, device["timezone"])


def redeem(view):
    return shop_page(view, _redeem(view))


def redeem_json(view):
    """The same, for shop.js: the verdict's texts, the day's list and the next form's token and key."""
    status = 200
    try:
        verdict = _redeem(view)
    except FormInvalid as exc:
        status = 400
        first = exc.fields.get("code") or next(iter(exc.fields.values()))
        verdict = _refusal_panel(first, view.lang, "invalid_form")
    except DomainError as exc:
        status = status_of(exc)
        verdict = _refusal_panel(_said(exc), view.lang, exc.code)
    device, _problem = _till(view)
    body = {"verdict": verdict, "csrf": view.form_token(), "key": new_key(),
            "today": None if device is None else _today(view, device)}
    return status, Download(json.dumps(body, ensure_ascii=False).encode("utf-8"), "application/json",
                            JSON_HEADERS)


# --- what the page says ------------------------------------------------------------------------------


def verdict_panel(answer: dict, lang: str, timezone: str | None) -> dict:
    """A redemption's answer as the till's verdict panel says it: state (colour), symbol and texts."""
    v = Verdict.from_json(answer["verdict"])
    state = reasons.severity(v)
    with i18n.using(lang):
        out = {"state": state, "symbol": SYMBOLS[state], "reason": v.reason or "", "discount": "", "title": "",
               "details": ""}
        out["headline"] = i18n._("Accepted: give the discount") if v.accepted else reasons.headline(v.reason)
        if v.voucher is not None:
            out["title"] = v.voucher.text("title", lang)
            if v.accepted:
                out["discount"] = i18n.format_discount(v.voucher.discount)
        if v.accepted:
            lines = [v.voucher.text("terms", lang), v.voucher.retailer_name] if v.voucher is not None else []
            out["details"] = "\n".join(line for line in lines if line)
        else:
            out["details"] = reasons.advice(v, timezone=timezone, now=time.time())
    return out


def _said(exc: DomainError) -> tuple[str, dict]:
    """A refusal's text by its code, as the console's pages say it (console.refusal, which imports the pages)."""
    if isinstance(exc, TooMany) and exc.code == "too_many_attempts" and "retry_after_s" in exc.extra:
        return ERROR_TEXTS["too_many_attempts"], {"seconds": exc.extra["retry_after_s"]}
    return UNKNOWN_TILL.get(exc.code) or ERROR_TEXTS.get(exc.code, exc.message), {}


def _refusal_panel(said: tuple[str, dict], lang: str, code: str | None) -> dict:
    """A refusal that never reached a verdict (the code field's, a withdrawn till's …): amber or red, no discount."""
    message, fields = said
    with i18n.using(lang):
        text = i18n._(message)
        text = text.format(**fields) if fields else text
        malformed = message == reasons.HEADLINES[Reason.MALFORMED]
        details = i18n._(reasons.ADVICE[Reason.MALFORMED]) if malformed else i18n._(reasons.DO_NOT_GIVE)
    state = "caution" if code in (None, "invalid_form") else "refused"
    return {"state": state, "symbol": SYMBOLS[state], "reason": "malformed" if malformed else (code or ""),
            "headline": text, "discount": "", "title": "", "details": details}


def _today(view, device: dict) -> dict:
    """The day's attempts at this web till, as the page's list shows them."""
    day = view.backend.web_till_today(device)
    lang, tz = view.lang, device["timezone"]
    rows = []
    with i18n.using(lang):
        for item in day["attempts"]:
            accepted = item["status"] == "accepted"
            caution = item["reason"] in reasons.CAUTION
            title = ""
            for language in (lang, "es", "en", "pt", "gn"):
                title = (item["texts"].get(language) or {}).get("title") or ""
                if title:
                    break
            discount = ""
            if accepted and item["discount"] is not None:
                discount = i18n.format_discount(Discount(**item["discount"]))
            rows.append({
                "time": i18n.format_time(item["at"], tz),
                "state": "accepted" if accepted else ("caution" if caution else "refused"),
                "headline": i18n._("Accepted") if accepted else reasons.headline(item["reason"]),
                "title": title, "discount": discount,
                "how": labels.method_name(item["method"]),
                "code": item["code"] or "",
            })
        counts = {"accepted": day["accepted"], "refused": day["refused"]}
        summary = i18n._("Today at this web till: {accepted} accepted, {refused} refused.").format(
            accepted=i18n.format_number(counts["accepted"]), refused=i18n.format_number(counts["refused"]))
    return {"rows": rows, "summary": summary, **counts}


def routes():
    return [
        ("GET", "/shop", shop_page, "open"),
        ("POST", "/shop/sign-in", sign_in, "open", shop_page),
        ("POST", "/shop/sign-out", sign_out, "open"),
        ("POST", "/shop/redeem", redeem, "shop", shop_page),
        ("POST", "/shop/redeem.json", redeem_json, "shop"),
    ]

