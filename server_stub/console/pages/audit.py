"""The audit log at the console: who did what, newest first, filtered by action, actor, target and dates.

The operator reads every retailer's records (or one's); a retailer's admin
only their own (view.retailer_filter). The filters are a GET form, read with
the same checks as any form (a bad date is a message, not an error page);
dates are whole days in Asunción's calendar, where the chains are. A record's
detail is shown as its names and values, each escaped like any text.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from pos_app.words import i18n
from pos_app.words.i18n import N_

from ...operations.audit_search import FILTER_MAX
from ..forms import Form

TIMEZONE = "America/Asuncion"
PAGE = 50
ACTION_NAMES = {
    "retailer.create": N_("Retailer created"), "retailer.settings": N_("Retailer settings changed"),
    "store.create": N_("Store created"), "voucher.create": N_("Voucher created"),
    "voucher.edit": N_("Voucher edited"), "voucher.publish": N_("Voucher published"),
    "voucher.unpublish": N_("Voucher unpublished"), "voucher.revoke": N_("Voucher revoked"),
    "printed_code.create": N_("Printed code added"), "staff.create": N_("Staff member added"),
    "staff.change": N_("Staff member changed"), "staff.disable": N_("Staff member disabled"),
    "staff.enable": N_("Staff member enabled"), "staff.set_pin": N_("PIN set"),
    "staff.change_pin": N_("PIN changed by its member"), "enrollment_code.create": N_("Enrollment code made"),
    "device.rename": N_("Till renamed"), "device.revoke": N_("Till revoked"), "device.roll": N_("Till rolled"),
    "claim.create": N_("Test claim issued"), "claim.revoke": N_("Claim revoked"),
    "redemption.void": N_("Redemption voided"), "token.create": N_("Admin token created"),
    "token.rotate": N_("Admin token rotated"), "token.revoke": N_("Admin token revoked"),
    "key.rotate": N_("Signing key rotated"), "booklet.create": N_("Booklet edition created"),
    "booklet.placement_add": N_("Booklet placement added"), "booklet.placement_lock": N_("Booklet placement locked"),
    "booklet.render": N_("Booklet rendered"), "backend.restore": N_("Backend restored"),
    "web_till.create": N_("Web till created"), "web_till.set_up": N_("Web till set up in a browser"),
    "web_till.shop_code": N_("Web till setup code made"), "web_till.token": N_("Web till token made"),
    "finding.resolve": N_("Finding resolved"),
    "console.sign_in": N_("Signed in to the console"), "console.sign_out": N_("Signed out of the console"),
}
YES, NO = N_("yes"), N_("no")
FILTERS = ("action", "actor", "target", "from", "to", "retailer", "before")


def action_name(action: str) -> str:
    """A record's action in words of the page's language; an action this page does not know, as its code."""
    return i18n._(ACTION_NAMES[action]) if action in ACTION_NAMES else action


def detail_lines(detail: object) -> list[tuple[str, str]]:
    """A record's detail as (name, value) lines: times as dates, nested values one level flattened."""
    if not isinstance(detail, dict):
        return [] if detail is None else [("", str(detail))]
    return [(str(name), _value(name, value)) for name, value in detail.items()]


def _value(name: object, value: object) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_value(k, v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(_value(name, v) for v in value)
    if value is None:
        return "—"
    if isinstance(value, bool):
        return i18n._(YES if value else NO)
    if isinstance(value, (int, float)) and str(name).endswith("_at") and 0 < value < 10**11:
        return i18n.format_when(value, TIMEZONE)
    return str(value)


def _day_start(day: dt.date) -> float:
    return dt.datetime.combine(day, dt.time(), tzinfo=ZoneInfo(TIMEZONE)).timestamp()


def _read_filters(view, actions: list[str], retailers: dict[str, str]) -> dict:
    """The query as the search's arguments; the form's messages (and no search) when a field is wrong."""
    form = Form([(k, v) for k, v in view.request.query.items() if k in FILTERS])
    view.form = form  # the fields keep what was typed
    query: dict = {"retailer_id": view.retailer_filter(), "limit": PAGE}
    query["action"] = form.choice("action", actions, required=False)
    query["actor"] = form.text("actor", FILTER_MAX, required=False)
    query["target"] = form.text("target", FILTER_MAX, required=False)
    first, last = form.date("from", required=False), form.date("to", required=False)
    if first and last and last < first:
        form.fail("to", N_("The last day is before the first."))
    query["since"] = _day_start(first) if first else None
    query["until"] = _day_start(last + dt.timedelta(days=1)) if last else None
    if view.retailer_filter() is None:
        query["retailer_id"] = form.choice("retailer", retailers, required=False)
    query["before"] = form.integer("before", 1, 2**62, required=False)
    return query


def audit_page(view):
    retailers = {r["id"]: r["name"] for r in view.retailers()}
    actions = view.backend.audit_actions(view.retailer_filter())
    query = _read_filters(view, actions, retailers)
    errors = dict(view.form.errors)
    found = {"records": [], "more": False, "next": None}
    if not errors:
        found = view.backend.audit_search(**query)
    view.errors = errors
    later = {k: v for k, v in view.request.query.items() if k in FILTERS and k != "before" and v}
    return view.page("audit_log.html", status=400 if errors else 200, records=found["records"],
                     more=found["more"], next=found["next"], later=later, actions=actions, retailers=retailers,
                     action_name=action_name, detail_lines=detail_lines, timezone=TIMEZONE,
                     paged=query.get("before") is not None)


def routes():
    return [("GET", "/audit", audit_page, "audit")]
