"""The console's day report: the till's breakdowns and a server-drawn hour chart, CSV and PDF downloads,
voids with a reason from the list of redemptions, conflicts and disputes in words; scope, dates and bad
input refused with a message and nothing written."""

from __future__ import annotations

import csv
import html
import io
import re
import subprocess
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from PIL import Image

from console_fixtures import (DESKTOP, HOSTILE_TEXTS, PHONE, ConsoleClient, assert_escaped, demo_staff, post_raw, sign_in_staff_in,
                              unchanged)
from console_reports_data import PIN_B, make_day
from pos_app.pdf import chart as pdf_chart
from pos_app.words.i18n import _, using
from server_stub.console.chart import hour_chart, nice_top

pytestmark = pytest.mark.slow


def today() -> str:
    return datetime.now(ZoneInfo("America/Asuncion")).date().isoformat()


def signed_in(console, role: str = "manager") -> dict:
    member = demo_staff(console.api, role)
    assert console.sign_in_staff(member["id"], member["pin"]).status_code == 303
    return member


def report_url(store_id: str, **extra) -> str:
    query = "&".join(f"{k}={v}" for k, v in {"scope": f"store:{store_id}", "date": today(), **extra}.items())
    return f"/console/reports?{query}"


def bars(page: str) -> dict[int, int]:
    return {int(h): int(n) for h, n in re.findall(r'<rect class="bar" data-hour="(\d+)" data-count="(\d+)"', page)}


def void_url(key: str, back: str = "/console/reports") -> str:
    return f"/console/reports/void/{key}?back={back}"


# --- the report ---------------------------------------------------------------------------------------


def test_the_report_shows_the_tills_breakdowns_and_the_hour_chart(console):
    day = make_day(console.api)
    signed_in(console)
    page = console.get(report_url(console.api.store_id))
    assert page.status_code == 200, page.text[:2000]
    text = page.text
    assert 'data-count="4"' in text
    for part in ("part-redemptions", "part-vouchers", "part-cashiers", "part-shares", "part-fraud",
                 "part-conflicts", "part-disputes", "part-voids", "part-kpis"):
        assert f'id="{part}"' in text, part
    # the chart: one bar per hour with redemptions, their counts summing to the report's
    hour = datetime.now(ZoneInfo("America/Asuncion")).hour
    assert text.count('<svg class="hour-chart') == 2  # a phone's drawing and a desktop's
    assert bars(text[:text.index("</svg>")]) == {hour: 4} and "<svg" in text and "script" not in text[text.index("<svg"):text.index("</svg>")]
    # conflicts and disputes in plain words, with who won
    conflicts = text[text.index('id="part-conflicts"'):text.index('id="part-disputes"')]
    assert f'data-key="{day.conflict}"' in conflicts and "Caja 1" in conflicts
    disputes = text[text.index('id="part-disputes"'):text.index('id="part-voids"')]
    assert f'data-key="{day.dispute}"' in disputes and 'data-dispute="till_accepted"' in disputes
    assert "Dio el descuento" in disputes and "Lo rechaza: Código desconocido" in disputes  # judged's words
    # every attempt is listed, the accepted ones with their void link
    for key in (*day.accepted, day.printed, day.refused, day.conflict, day.dispute):
        assert f'data-key="{key}"' in text
    assert text.count('class="void-link"') == 4  # three claims and the printed code
    assert f"/console/reports/void/{day.refused}" not in text and f"/console/reports/void/{day.conflict}" not in text


def test_a_range_and_the_whole_retailer(console):
    day = make_day(console.api)
    signed_in(console, "admin")  # the console's admins see the whole retailer
    first = (datetime.now(ZoneInfo("America/Asuncion")).date() - timedelta(days=6)).isoformat()
    page = console.get(f"/console/reports?scope=retailer:{console.api.retailer_id}&date={first}&to={today()}")
    assert page.status_code == 200, page.text[:1500]
    assert 'id="part-stores"' in page.text and 'id="part-days"' in page.text and 'data-count="5"' in page.text
    assert "Café Pika — Luque" in page.text and f'data-key="{day.key_b}"' in page.text
    assert day.key_y not in page.text
    assert page.text.count("<tr data-day=") == 7  # a row per day of the range


def test_csv_and_pdf_downloads(console, tmp_path):
    make_day(console.api)
    signed_in(console)
    page = console.get(report_url(console.api.store_id)).text
    links = {fmt: html.unescape(re.search(rf'id="download-{fmt}" href="([^"]+)"', page).group(1))
             for fmt in ("csv", "pdf")}
    got = console.get(links["csv"])
    assert got.status_code == 200 and got.headers["content-type"] == "text/csv; charset=utf-8"
    assert got.headers["content-disposition"] == f'attachment; filename="pika-report-store-{today()}.csv"'
    rows = list(csv.DictReader(io.StringIO(got.text)))
    assert len(rows) == 7 and sorted(r["status"] for r in rows).count("accepted") == 4
    got = console.get(links["pdf"])
    assert got.status_code == 200 and got.headers["content-type"] == "application/pdf"
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(got.content)
    text = subprocess.run(["pdftotext", "-enc", "UTF-8", str(pdf), "-"], check=True, capture_output=True,
                          text=True).stdout
    assert "Café Pika — Asunción Centro" in text and "informe del día" in text.lower()
    subprocess.run(["pdftoppm", "-r", "60", "-png", "-f", "1", "-l", "1", str(pdf), str(tmp_path / "page")], check=True)
    [png] = sorted(tmp_path.glob("page*.png"))
    image = np.asarray(Image.open(png).convert("RGB")).astype(int)
    target = np.array([round(255 * v) for v in pdf_chart.BAR])
    columns = (np.abs(image - target) <= 12).all(axis=2).sum(axis=0)
    runs = [n for n in np.diff(np.concatenate(([0], (columns > 0).astype(int), [0]))) if n == 1]
    assert len(runs) == 1 and columns.max() > 5  # the chart's one bar (one hour with redemptions), drawn


def test_the_chart_alone():
    counts = [0] * 24
    counts[9], counts[13] = 3, 12
    svg = hour_chart(counts, title="<b>", hour_label="h", count_label="n", bar_title=lambda h, n: f"{h}:{n}")
    assert bars(svg) == {9: 3, 13: 12} and "<b>" not in svg and "&lt;b&gt;" in svg
    wide = hour_chart(counts, title="t", hour_label="h", count_label="n", bar_title=lambda h, n: "", width=900)
    assert bars(wide) == {9: 3, 13: 12} and 'class="hour-chart wide"' in wide
    assert len(re.findall(r'text-anchor="middle">\d+</text>', wide)) == 24  # every hour labelled, a phone's every 3rd
    assert len(re.findall(r'text-anchor="middle">\d+</text>', svg)) == 8
    assert nice_top(0) == (4, 1) and nice_top(12) == (15, 5) and nice_top(1000) == (1000, 250)
    with pytest.raises(ValueError):
        hour_chart([1] * 23, title="", hour_label="", count_label="", bar_title=str)


def said(message: str, **fields) -> str:
    """A message as the (Spanish) page says it."""
    with using("es"):
        return html.escape(_(message).format(**fields), quote=False)


@pytest.mark.parametrize("query, field, message, fields", [
    ("date=2026-02-10&to=2026-02-01", "to", "The last day comes before the first.", {}),
    ("date=2026-01-01&to=2026-06-30", "to", "A report covers at most {n} days.", {"n": 92}),
    ("date=10/02/2026", "date", "A date, please (year-month-day).", {}),
    ("date=2026-02-30", "date", "A date, please (year-month-day).", {}),
    ("date=1999-12-31", "date", "A date between 2000 and 2100.", {}),
    ("date=2026-02-01&to=tomorrow", "to", "A date, please (year-month-day).", {}),
    ("page=abc", "page", "A whole number, please.", {}),
    ("page=0", "page", "Between {low} and {high}.", {"low": 1, "high": 100_000}),
])
def test_bad_days_and_pages_are_each_a_message(console, query, field, message, fields):
    signed_in(console)
    url = f"/console/reports?scope=store:{console.api.store_id}&{query}"
    for path in (url, url.replace("/console/reports?", "/console/reports/download?format=csv&")):
        page = console.get(path)
        assert page.status_code == 400, page.text[:500]
        assert f'id="{field}-error">{said(message, **fields)}<' in page.text and 'id="report"' not in page.text


def test_an_unknown_choice_or_format_is_a_message(console):
    signed_in(console)
    page = console.get("/console/reports?scope=shop:x")
    assert page.status_code == 400 and 'id="scope-error"' in page.text
    page = console.get(f"/console/reports/download?scope=store:{console.api.store_id}&format=xls")
    assert page.status_code == 400 and 'id="format-error"' in page.text
    page = console.get("/console/reports?scope=" + "<script>alert(1)</script>")
    assert page.status_code == 400
    assert_escaped(page)
    assert console.get("/console/reports?scope=store:sto_nothere").status_code == 404


# --- scope ------------------------------------------------------------------------------------------------


def test_a_manager_of_store_a_gets_nothing_of_store_b(console):
    day = make_day(console.api)
    api = console.api
    signed_in(console)  # the demo manager, of the centre store
    for path in (report_url(day.store_b["id"]), f"/console/reports?scope=retailer:{api.retailer_id}",
                 f"/console/reports/download?scope=store:{day.store_b['id']}&format=pdf",
                 report_url(day.store_y["id"]), void_url(day.key_b), void_url(day.key_y)):
        page = console.get(path)
        assert page.status_code == 403 and "not_yours" in page.text, path
    for key in (day.key_b, day.key_y):
        refused = unchanged(api, lambda: console.post(f"/console/reports/void/{key}", {"reason": "no"},
                                                      token_from="/console/reports"))
        assert refused.status_code == 403 and "not_yours" in refused.text
    # the whole-retailer choice is not offered to a manager of one store
    assert "retailer:" not in console.get("/console/reports").text
    # and store B's manager cannot reach the centre's
    other = ConsoleClient(api)
    assert other.sign_in_staff(day.manager_b["id"], PIN_B).status_code == 303
    assert other.get(report_url(api.store_id)).status_code == 403
    assert other.get(void_url(day.accepted[0])).status_code == 403
    other.close()


def test_another_retailers_store_is_not_an_admins(console):
    day = make_day(console.api)
    signed_in(console, "admin")
    for path in (report_url(day.store_y["id"]), f"/console/reports?scope=retailer:{day.retailer_y['id']}",
                 void_url(day.key_y)):
        page = console.get(path)
        assert page.status_code == 403 and "not_yours" in page.text, path
    assert "Otra" not in console.get("/console/reports").text


def test_signed_out_is_led_to_sign_in_and_nothing_is_voided(console):
    day = make_day(console.api, others=False)
    for path in ("/console/reports", void_url(day.accepted[0]), "/console/reports/download?format=csv"):
        answer = console.get(path)
        assert answer.status_code == 303 and answer.headers["location"].startswith("/console/sign-in?next=")
    answer = unchanged(console.api, lambda: console.http.post(f"/console/reports/void/{day.accepted[0]}",
                                                              data={"reason": "x", "csrf": "x"}))
    assert answer.status_code == 303 and answer.headers["location"].startswith("/console/sign-in")


# --- voids ------------------------------------------------------------------------------------------------


def voids_of(api, key: str) -> list[tuple]:
    return api.rows("SELECT v.reason, v.staff_id, v.device_id FROM voids v JOIN attempts a ON a.id = v.attempt_id "
                    "WHERE a.key = ?", (key,))


def test_a_manager_voids_a_redemption_once_with_a_reason(console):
    day = make_day(console.api, others=False)
    api = console.api
    manager = signed_in(console)
    key = day.accepted[1]
    back = report_url(api.store_id, page=1)
    form = console.get(void_url(key, back.replace("&", "%26")))
    assert form.status_code == 200 and 'id="void-form"' in form.text
    token = console.token()
    done = console.post(f"/console/reports/void/{key}", {"reason": "venta anulada", "back": back}, token=token)
    assert done.status_code == 303 and done.headers["location"] == back + "&ok=voided"
    assert voids_of(api, key) == [("venta anulada", manager["id"], None)]
    [(kind, actor, target)] = api.rows("SELECT actor_kind, actor, target FROM audit_log "
                                       "WHERE action = 'redemption.void'")
    assert (kind, target) == ("staff", key) and actor.startswith(manager["id"]) and "(console)" in actor
    # the same form again: the token was used; nothing is voided twice
    replayed = console.post(f"/console/reports/void/{key}", {"reason": "otra vez", "back": back}, token=token)
    assert replayed.status_code == 400 and "csrf_replayed" in replayed.text
    # a fresh form for a voided one says so, and a post of it is refused by the operation
    assert 'id="void-done"' in console.get(void_url(key)).text
    again = unchanged(api, lambda: console.post(f"/console/reports/void/{key}", {"reason": "otra vez"},
                                                token_from="/console/reports"))
    assert again.status_code == 409 and "already_voided" in again.text
    assert voids_of(api, key) == [("venta anulada", manager["id"], None)]
    # the report shows it voided, out of the count
    page = console.get(done.headers["location"]).text
    assert f'data-key="{key}" data-status="voided"' in page and 'data-count="3"' in page
    assert "venta anulada" in page[page.index('id="part-voids"'):]
    assert 'role="status"' in page  # the notice


def test_a_refusal_or_a_conflict_cannot_be_voided(console):
    day = make_day(console.api, others=False)
    signed_in(console, "admin")
    for key in (day.refused, day.conflict):
        assert 'id="void-not-accepted"' in console.get(void_url(key)).text
        refused = unchanged(console.api, lambda: console.post(f"/console/reports/void/{key}", {"reason": "x"},
                                                              token_from="/console/reports"))
        assert refused.status_code == 422 and "not_accepted" in refused.text
    assert console.get(void_url("no-such-key")).status_code == 404


@pytest.mark.parametrize("name", sorted(HOSTILE_TEXTS))
def test_hostile_reasons_are_each_a_message_and_nothing_voided(console, name):
    day = make_day(console.api, others=False)
    signed_in(console)
    key = day.accepted[0]
    refused = unchanged(console.api, lambda: console.post(f"/console/reports/void/{key}",
                                                          {"reason": HOSTILE_TEXTS[name]},
                                                          token_from=void_url(key)))
    assert refused.status_code == 400, refused.text[:800]
    assert 'id="reason-error"' in refused.text and 'id="void-form"' in refused.text
    assert_escaped(refused)


def test_a_void_form_without_its_token_or_with_broken_bytes(console):
    day = make_day(console.api, others=False)
    signed_in(console)
    key = day.accepted[0]
    missing = unchanged(console.api, lambda: console.http.post(f"/console/reports/void/{key}",
                                                               data={"reason": "sin token"}))
    assert missing.status_code == 400 and "csrf_missing" in missing.text
    broken = unchanged(console.api, lambda: post_raw(console, f"/console/reports/void/{key}", b"reason=%ff%fe"))
    assert broken.status_code == 400
    forged = unchanged(console.api, lambda: console.post(f"/console/reports/void/{key}", {"reason": "x"},
                                                         token="0" * 32 + "." + "0" * 32))
    assert forged.status_code == 400 and "csrf_invalid" in forged.text


def test_the_back_link_stays_on_the_console(console):
    day = make_day(console.api, others=False)
    signed_in(console)
    key = day.accepted[2]
    done = console.post(f"/console/reports/void/{key}", {"reason": "prueba", "back": "https://evil.example/x"},
                        token_from=void_url(key))
    assert done.status_code == 303 and done.headers["location"] == "/console/reports?ok=voided"
    form = console.get(void_url(day.accepted[0], "//evil.example")).text
    assert "evil.example" not in form


# --- in a browser -------------------------------------------------------------------------------------------


def test_a_manager_reads_the_report_and_voids_one_in_a_browser(browser_page, live_console, tmp_path):
    url, api = live_console
    day = make_day(api, others=False)
    manager = demo_staff(api, "manager")
    page = browser_page
    sign_in_staff_in(page, url, manager["id"], manager["pin"])
    page.wait_for_url(f"{url}/console/")
    page.click('nav.menu a[href="/console/reports"]')
    page.wait_for_url(f"{url}/console/reports")
    assert page.locator("#report").get_attribute("data-count") == "4"
    chart = page.locator("svg.hour-chart.wide")
    assert chart.is_visible() and not page.locator("svg.hour-chart.narrow").is_visible()
    assert chart.locator("rect.bar").count() == 1 and chart.locator("rect.bar").get_attribute("data-count") == "4"
    page.set_viewport_size(PHONE)
    assert page.locator("svg.hour-chart.narrow").is_visible() and not chart.is_visible()
    page.set_viewport_size(DESKTOP)
    with page.expect_download() as got:
        page.click("#download-csv")
    saved = Path(got.value.path())
    assert saved.read_text(encoding="utf-8").startswith("date,time,utc,till")
    # a past day typed as a date, then back to today
    page.fill("#f-date", "2025-03-14")
    page.click("#report-ask button[type=submit]")
    page.wait_for_url("**date=2025-03-14**")
    assert page.locator("#report").get_attribute("data-count") == "0"
    page.fill("#f-date", today())
    page.click("#report-ask button[type=submit]")
    page.wait_for_url(f"**date={today()}**")
    row = page.locator(f'table.redemptions tr[data-key="{day.accepted[0]}"]')
    row.locator("a.void-link").click()
    page.wait_for_url("**/console/reports/void/**")
    page.click("#void-confirm")  # no reason: the browser's own check stops it, nothing is sent
    assert voids_of(api, day.accepted[0]) == []
    page.fill("#f-reason", "cupón equivocado")
    page.click("#void-confirm")
    page.wait_for_url("**ok=voided**")
    assert page.locator('[role="status"]').is_visible()
    assert row.get_attribute("data-status") == "voided"
    assert page.locator("#report").get_attribute("data-count") == "3"
    assert voids_of(api, day.accepted[0]) == [("cupón equivocado", manager["id"], None)]


def test_an_admin_voids_at_any_store_of_the_retailer_and_the_operator_anywhere(console):
    day = make_day(console.api)
    api = console.api
    admin = signed_in(console, "admin")  # the demo admin belongs to the centre store: still retailer-wide here
    done = console.post(f"/console/reports/void/{day.key_b}", {"reason": "error de caja"}, token_from=void_url(day.key_b))
    assert done.status_code == 303, done.text[:800]
    assert voids_of(api, day.key_b) == [("error de caja", admin["id"], None)]
    operator = ConsoleClient(api)
    operator.sign_in_operator()
    done = operator.post(f"/console/reports/void/{day.key_y}", {"reason": "prueba"}, token_from=void_url(day.key_y))
    assert done.status_code == 303 and voids_of(api, day.key_y) == [("prueba", None, None)]
    page = operator.get(f"/console/reports?scope=store:{day.store_y['id']}").text
    voids = page[page.index('id="part-voids"'):]
    assert "prueba" in voids and said("the operator") in voids
    operator.close()
