"""Retailers and their stores: the platform operator makes retailers and sets their till policy; the operator
or a retailer's admin makes stores.

A retailer's settings are the two its tills obey (staff of no single store at
every till, and how many days a till may decide personal codes offline);
both go through `admin.retailer_settings`, audited, and tills learn them from
their next catalog. A store's time zone is chosen from a short list of the
region's zones, so a day report's "today" is the shop's today.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from pos_app.words.i18n import N_

from ...operations.admin import OFFLINE_DAYS_MAX, OFFLINE_DAYS_MIN

NAME_MAX = 200  # as the API takes (app/shapes.py _NAME)
DEFAULT_ZONE = "America/Asuncion"
# The region's zones first (the chain's own), then a few a chain abroad may need.
ZONES = ("America/Asuncion", "America/Sao_Paulo", "America/Argentina/Buenos_Aires", "America/Montevideo",
         "America/La_Paz", "America/Santiago", "America/Lima", "America/Bogota", "America/Caracas",
         "America/Mexico_City", "America/New_York", "Europe/Madrid", "Europe/Lisbon", "UTC")


def plain_text(form, name: str, max_len: int, *, required: bool = True, multiline: bool = False) -> str | None:
    """A name or text read as forms.text does, and refused if it holds markup's brackets: nothing here is
    HTML, and a name with `<script>` in it is a mistake or an attack either way."""
    value = form.text(name, max_len, required=required, multiline=multiline)
    if value is not None and ("<" in value or ">" in value):
        form.fail(name, N_("Plain text please: without < or >."))
        return None
    return value


def zone_options() -> list[tuple[str, str]]:
    """(zone, "zone (UTC−03:00)") with each zone's offset now, so a person sees which is theirs."""
    now = dt.datetime.now(dt.timezone.utc)
    options = []
    for zone in ZONES:
        offset = now.astimezone(ZoneInfo(zone)).utcoffset() or dt.timedelta(0)
        minutes = int(offset.total_seconds() // 60)
        sign = "+" if minutes >= 0 else "−"
        options.append((zone, f"{zone} (UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d})"))
    return options


# --- retailers (the platform operator) ----------------------------------------------------

def retailers_page(view):
    return view.page("chain_retailers.html", retailers=view.backend.retailers_overview())


def create_retailer(view):
    name = plain_text(view.form, "name", NAME_MAX)
    view.form.done()
    made = view.backend.create_retailer(name)
    return view.redirect(f"/console/retailers/{made['id']}?ok=created")


def retailer_page(view):
    retailer = view.own_retailer(view.request.params["id"])
    return view.page("chain_retailer.html", retailer=view.backend.get_retailer(retailer["id"]),
                     stores=view.backend.list_stores(retailer["id"]),
                     days=(OFFLINE_DAYS_MIN, OFFLINE_DAYS_MAX), zone=DEFAULT_ZONE)


def retailer_settings(view):
    retailer = view.own_retailer(view.request.params["id"])
    form = view.form
    anywhere = form.flag("staff_anywhere")
    days = form.integer("offline_days", OFFLINE_DAYS_MIN, OFFLINE_DAYS_MAX)
    form.done()
    view.backend.retailer_settings(retailer["id"], staff_anywhere=anywhere, offline_days=days)
    return view.redirect(f"/console/retailers/{retailer['id']}?ok=saved")


# --- stores (the operator, or a retailer's admin) ------------------------------------------

def stores_page(view):
    retailers = view.retailers()
    chosen = view.query("retailer")
    if chosen:
        view.own_retailer(chosen)  # 403 / 404 for another retailer's or none
    shown = [r for r in retailers if not chosen or r["id"] == chosen]
    stores = view.stores()
    groups = [(r, [s for s in stores if s["retailer_id"] == r["id"]]) for r in shown]
    preset = chosen or (retailers[0]["id"] if len(retailers) == 1 else "")
    return view.page("chain_stores.html", groups=groups, retailers=retailers, chosen=chosen, preset=preset,
                     retailer_options=[(r["id"], r["name"]) for r in retailers],
                     zones=zone_options(), default_zone=DEFAULT_ZONE)


def create_store(view):
    form = view.form
    retailer_id = form.text("retailer_id", 64)
    name = plain_text(form, "name", NAME_MAX)
    zone = form.choice("timezone", ZONES)
    form.done()
    view.own_retailer(retailer_id)  # 403 not_yours for another retailer's, whatever the select offered
    made = view.backend.create_store(retailer_id, name, zone)
    return view.redirect(f"/console/stores?retailer={made['retailer_id']}&ok=created")


def routes():
    return [
        ("GET", "/retailers", retailers_page, "retailers"),
        ("POST", "/retailers", create_retailer, "retailers", retailers_page),
        ("GET", "/retailers/{id}", retailer_page, "retailers"),
        ("POST", "/retailers/{id}/settings", retailer_settings, "retailers", retailer_page),
        ("GET", "/stores", stores_page, "chain"),
        ("POST", "/stores", create_store, "chain", stores_page),
    ]
