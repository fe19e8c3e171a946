"""Signing in and out, and the language switch.

Two ways in, on one page: the platform operator's admin token, or a staff
member's id and PIN (manager or admin). A new session gets a new id every
time (no fixation), its cookie HttpOnly, SameSite=Lax, Secure under HTTPS,
with no Max-Age, so closing the browser forgets it too.
"""

from __future__ import annotations

from pos_app.core.domain import LANGUAGES
from pos_app.words.i18n import N_

from ...operations import console_sessions, console_signin
from .. import web
from ..view import LANGUAGE_COOKIE, SESSION_COOKIE


def sign_in_page(view):
    if view.who is not None:
        return view.redirect("/console/")
    if view.query("expired") == "1" and view.message is None:
        view.message = (N_("Your session ended (too long idle, or signed out elsewhere): sign in again."), {})
        view.message_code = "session_ended"
    return view.page("signin.html", next=web.safe_next(view.request.query.get("next")))


def sign_in(view):
    form = view.form
    how = form.choice("how", ("token", "staff"))
    if how == "token":
        token = form.text("token", 512)
        form.done()
        who = console_signin.sign_in_operator(view.ctx, token)
        session_id = console_sessions.create(view.ctx, "operator", view.lang, token_hash=who.token_hash)
    else:
        staff_id = form.text("staff_id", 64)
        pin = form.values.get("pin", "")
        if not pin:
            form.fail("pin", N_("This field is required."))
        elif len(pin) > 12 or not pin.isascii() or not pin.isdigit():
            form.fail("pin", N_("A PIN is 4 to 12 digits."))
        form.done()
        who = console_signin.sign_in_staff(view.ctx, staff_id, pin)
        session_id = console_sessions.create(view.ctx, "staff", view.lang, staff_id=who.staff_id,
                                             retailer_id=who.retailer_id)
    view.set_cookies.append(web.cookie(SESSION_COOKIE, session_id, secure=view.secure))
    return view.redirect(web.safe_next(form.values.get("next")))


def sign_out(view):
    view.sign_out()
    return view.redirect("/console/sign-in")


sign_out.token_if_signed_in = True  # a session already ended has nothing left to protect


def language(view):
    chosen = view.form.choice("language", LANGUAGES)
    view.form.done()
    if view.session is not None:
        console_sessions.set_language(view.ctx, view.session, chosen)
    view.set_cookies.append(web.cookie(LANGUAGE_COOKIE, chosen, secure=view.secure, max_age=400 * 86400))
    return view.redirect(web.safe_next(view.form.values.get("next")))


def _shown_again(view):
    """A refused sign-in: the page again, the PIN never echoed back."""
    if view.form is not None:
        view.form.values.pop("pin", None)
        view.form.values.pop("token", None)
    return sign_in_page(view)


def routes():
    return [
        ("GET", "/sign-in", sign_in_page, "open"),
        ("POST", "/sign-in", sign_in, "open", _shown_again),
        ("POST", "/sign-out", sign_out, "open"),
        ("POST", "/language", language, "open"),
    ]


