"""Today at a glance: one card per store the person may see, each store's own today (its time zone's).

Redemptions, discounts given, refusals by reason (the till's words for them), the offline share,
conflicts and disputes, and the tills that have not synced (not heard from for an hour, a non-empty
outbox they reported, silent past the offline policy, or rolled and not yet enrolled again). A retailer
with several stores gets a card of its totals first. Counted in SQL (`operations/console_reports.py`),
so the page stays quick on a busy day; the day report has the details.
"""

from __future__ import annotations

from datetime import date

from pos_app.words.i18n import N_

from ...operations.console_reports import lagging, total

# Why a till is listed as not synced, in words.
LAGGING = {"silent": N_("not heard from for longer than the offline policy allows"),
           "rolled": N_("its token was replaced: enroll it again"),
           "late": N_("not heard from for over an hour"),
           "outbox": N_("has redemptions waiting to be sent")}


def today_page(view):
    stores = view.stores()
    cards = view.backend.today_figures(stores)
    now = view.ctx.clock()
    devices: dict[str, list] = {}
    for retailer in {s["retailer_id"] for s in stores}:
        kinds = view.backend.device_kinds(retailer)  # a web till is online only: it has nothing to sync
        for device in view.backend.list_devices(retailer, view.store_filter()):
            why = lagging({**device, "kind": kinds.get(device["id"], "till")}, now)
            if why is not None:
                devices.setdefault(device["store_id"], []).append((device, why))
    names = {r["id"]: r["name"] for r in view.retailers()}
    groups = []
    for retailer_id in sorted({c["retailer_id"] for c in cards}, key=lambda r: (names.get(r, ""), r)):
        mine = [c for c in cards if c["retailer_id"] == retailer_id]
        for card in mine:
            card["lagging"] = devices.get(card["store_id"], [])
            card["day"] = date.fromisoformat(card["date"])
        summed = total(mine) if len(mine) > 1 else None
        if summed is not None:
            summed["lagging"] = [d for c in mine for d in c["lagging"]]
        groups.append({"retailer_id": retailer_id, "name": names.get(retailer_id, retailer_id), "total": summed,
                       "stores": mine})
    return view.page("today_page.html", groups=groups, lagging_words=LAGGING, now=now)


def routes():
    return [("GET", "/today", today_page, "reports")]
