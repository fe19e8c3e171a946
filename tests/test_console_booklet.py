"""The console's booklet pages: the operator makes an edition, places and locks vouchers, renders, previews the
pages as images and downloads the same PDF and billing CSV the API serves; nobody else opens any of it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pos_app.words import i18n

from console_booklet_helpers import assert_a_page_image, new_edition, pdf_pages, place, printed_vouchers
from console_fixtures import (HOSTILE_TEXTS, PHONE, SHOTS_ROOT, ConsoleClient, assert_escaped, demo_staff, post_raw,
                              sign_in_operator_in, sign_in_staff_in, unchanged)

pytestmark = pytest.mark.slow

# --- the main path, in a real browser ---------------------------------------------------------------


def test_the_operator_makes_renders_previews_and_downloads_an_edition(browser_page, live_console, tmp_path):
    url, api = live_console
    page = browser_page
    printed = printed_vouchers(api)
    sign_in_operator_in(page, url, api.admin_token)
    page.click("nav a[href='/console/booklets']")
    page.fill("#f-month", "2031-05")
    page.fill("#f-title", "Cupones de prueba")
    page.click("#create-edition button[type=submit]")
    page.wait_for_url(re.compile(r".*/console/booklets/bk_[0-9a-f]+\?ok=created"))
    edition_id = page.url.split("/console/booklets/")[1].split("?")[0]
    assert page.locator("h1").inner_text() == "Cupones de prueba"
    with i18n.using("es"):  # the browser asks for es-PY
        assert i18n._("Not rendered yet: render the booklet to see its pages here.") in page.inner_text("#preview")

    page.select_option("#f-voucher_id", printed[0])
    page.select_option("#f-tier", "half")
    page.click("#add-placement button[type=submit]")
    page.wait_for_url(re.compile(r".*\?ok=placed"))
    page.select_option("#f-voucher_id", printed[1])
    page.select_option("#f-tier", "single")
    page.check("#add-placement [name=premium]")
    page.click("#add-placement button[type=submit]")
    page.wait_for_url(re.compile(r".*\?ok=placed"))
    rows = page.locator("tr[data-placement]")
    assert rows.count() == 2
    assert sorted(rows.nth(i).get_attribute("data-tier") for i in range(2)) == ["3", "5"]

    single = page.locator("tr[data-placement][data-tier='5']")
    single.locator("[name=page]").fill("3")
    single.locator("[name=position]").select_option("1")
    single.locator("button[type=submit]").click()
    page.wait_for_url(re.compile(r".*\?ok=locked"))
    assert page.locator("tr[data-tier='5']").get_attribute("data-locked") == "yes"
    assert page.locator("tr[data-tier='3']").get_attribute("data-locked") == "no"

    _screenshots(page, "edition-draft")
    page.click("#render button[type=submit]")
    page.wait_for_url(re.compile(r".*\?ok=rendered"))
    assert page.locator("#edition-status").get_attribute("data-status") == "done"
    edition = api.ok(api.client.get(f"/booklets/{edition_id}", headers=api.admin))
    locked = next(p for p in edition["placements"] if p["size"] == "single")
    assert (locked["lock_page"], locked["lock_position"]) == (3, 1)
    assert {"page": 3, "position": 1, "size": "single", "placement_id": locked["id"]}.items() <= next(
        s for s in edition["layout"]["slots"] if s["placement_id"] == locked["id"]).items()

    images = page.locator("#preview img")
    assert images.count() == edition["layout"]["pages"]
    images.last.scroll_into_view_if_needed()
    page.wait_for_function("() => [...document.querySelectorAll('#preview img')].every(i => i.complete "
                           "&& i.naturalWidth > 0)")
    first = images.first.get_attribute("src")
    assert edition["pdf"]["sha256"] in first
    shown = page.request.get(url + first)
    assert shown.status == 200 and shown.headers["content-type"] == "image/png"
    assert_a_page_image(shown.body())

    with page.expect_download() as caught:
        page.click("#download-pdf")
    pdf = Path(caught.value.path()).read_bytes()
    assert pdf == api.client.get(f"/booklets/{edition_id}.pdf", headers=api.admin).content
    assert pdf_pages(pdf, tmp_path) == edition["layout"]["pages"]
    with page.expect_download() as caught:
        page.click("#download-billing")
    billing = Path(caught.value.path()).read_bytes()
    assert billing == api.client.get(f"/booklets/{edition_id}/billing.csv", headers=api.admin).content
    assert billing.count(b"\r\n") == 1 + len(edition["layout"]["slots"])

    page.goto(f"{url}/console/booklets")
    row = page.locator(f"tr[data-edition='{edition_id}']")
    assert row.locator("td.num").inner_text().strip() == "2"
    assert row.locator("[data-rendered]").get_attribute("data-rendered") == "yes"
    _screenshots(page, "list")
    page.goto(f"{url}/console/booklets/{edition_id}")
    _screenshots(page, "edition")


def _screenshots(page, name: str) -> None:
    """The page as it is, at a phone's and a desktop's width, for a person to look at; back to the desktop."""
    for width, size in (("390", PHONE), ("1280", {"width": 1280, "height": 900})):
        page.set_viewport_size(size)
        page.screenshot(path=str(_shot_dir() / f"{name}-{width}.png"), full_page=True)


def _shot_dir() -> Path:
    """Where a person looks at the pages (the committed screenshots are made by docs/screenshots/take.py)."""
    folder = SHOTS_ROOT / "booklet"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_a_retailers_admin_or_manager_is_refused_every_booklet_url(console, live_console, browser_page):
    api = console.api
    eid = api.demo["booklet"]["edition_id"]
    api.ok(api.client.post(f"/booklets/{eid}/render", headers=api.admin, json={}))
    digest = api.ok(api.client.get(f"/booklets/{eid}", headers=api.admin))["pdf"]["sha256"]
    voucher = printed_vouchers(api)[0]
    gets = ["/console/booklets", f"/console/booklets/{eid}", f"/console/booklets/{eid}/edition.pdf",
            f"/console/booklets/{eid}/billing.csv", f"/console/booklets/{eid}/preview/{digest}/1.png"]
    posts = [("/console/booklets", {"month": "2031-05", "paper": "A5"}),
             (f"/console/booklets/{eid}/placements", {"voucher_id": voucher, "tier": "single"}),
             (f"/console/booklets/{eid}/placements/plc_x/lock", {"page": "3", "position": "0"}),
             (f"/console/booklets/{eid}/render", {"force": "1"})]
    for role in ("admin", "manager"):
        member = demo_staff(api, role)
        client = ConsoleClient(api)
        assert client.sign_in_staff(member["id"], member["pin"]).status_code == 303
        assert "/console/booklets" not in client.get("/console/").text  # not in the menu either
        for path in gets:
            refused = client.get(path)
            assert refused.status_code == 403 and "forbidden" in refused.text, (role, path)
            assert "%PDF" not in refused.text and "advertiser" not in refused.text
        for path, data in posts:
            refused = unchanged(api, lambda: client.post(path, data, token_from="/console/"))
            assert refused.status_code == 403, (role, path)
        client.close()
    # signed out: every page leads to the sign-in, and a form does nothing
    stranger = ConsoleClient(api)
    for path in gets:
        answer = stranger.get(path)
        assert answer.status_code == 303 and answer.headers["location"].startswith("/console/sign-in?next=")
    answer = unchanged(api, lambda: stranger.http.post("/console/booklets", data={"month": "2031-05"}))
    assert answer.status_code == 303 and "/console/sign-in" in answer.headers["location"]
    stranger.close()
    # and in a browser, a manager sees the refusal page
    url, _ = live_console
    manager = demo_staff(api, "manager")
    sign_in_staff_in(browser_page, url, manager["id"], manager["pin"])
    browser_page.wait_for_url(f"{url}/console/")
    answer = browser_page.goto(f"{url}/console/booklets")
    assert answer.status == 403 and browser_page.locator(".refusal").count() == 1


def test_a_claims_token_operator_is_refused_too(console):
    api = console.api
    from server_stub.operations import credentials

    made = credentials.create_token(api.backend.ctx, "claims", "the customer app")
    console.sign_in_operator(made["token"])
    assert console.get("/console/booklets").status_code == 403


# --- bad input -------------------------------------------------------------------------------------------


def test_bad_months_and_fields_are_said_beside_the_form_and_nothing_is_made(console):
    api = console.api
    console.sign_in_operator()
    for month in ("", "2031-13", "2031-00", "1999-12", "2100-01", "2031-5", "31-05", "2031/05", "２０３１-05",
                  "2031-05-01", *HOSTILE_TEXTS.values()):
        refused = unchanged(api, lambda: console.post("/console/booklets", {"month": month, "paper": "A5"}))
        assert refused.status_code == 400, (month, refused.text[:300])
        assert 'id="month-error"' in refused.text, month
        assert_escaped(refused)
    for fields, wrong in (({"paper": "A4"}, "paper"), ({"paper": ""}, "paper"), ({"pages": "ten"}, "pages"),
                          ({"pages": "1"}, "pages"), ({"pages": "9999"}, "pages"), ({"pages": "2.5"}, "pages"),
                          ({"title": "x" * 121}, "title")):
        refused = unchanged(api, lambda: console.post("/console/booklets", {"month": "2031-05", "paper": "A5",
                                                                             **fields}))
        assert refused.status_code == 400 and f'id="{wrong}-error"' in refused.text, fields
        assert 'value="2031-05"' in refused.text  # what was typed is kept
    for name, text in HOSTILE_TEXTS.items():
        if name in ("script", "attribute", "empty", "spaces"):
            continue  # a title may hold those (shown escaped, below); empty is the default title
        refused = unchanged(api, lambda: console.post("/console/booklets", {"month": "2031-05", "paper": "A5",
                                                                             "title": text}))
        assert refused.status_code == 400 and 'id="title-error"' in refused.text, name
        assert_escaped(refused)
    raw = unchanged(api, lambda: post_raw(console, "/console/booklets", b"month=2031-05&paper=A5&title=%ED%A0%80"))
    assert raw.status_code == 400


def test_a_hostile_title_is_kept_as_typed_and_shown_escaped(console):
    api = console.api
    console.sign_in_operator()
    for text in (HOSTILE_TEXTS["script"], HOSTILE_TEXTS["attribute"]):
        edition_id = new_edition(console, title=text)
        assert api.ok(api.client.get(f"/booklets/{edition_id}", headers=api.admin))["title"] == text
        for path in (f"/console/booklets/{edition_id}", "/console/booklets"):
            shown = console.get(path)
            assert shown.status_code == 200 and "&lt;" in shown.text
            assert_escaped(shown)


def test_placements_refuse_unknown_vouchers_tiers_and_wrong_prices(console):
    api = console.api
    console.sign_in_operator()
    edition_id = new_edition(console)
    printed = printed_vouchers(api)
    personal = api.demo_voucher("personal")["id"]
    unpublished = api.voucher("printed", publish=False)["id"]
    for fields, wrong in (({"voucher_id": "vch_nobody"}, "voucher_id"), ({"voucher_id": personal}, "voucher_id"),
                          ({"voucher_id": unpublished}, "voucher_id"), ({"voucher_id": ""}, "voucher_id"),
                          ({"tier": "double"}, "tier"), ({"tier": ""}, "tier"), ({"price": "mucho"}, "price"),
                          ({"price": "-5"}, "price"), ({"price": "9" * 14}, "price"),
                          *(({"voucher_id": text}, "voucher_id") for text in HOSTILE_TEXTS.values()),
                          *(({"price": text}, "price") for name, text in HOSTILE_TEXTS.items()
                            if name not in ("empty", "spaces"))):
        body = {"voucher_id": printed[0], "tier": "single", **fields}
        refused = unchanged(api, lambda: place(console, edition_id, body.pop("voucher_id"), body.pop("tier"),
                                                **body))
        assert refused.status_code == 400 and f'id="{wrong}-error"' in refused.text, (fields, refused.text[:300])
        assert_escaped(refused)
    # the backend's own rules, said above the form
    outside = api.voucher("printed", valid_until=1_700_000_000)["id"]  # ended in 2023
    api.backend.create_printed_code(outside, "VIEJO1")
    refused = unchanged(api, lambda: place(console, edition_id, outside, "single"))
    assert refused.status_code == 422 and 'data-code="outside_month"' in refused.text
    assert place(console, edition_id, printed[0], "front").status_code == 303
    taken = unchanged(api, lambda: place(console, edition_id, printed[1], "front"))
    assert taken.status_code == 422 and 'data-code="cover_taken"' in taken.text
    small = new_edition(console, paper="A6")
    tiny = unchanged(api, lambda: place(console, small, printed[0], "single"))
    assert tiny.status_code == 422 and 'data-code="voucher_too_small"' in tiny.text


def test_locks_are_checked_and_an_unknown_edition_or_placement_is_not_found(console):
    api = console.api
    console.sign_in_operator()
    edition_id = new_edition(console, pages="4")
    printed = printed_vouchers(api)
    assert place(console, edition_id, printed[0], "half").status_code == 303
    assert place(console, edition_id, printed[1], "front").status_code == 303
    half, cover = sorted(api.ok(api.client.get(f"/booklets/{edition_id}", headers=api.admin))["placements"],
                         key=lambda p: p["cover"] or "")
    lock = f"/console/booklets/{edition_id}/placements/{half['id']}/lock"
    page = f"/console/booklets/{edition_id}"
    for fields, wrong in (({"page": "tres"}, "page"), ({"page": ""}, "page"), ({"page": "0"}, "page"),
                          ({"page": "999"}, "page"), ({"position": "1"}, "position"), ({"position": "x"}, "position"),
                          *(({"page": text}, "page") for text in HOSTILE_TEXTS.values())):
        refused = unchanged(api, lambda: console.post(lock, {"page": "2", "position": "0", **fields}, token_from=page))
        assert refused.status_code == 400 and f'id="{wrong}-error"' in refused.text, fields
        assert_escaped(refused)
    for fields, code in (({"page": "1"}, "lock_on_cover"), ({"page": "9"}, "lock_out_of_range")):
        refused = unchanged(api, lambda: console.post(lock, {"position": "0", **fields}, token_from=page))
        assert refused.status_code == 422 and f'data-code="{code}"' in refused.text, fields
    on_cover = unchanged(api, lambda: console.post(f"/console/booklets/{edition_id}/placements/{cover['id']}/lock",
                                                   {"page": "2", "position": "0"}, token_from=page))
    assert on_cover.status_code == 422 and 'data-code="lock_on_cover"' in on_cover.text
    assert console.post(lock, {"page": "2", "position": "4"}, token_from=page).status_code == 303
    assert console.post(lock, {"unlock": "1"}, token_from=page).status_code == 303
    assert api.rows("SELECT lock_page FROM booklet_placements WHERE id = ?", (half["id"],)) == [(None,)]
    for path in ("/console/booklets/bk_nobody", "/console/booklets/bk_nobody/edition.pdf",
                 "/console/booklets/bk_nobody/billing.csv", f"/console/booklets/bk_nobody/preview/{'0' * 64}/1.png",
                 f"{page}/preview/{'0' * 64}/1.png", f"{page}/preview/short/1.png"):
        assert console.get(path).status_code == 404, path
    for path, data in (("/console/booklets/bk_nobody/placements", {"voucher_id": printed[0], "tier": "single"}),
                       ("/console/booklets/bk_nobody/render", {}),
                       (f"/console/booklets/{edition_id}/placements/plc_nobody/lock", {"page": "2", "position": "0"})):
        missing = unchanged(api, lambda: console.post(path, data, token_from=page))
        assert missing.status_code == 404 and "not_found" in missing.text, path
    # not rendered yet: no files, and the page says so
    assert console.get(f"{page}/edition.pdf").status_code == 409
    assert console.get(f"{page}/billing.csv").status_code == 409
    assert 'id="download-pdf"' not in console.get(page).text


def test_a_rendered_edition_no_longer_changes_and_renders_again_only_when_asked(console):
    api = console.api
    console.sign_in_operator()
    edition_id = new_edition(console)
    printed = printed_vouchers(api)
    assert place(console, edition_id, printed[0], "quarter").status_code == 303
    page = f"/console/booklets/{edition_id}"
    assert console.post(f"{page}/render", {}, token_from=page).status_code == 303
    first = api.ok(api.client.get(f"/booklets/{edition_id}", headers=api.admin))
    shown = console.get(page)
    assert 'id="add-placement"' not in shown.text and "Render again" in shown.text or "force" in shown.text
    refused = unchanged(api, lambda: place(console, edition_id, printed[1], "single"))
    assert refused.status_code == 409 and 'data-code="conflict"' in refused.text
    again = unchanged(api, lambda: console.post(f"{page}/render", {}, token_from=page))
    assert again.status_code == 409
    assert console.post(f"{page}/render", {"force": "1"}, token_from=page).status_code == 303
    second = api.ok(api.client.get(f"/booklets/{edition_id}", headers=api.admin))
    assert second["render_count"] == first["render_count"] + 1
    actions = [r[0] for r in api.rows("SELECT action FROM audit_log WHERE target = ? ORDER BY id", (edition_id,))]
    assert actions == ["booklet.create", "booklet.placement_add", "booklet.render", "booklet.render"]


# --- tokens ------------------------------------------------------------------------------------------------


def test_forms_need_their_token_once(console):
    api = console.api
    console.sign_in_operator()
    missing = unchanged(api, lambda: console.http.post("/console/booklets", data={"month": "2031-05", "paper": "A5"}))
    assert missing.status_code == 400 and "csrf_missing" in missing.text
    token = console.token("/console/booklets")
    assert console.post("/console/booklets", {"month": "2031-05", "paper": "A5"}, token=token).status_code == 303
    replayed = unchanged(api, lambda: console.post("/console/booklets", {"month": "2031-05", "paper": "A5"},
                                                   token=token))
    assert replayed.status_code == 400 and "csrf_replayed" in replayed.text
    assert api.rows("SELECT count(*) FROM booklet_editions WHERE month = '2031-05'") == [(1,)]
    edition_id = new_edition(console, month="2031-06")
    page = f"/console/booklets/{edition_id}"
    voucher = printed_vouchers(api)[0]
    token = console.token(page)
    assert place(console, edition_id, voucher, "single", csrf=token).status_code == 303
    again = unchanged(api, lambda: place(console, edition_id, voucher, "single", csrf=token))
    assert again.status_code == 400 and "csrf_replayed" in again.text
    token = console.token(page)
    assert console.post(f"{page}/render", {}, token=token).status_code == 303
    again = unchanged(api, lambda: console.post(f"{page}/render", {"force": "1"}, token=token))
    assert again.status_code == 400 and "csrf_replayed" in again.text
    forged = unchanged(api, lambda: console.post(f"{page}/render", {"force": "1"}, token="0" * 32 + "." + "0" * 32))
    assert forged.status_code == 400 and "csrf_invalid" in forged.text


def test_any_retailers_published_printed_voucher_may_be_placed(console):
    """The booklet is the platform's: a second retailer's voucher is offered beside the first's, and placed."""
    api = console.api
    backend = api.backend
    other = backend.create_retailer("Librería Arandu")
    voucher = backend.create_voucher({"retailer_id": other["id"], "kind": "printed", "discount": {"kind": "percent",
                                      "value": 10}, "texts": {"gn": {"title": "Kuatiañe'ẽ 10 %"}}})
    hidden = backend.create_voucher({"retailer_id": other["id"], "kind": "printed", "discount": {"kind": "percent",
                                     "value": 5}, "texts": {"es": {"title": "Aún no publicado"}}})
    backend.change_voucher(voucher["id"], "publish")
    backend.create_printed_code(voucher["id"], "ARANDU10")
    console.sign_in_operator()
    edition_id = new_edition(console)
    shown = console.get(f"/console/booklets/{edition_id}").text
    assert f'value="{voucher["id"]}"' in shown and "Librería Arandu — Kuatiañe&#39;ẽ 10 %" in shown  # the fallback
    assert f'value="{hidden["id"]}"' not in shown
    assert place(console, edition_id, voucher["id"], "quarter").status_code == 303
    assert place(console, edition_id, printed_vouchers(api)[0], "quarter").status_code == 303
    placed = api.ok(api.client.get(f"/booklets/{edition_id}", headers=api.admin))["placements"]
    assert sorted(p["advertiser"] for p in placed) == ["Café Pika", "Librería Arandu"]
    assert {p["code"] for p in placed} >= {"ARANDU10"}
