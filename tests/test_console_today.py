"""The console's today page: each store's figures for its own today, as the day report counts them; the
tills that have not synced; a retailer's total; only the stores the person may see; quick on a busy day."""

from __future__ import annotations

import re
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from console_fixtures import ConsoleClient, demo_staff, sign_in_staff_in
from console_reports_data import PIN_B, entry, make_day
from server_stub.operations import console_reports
from server_stub.operations.staff_auth import Caller

pytestmark = pytest.mark.slow


def figure(page: str, store_id: str, name: str) -> str:
    card = page[page.index(f'id="today-{store_id}"'):]
    card = card[:card.index("</section>")]
    return re.search(rf'data-figure="{name}"><div class="value">([^<]*)<', card).group(1)


def card_of(page: str, store_id: str) -> str:
    card = page[page.index(f'id="today-{store_id}"'):]
    return card[:card.index("</section>")]


def test_todays_figures_are_the_day_reports(console):
    day = make_day(console.api)
    api = console.api
    store = api.backend.list_stores(api.retailer_id)
    store = next(s for s in store if s["id"] == api.store_id)
    [mine] = api.backend.today_figures([store])
    today = datetime.now(ZoneInfo(store["timezone"])).date().isoformat()
    report = api.backend.daily_report(Caller("admin"), {"date": today, "store": api.store_id})
    assert (mine["count"], mine["discount"], mine["attempts"], mine["refused"], mine["conflicts"], mine["voids"],
            mine["disputes"], mine["unpriced"]) == (
        report["count"], report["discount_total"]["amount"], report["attempts"], report["refused"]["count"],
        report["conflicts"]["count"], report["voids"]["count"], len(report["disputes"]), report["discount_unpriced"])
    assert dict(mine["by_reason"]) == report["refused"]["by_reason"]
    assert mine["offline_share"] == report["kpis"]["offline_share"]
    # the figures a manager reads, as numbers: 3 claims and the printed code accepted (one claim also lost
    # a conflict at Caja 2), the garbage scan and the unproven offline entry refused
    assert (mine["count"], mine["refused"], mine["conflicts"], mine["disputes"]) == (4, 2, 1, 1)
    # a void takes one out of the count and the discount, as in the report
    api.backend.void(Caller("admin"), day.accepted[0], "venta anulada")
    [after] = api.backend.today_figures([store])
    assert (after["count"], after["voids"], after["discount"]) == (3, 1, mine["discount"] - 12000)

    manager = demo_staff(api, "manager")
    assert console.sign_in_staff(manager["id"], manager["pin"]).status_code == 303
    page = console.get("/console/today")
    assert page.status_code == 200
    assert figure(page.text, api.store_id, "count") == "3" and figure(page.text, api.store_id, "conflicts") == "1"
    assert figure(page.text, api.store_id, "discount").replace("\xa0", " ") == "Gs. 24.000"
    assert 'data-reason="unknown_code"' in page.text and "Código desconocido" in page.text  # reasons.headline
    # a manager of one store sees only it: no other store, no other retailer, no total
    assert day.store_b["id"] not in page.text and day.store_y["id"] not in page.text and 'data-total' not in page.text


def test_a_till_refusing_itself_counts_with_the_tills_reason(console):
    api = console.api
    till = api.enroll("Caja 1")
    claim = api.claim(customer_id="mine")
    refused = entry(accepted=False, reason="expired", jti=claim["jti"], input=claim["token"],
                    voucher_id=api.demo_voucher("personal")["id"])
    result = api.ok(api.client.post("/sync", headers=till.auth, json={"entries": [refused]}))["results"][0]
    assert result.get("dispute") == "till_refused", result
    store = next(s for s in api.backend.list_stores(api.retailer_id) if s["id"] == api.store_id)
    [mine] = api.backend.today_figures([store])
    today = datetime.now(ZoneInfo(store["timezone"])).date().isoformat()
    report = api.backend.daily_report(Caller("admin"), {"date": today, "store": api.store_id})
    assert dict(mine["by_reason"]) == report["refused"]["by_reason"] == {"expired": 1}


def test_tills_that_have_not_synced_are_named(console):
    api = console.api
    quiet, waiting, fine = api.enroll("Caja muda"), api.enroll("Caja con cola"), api.enroll("Caja al día")
    api.ok(api.client.post("/sync", headers=waiting.auth, json={"entries": [], "till": {"outbox": 7}}))
    api.ok(api.client.post("/sync", headers=fine.auth, json={"entries": [], "till": {"outbox": 0}}))
    api.execute(f"UPDATE devices SET last_seen_at = {time.time() - 3 * 3600}, enrolled_at = "
                f"{time.time() - 4 * 3600} WHERE id = '{quiet.id}'")
    admin = demo_staff(api, "admin")
    console.sign_in_staff(admin["id"], admin["pin"])
    card = card_of(console.get("/console/today").text, api.store_id)
    assert f'data-device="{quiet.id}"' in card
    assert f'data-device="{waiting.id}"' in card and f'data-device="{fine.id}"' not in card
    assert "7" in card[card.index(f'data-device="{waiting.id}"'):]
    now = time.time()
    whys = {d["id"]: console_reports.lagging(d, now) for d in api.backend.list_devices(api.retailer_id)}
    assert (whys[quiet.id], whys[waiting.id], whys[fine.id]) == ("late", "outbox", None)
    api.execute(f"UPDATE devices SET kind = 'web' WHERE id = '{waiting.id}'")  # a web till has nothing to sync
    assert f'data-device="{waiting.id}"' not in card_of(console.get("/console/today").text, api.store_id)
    api.backend.revoke_device(quiet.id)  # a till withdrawn is gone, not late
    assert f'data-device="{quiet.id}"' not in card_of(console.get("/console/today").text, api.store_id)


def test_an_admin_sees_every_store_and_the_retailers_total(console):
    day = make_day(console.api)
    api = console.api
    admin = demo_staff(api, "admin")
    console.sign_in_staff(admin["id"], admin["pin"])
    page = console.get("/console/today").text
    assert f'id="today-{api.store_id}"' in page and f'id="today-{day.store_b["id"]}"' in page
    assert day.store_y["id"] not in page and "Otra" not in page  # another retailer's
    total = page[page.index("data-total"):]
    total = total[:total.index("</section>")]
    assert re.search(r'data-figure="count"><div class="value">5<', total)  # 4 at the centre, 1 at Luque
    # the operator sees both retailers, each its own group
    operator = ConsoleClient(api)
    operator.sign_in_operator()
    page = operator.get("/console/today").text
    assert f'id="today-{day.store_y["id"]}"' in page and f'data-retailer="{day.retailer_y["id"]}"' in page
    operator.close()
    # and a manager of store B only B's
    other = ConsoleClient(api)
    assert other.sign_in_staff(day.manager_b["id"], PIN_B).status_code == 303
    page = other.get("/console/today").text
    assert f'id="today-{day.store_b["id"]}"' in page and f'id="today-{api.store_id}"' not in page
    other.close()


def test_signed_out_or_a_web_tills_cashier_get_no_today(console):
    api = console.api
    answer = console.get("/console/today")
    assert answer.status_code == 303 and answer.headers["location"].startswith("/console/sign-in?next=")
    till = api.enroll("Web")
    api.execute(f"UPDATE devices SET kind = 'web' WHERE id = '{till.id}'")
    from server_stub.operations import console_sessions

    cashier = demo_staff(api, "cashier")
    session = console_sessions.create(api.backend.ctx, "shop", "es", staff_id=cashier["id"], device_id=till.id)
    console.http.cookies.set("pika_session", session)
    refused = console.get("/console/today")
    assert refused.status_code == 403 and "forbidden" in refused.text


def test_today_in_a_browser(browser_page, live_console):
    url, api = live_console
    make_day(api, others=False)
    manager = demo_staff(api, "manager")
    sign_in_staff_in(browser_page, url, manager["id"], manager["pin"])
    browser_page.wait_for_url(f"{url}/console/")
    browser_page.click("nav.menu >> text=Hoy")
    browser_page.wait_for_url(f"{url}/console/today")
    card = browser_page.locator(f"#today-{api.store_id}")
    assert card.locator('[data-figure="count"] .value').inner_text() == "4"
    assert card.locator('[data-figure="refused"] .value').inner_text() == "2"
    assert "Código desconocido" in card.locator("ul.reasons").inner_text()
    card.locator('a[href^="/console/reports"]').click()
    browser_page.wait_for_url(f"**/console/reports?scope=store:{api.store_id}")
    assert browser_page.locator("#report").get_attribute("data-count") == "4"


def test_todays_counts_and_the_redemptions_list_on_both_engines(api):
    """The console's own SQL (GROUP BY over the day, a page of redemptions) on SQLite and PostgreSQL alike."""
    day = make_day(api)
    api.backend.void(Caller("admin"), day.accepted[0], "venta anulada")
    stores = api.backend.list_stores(api.retailer_id)
    figures = {f["store_id"]: f for f in api.backend.today_figures(stores)}
    today = datetime.now(ZoneInfo("America/Asuncion")).date()
    for store in stores:
        report = api.backend.daily_report(Caller("admin"), {"date": today.isoformat(), "store": store["id"]})
        mine = figures[store["id"]]
        assert (mine["count"], mine["discount"], mine["refused"], mine["conflicts"], mine["voids"],
                mine["attempts"], mine["offline_share"]) == (
            report["count"], report["discount_total"]["amount"], report["refused"]["count"],
            report["conflicts"]["count"], report["voids"]["count"], report["attempts"],
            report["kpis"]["offline_share"])
    centre = next(s for s in stores if s["id"] == api.store_id)
    total, rows = api.backend.report_redemptions([centre], today, today, offset=0, limit=3)
    assert total == 7 and len(rows) == 3 and rows[0]["at"] >= rows[-1]["at"]
    total, rest = api.backend.report_redemptions([centre], today, today, offset=3, limit=50)
    assert len(rest) == 4 and not {r["key"] for r in rows} & {r["key"] for r in rest}
    voided = next(r for r in rows + rest if r["key"] == day.accepted[0])
    assert voided["voided"] and voided["void_reason"] == "venta anulada"
    found = api.backend.redemption(day.accepted[0])
    assert (found["store_id"], bool(found["voided"]), found["status"]) == (api.store_id, True, "accepted")
