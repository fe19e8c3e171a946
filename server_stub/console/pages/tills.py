"""Tills at the console: the list with what each last told us, enrollment codes (text and QR), a till's page.

Who may do what (area webtills: the operator, a retailer's admin, a manager):
a manager sees and enrolls the tills of their own store only (view.own_store
and own_device refuse the others), and may rename them. Revoking and rolling
are for the retailer's admin and the operator: a revoke is final (the till
must be replaced by a new enrollment) and a roll cuts the till off until
someone enrolls it again with the new code, so both are decisions for whoever
holds the chain's credentials and answers for its tills, not for each store.

What the QR holds: the till enrolls with `pika-till enroll --code CODE` (the
window has no enrollment screen, and its camera reads vouchers only), which
takes the code as `codes.parse_short_code` reads it. So the QR holds the
canonical code alone, nine letters and digits with no dash: a handheld scanner
typing into that command line cannot turn a dash into another character on a
Spanish or Latin American keyboard layout (the till repairs that for vouchers,
not for this argument), and the code is QR's compact alphanumeric mode. The
page shows it grouped (K7QF-3M2X-T) for people to read out and type.
"""

from __future__ import annotations

from babel.dates import format_timedelta

from pos_app.core import codes
from pos_app.words import i18n
from pos_app.words.i18n import N_

from ...errors import Forbidden
from ...operations import admin as admin_ops
from ...operations.devices import NAME_MAX, REASON_MAX, ROLL_TTL_S
from .. import qr
from .chain import plain_text  # one rule for names: no markup's brackets

STATUS_NAMES = {"active": N_("Active"), "rolled": N_("Rolled: waiting to be enrolled again"),
                "revoked": N_("Revoked"), "silent": N_("Silent: not heard from for too long")}
STATUS_TAGS = {"active": "good", "rolled": "warn", "revoked": "bad", "silent": "warn"}
NEVER = N_("never")  # a till not heard from since it was enrolled
KIND_NAMES = {"till": N_("Till"), "web": N_("Web till")}
# How long a new enrollment code lasts: the backend's day by default, an hour for one set up now, a week by post.
CODE_TTLS = {"3600": N_("1 hour"), str(admin_ops.ENROLLMENT_TTL_S): N_("1 day"), str(7 * 86400): N_("7 days")}


def ago(view):
    """`ago(at)`: how long ago, in words of the page's language (called while the template renders)."""
    now = view.ctx.clock()

    def words(at: float | None) -> str:
        if at is None:
            return i18n._(NEVER)
        return format_timedelta(max(0.0, now - at), locale=i18n.format_locale())
    return words


def may_withdraw(view) -> bool:
    """Revoke and roll: the operator and a retailer's admin (the module's docstring says why)."""
    who = view.who
    return who.operator or (who.kind == "staff" and who.role == "admin")


def till_list(view):
    stores = {s["id"]: s for s in view.stores()}
    chosen = view.query("store")
    store_id = view.own_store(chosen)["id"] if chosen else view.store_filter()
    devices = view.backend.list_devices(view.retailer_filter(), store_id)
    kinds = view.backend.device_kinds(view.retailer_filter())
    open_codes = view.backend.open_enrollment_codes(view.retailer_filter(), store_id)
    return view.page("tills_list.html", devices=devices, kinds=kinds, stores=stores, chosen=chosen,
                     open_codes=open_codes,
                     ago=ago(view), status_names=STATUS_NAMES, status_tags=STATUS_TAGS, kind_names=KIND_NAMES,
                     ttl_options=_ttl_options, default_ttl=str(admin_ops.ENROLLMENT_TTL_S))


def _ttl_options() -> list[tuple[str, str]]:
    return [(value, i18n._(text)) for value, text in CODE_TTLS.items()]


def _code_page(view, answer: dict, store: dict, device: dict | None = None):
    """An enrollment code shown once: grouped text, the QR of its canonical form, when it ends."""
    canonical = codes.parse_short_code(answer["code"])
    return view.page("tills_code.html", code=answer["code"], qr=qr.data_uri(canonical), qr_text=canonical,
                     expires_at=answer["expires_at"], store=store, device=device, server=_server_url(view))


def _server_url(view) -> str:
    """This backend as the till would reach it (what the page was opened with)."""
    host = view.request.headers.get("host", "")[:255] or "localhost"
    return f"{'https' if view.secure else 'http'}://{host}"


def new_code(view):
    form = view.form
    store_id = form.text("store_id", 64)
    ttl = form.choice("ttl_s", CODE_TTLS)
    form.done()
    store = view.own_store(store_id)  # another retailer's or store's: 403 not_yours
    answer = view.backend.create_enrollment_code(store["id"], int(ttl))
    return _code_page(view, answer, store)


def cancel_code(view):
    """An unused enrollment code withdrawn (handed to the wrong person, photographed): of this person's scope only."""
    view.form.done()
    view.backend.cancel_enrollment_code(view.request.params["handle"], view.retailer_filter(), view.store_filter())
    return view.redirect("/console/tills?ok=code_cancelled")


def till_page(view):
    device = view.own_device(view.request.params["id"])
    kind = view.backend.device_kinds(device["retailer_id"]).get(device["id"], "till")
    store = next((s for s in view.stores() if s["id"] == device["store_id"]), {"name": device["store_id"]})
    return view.page("tills_till.html", device=device, kind=kind, store=store, ago=ago(view),
                     status_names=STATUS_NAMES, status_tags=STATUS_TAGS, kind_names=KIND_NAMES,
                     may_withdraw=may_withdraw(view))


def rename(view):
    device = view.own_device(view.request.params["id"])
    name = plain_text(view.form, "name", NAME_MAX)
    view.form.done()
    view.backend.rename_device(device["id"], name)
    return view.redirect(f"/console/tills/{device['id']}?ok=saved")


def _withdrawing(view) -> dict:
    device = view.own_device(view.request.params["id"])
    if not may_withdraw(view):
        raise Forbidden("forbidden", "revoking and rolling a till are for the retailer's admin")
    return device


def revoke(view):
    device = _withdrawing(view)
    form = view.form
    reason = plain_text(form, "reason", REASON_MAX)
    if not form.flag("confirm"):
        form.fail("confirm", N_("Tick this box to confirm: a revoked till cannot be used again."))
    form.done()
    view.backend.revoke_device(device["id"], reason)
    return view.redirect(f"/console/tills/{device['id']}?ok=revoked")


def roll(view):
    device = _withdrawing(view)
    if not view.form.flag("confirm"):
        view.form.fail("roll_confirm", N_("Tick this box to confirm: the till stops working until it is "
                                          "enrolled again."))
    view.form.done()
    answer = view.backend.roll_device(device["id"], ROLL_TTL_S)
    store = next((s for s in view.stores() if s["id"] == device["store_id"]), {"name": device["store_id"]})
    return _code_page(view, answer, store, answer["device"])


def routes():
    return [
        ("GET", "/tills", till_list, "webtills"),
        ("POST", "/tills/codes", new_code, "webtills", till_list),
        ("POST", "/tills/codes/{handle}/cancel", cancel_code, "webtills", till_list),
        ("GET", "/tills/{id}", till_page, "webtills"),
        ("POST", "/tills/{id}/name", rename, "webtills", till_page),
        ("POST", "/tills/{id}/revoke", revoke, "webtills", till_page),
        ("POST", "/tills/{id}/roll", roll, "webtills", till_page),
    ]
