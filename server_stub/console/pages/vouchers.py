"""Vouchers and their printed codes: listed, made, corrected, published, unpublished and revoked.

The operator sees every retailer's vouchers, a retailer's admin their own.
Every id from a URL goes through `view.own_voucher` first, so an admin of
retailer X never opens, edits or publishes retailer Y's. Edits go through
operations/voucher_edit.py, which decides what may still change (the page
says so beside the form); a revoke asks to be confirmed on a page of its own,
with no script needed.
"""

from __future__ import annotations

from pos_app.core.domain import Discount, Voucher, VoucherStatus
from pos_app.words.i18n import N_

from ...operations.voucher_edit import may_change
from . import voucher_form

STATUS_NAMES = {VoucherStatus.NEW: N_("Draft"), VoucherStatus.PUBLISHED: N_("Published"),
                VoucherStatus.UNPUBLISHED: N_("Unpublished"), VoucherStatus.REVOKED: N_("Revoked")}
STATUS_TAGS = {VoucherStatus.NEW: "warn", VoucherStatus.PUBLISHED: "good", VoucherStatus.UNPUBLISHED: "",
               VoucherStatus.REVOKED: "bad"}
CODE_MAX = 64  # read this long, checked by the operation (3 to 24 letters and digits)


def _shown(voucher: dict, lang: str) -> dict:
    """A voucher's wire shape with what its pages show: the title in the page's language (or its fallback),
    the discount as babel writes it."""
    model = Voucher.from_json(voucher)
    return {**voucher, "title": model.text("title", lang) or voucher["id"],
            "discount_value": Discount(**voucher["discount"])}


def _statuses():
    return list(STATUS_NAMES.items())


# --- the list --------------------------------------------------------------------------------

def list_page(view):
    chosen = view.query("retailer")
    if chosen:
        view.own_retailer(chosen)  # 403 not_yours for another retailer's
    status = view.query("status")
    if status not in STATUS_NAMES:
        status = ""
    retailers = view.retailers()
    names = {r["id"]: r["name"] for r in retailers}
    vouchers = [_shown(v, view.lang) for v in view.backend.list_vouchers(chosen or view.retailer_filter())
                if not status or v["status"] == status]
    zones = {r["id"]: voucher_form.zone_of(view, r["id"]) for r in retailers
             if any(v["retailer_id"] == r["id"] for v in vouchers)}
    return view.page("vouchers_list.html", vouchers=vouchers, retailers=retailers, names=names, chosen=chosen,
                     chosen_status=status, statuses=_statuses(), zones=zones, status_names=STATUS_NAMES,
                     status_tags=STATUS_TAGS)


# --- made --------------------------------------------------------------------------------------

def new_page(view):
    retailers = view.retailers()
    chosen = view.query("retailer") or (retailers[0]["id"] if len(retailers) == 1 else "")
    zone = voucher_form.zone_of(view, chosen) if chosen in {r["id"] for r in retailers} else voucher_form.DEFAULT_ZONE
    return view.page("vouchers_form.html", voucher=None, current={"retailer_id": chosen, "kind": "personal",
                                                                 "discount_kind": "percent"},
                     retailer_options=[(r["id"], r["name"]) for r in retailers], zone=zone,
                     fallbacks=voucher_form.fallback_names(), may=lambda name: True, **_bounds())


def create(view):
    form = view.form
    retailer_id = form.text("retailer_id", 64)
    kind = form.choice("kind", ("personal", "printed"))
    if retailer_id:
        view.own_retailer(retailer_id)  # before anything is read in its zone: 403 for another retailer's
    zone = voucher_form.zone_of(view, retailer_id) if retailer_id else voucher_form.DEFAULT_ZONE
    body = voucher_form.read(form, kind or "personal", zone)
    form.done()
    made = view.backend.create_voucher({"retailer_id": retailer_id, "kind": kind, **body})
    return view.redirect(f"/console/vouchers/{made['id']}?ok=created")


def _bounds() -> dict:
    return {"bounds": {"percent": voucher_form.PERCENT_MAX, "amount": voucher_form.AMOUNT_MAX,
                       "total": voucher_form.TOTAL_LIMIT_MAX, "day": voucher_form.DAY_LIMIT_MAX,
                       "claim_days": voucher_form.CLAIM_DAYS_MAX, "title": voucher_form.TITLE_MAX,
                       "terms": voucher_form.TERMS_MAX}}


# --- one voucher -------------------------------------------------------------------------------

def _context(view, voucher: dict) -> dict:
    extras = view.backend.voucher_extras(voucher["id"], uses=True)
    zone = voucher_form.zone_of(view, voucher["retailer_id"])
    stores = {s["id"]: s["name"] for s in view.backend.list_stores(voucher["retailer_id"])}
    return {"store_names": stores, "voucher": _shown(voucher, view.lang), "extras": extras, "zone": zone,
            "texts": voucher_form.texts_shown(voucher["texts"]), "status_names": STATUS_NAMES, "status_tags": STATUS_TAGS,
            "claim_days": max(1, round((extras["claim_ttl_s"] or 0) / voucher_form.DAY_S))}


def voucher_page(view):
    voucher = view.own_voucher(view.request.params["id"])
    codes = view.backend.list_printed_codes(voucher["id"]) if voucher["kind"] == "printed" else []
    return view.page("vouchers_show.html", codes=codes, **_context(view, voucher))


def add_code(view):
    voucher = view.own_voucher(view.request.params["id"])
    code = view.form.text("code", CODE_MAX)
    view.form.done()
    view.backend.create_printed_code(voucher["id"], code)
    return view.redirect(f"/console/vouchers/{voucher['id']}?ok=created#codes")


def _action(action: str):
    def change(view):
        voucher = view.own_voucher(view.request.params["id"])
        view.form.done()
        view.backend.change_voucher(voucher["id"], action)
        return view.redirect(f"/console/vouchers/{voucher['id']}?ok={action}ed")  # published, unpublished
    change.__name__ = f"voucher_{action}"
    return change


def revoke_page(view):
    voucher = view.own_voucher(view.request.params["id"])
    return view.page("vouchers_revoke.html", **_context(view, voucher))


def revoke(view):
    voucher = view.own_voucher(view.request.params["id"])
    if not view.form.flag("confirm"):
        view.form.fail("confirm", N_("Tick the box to confirm the revoke."))
    view.form.done()
    view.backend.change_voucher(voucher["id"], "revoke")
    return view.redirect(f"/console/vouchers/{voucher['id']}?ok=revoked")


# --- edited --------------------------------------------------------------------------------------

def _before(view, voucher: dict) -> dict:
    extras = view.backend.voucher_extras(voucher["id"])
    zone = voucher_form.zone_of(view, voucher["retailer_id"])
    return {"voucher": voucher, "extras": extras, "zone": zone, "claim_ttl_s": extras["claim_ttl_s"],
            "values": voucher_form.current_values(voucher, extras, zone)}


def edit_page(view):
    voucher = view.own_voucher(view.request.params["id"])
    before = _before(view, voucher)
    return view.page("vouchers_form.html", voucher=_shown(voucher, view.lang), current=before["values"],
                     retailer_options=[(voucher["retailer_id"], voucher["retailer_name"])], zone=before["zone"],
                     fallbacks=voucher_form.fallback_names(), status_names=STATUS_NAMES,
                     may=lambda name: may_change(voucher["status"], name), **_bounds())


def edit(view):
    voucher = view.own_voucher(view.request.params["id"])
    before = _before(view, voucher)
    body = voucher_form.read(view.form, voucher["kind"], before["zone"], before=before,
                             discount=may_change(voucher["status"], "discount"))
    view.form.done()
    view.backend.edit_voucher(voucher["id"], body)
    return view.redirect(f"/console/vouchers/{voucher['id']}?ok=saved")


def routes():
    return [
        ("GET", "/vouchers", list_page, "chain"),
        ("GET", "/vouchers/new", new_page, "chain"),
        ("POST", "/vouchers/new", create, "chain", new_page),
        ("GET", "/vouchers/{id}", voucher_page, "chain"),
        ("GET", "/vouchers/{id}/edit", edit_page, "chain"),
        ("POST", "/vouchers/{id}/edit", edit, "chain", edit_page),
        ("POST", "/vouchers/{id}/publish", _action("publish"), "chain", voucher_page),
        ("POST", "/vouchers/{id}/unpublish", _action("unpublish"), "chain", voucher_page),
        ("GET", "/vouchers/{id}/revoke", revoke_page, "chain"),
        ("POST", "/vouchers/{id}/revoke", revoke, "chain", revoke_page),
        ("POST", "/vouchers/{id}/codes", add_code, "chain", voucher_page),
    ]

