"""The console's voucher pages: made with texts per language, edited within the rules, published, unpublished,
revoked after a confirmation, printed codes added; scoped to the retailer; every bad input refused."""

from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

import pytest

from pos_app.words import i18n

from pos_app.core import codes
from console_fixtures import (HOSTILE_TEXTS, PHONE, SHOTS_ROOT, ConsoleClient, assert_escaped, demo_staff, post_raw,
                              sign_in_operator_in, unchanged)

pytestmark = pytest.mark.slow
ASU = ZoneInfo("America/Asuncion")
SHOTS = SHOTS_ROOT / "vouchers"


def _midnight(day: str, zone=ASU) -> int:
    return int(dt.datetime.combine(dt.date.fromisoformat(day), dt.time(0), zone).timestamp())


def _form(api, **extra) -> dict:
    return {"retailer_id": api.retailer_id, "kind": "personal", "title_es": "Chipa gratis",
            "terms_es": "Una por persona.", "title_gn": "Chipa rei", "discount_kind": "percent",
            "discount_value": "15", **extra}


def _made(response) -> str:
    assert response.status_code == 303, response.text[:3000]
    return response.headers["location"].split("/")[3].split("?")[0]


def _events(api, voucher_id: str) -> list[dict]:
    rows = api.rows("SELECT data FROM events WHERE type = 'voucher' ORDER BY seq")
    return [d for d in map(json.loads, (r[0] for r in rows)) if d["id"] == voucher_id]


def _audit(api, action: str) -> list[tuple]:
    return api.rows("SELECT actor_kind, target, detail FROM audit_log WHERE action = ? ORDER BY id", (action,))


def _other_retailer(api) -> dict:
    other = api.backend.create_retailer("Farmacia Guaraní")
    api.backend.create_store(other["id"], "Farmacia Centro")
    voucher = api.backend.create_voucher({"retailer_id": other["id"], "kind": "printed",
                                          "texts": {"es": {"title": "Ajena"}}, "discount": {"kind": "percent",
                                                                                          "value": 5}})
    return {"retailer": other, "voucher": voucher}


# --- made ---------------------------------------------------------------------------------------------------

def test_a_personal_voucher_is_made_with_two_languages_dates_in_asuncion_and_the_fallback_shown(console):
    api = console.api
    console.sign_in_operator()
    form = console.get("/console/vouchers/new")
    assert form.status_code == 200 and 'name="title_gn"' in form.text and 'name="terms_pt"' in form.text
    assert "Español → English → Português" in form.text  # Guaraní's fallback, as pos_app.core.domain says
    voucher_id = _made(console.post("/console/vouchers/new", _form(api, valid_from="2026-12-01",
                                                                   valid_until="2026-12-31", claim_days="3")))
    voucher = api.backend.get_voucher(voucher_id)
    assert voucher["status"] == "new" and voucher["kind"] == "personal"
    assert voucher["texts"] == {"es": {"title": "Chipa gratis", "terms": "Una por persona."},
                                "gn": {"title": "Chipa rei", "terms": ""}}
    assert voucher["discount"] == {"kind": "percent", "value": 15, "currency": "PYG"}
    assert voucher["valid_from"] == _midnight("2026-12-01") and voucher["valid_until"] == _midnight("2027-01-01")
    assert api.backend.voucher_extras(voucher_id)["claim_ttl_s"] == 3 * 86400
    assert _audit(api, "voucher.create")[-1][:2] == ("admin", voucher_id)
    page = console.get(f"/console/vouchers/{voucher_id}")
    assert page.status_code == 200 and 'data-status="new"' in page.text and "Chipa rei" in page.text
    english = page.text.split('id="text-en"')[1].split("</div>")[0]
    assert "Español" in english and "Chipa gratis" in english  # English falls back to Spanish
    assert 'id="codes"' not in page.text  # printed codes belong to printed vouchers
    listing = console.get("/console/vouchers")
    assert f"/console/vouchers/{voucher_id}" in listing.text and "Chipa gratis" in listing.text


def test_a_printed_voucher_takes_limits_and_an_amount_in_guaranies(console):
    api = console.api
    console.sign_in_operator()
    voucher_id = _made(console.post("/console/vouchers/new", _form(api, kind="printed", discount_kind="amount",
                                                                   discount_value="15000", total_limit="500",
                                                                   store_day_limit="20")))
    voucher = api.backend.get_voucher(voucher_id)
    assert (voucher["total_limit"], voucher["store_day_limit"]) == (500, 20)
    assert voucher["discount"]["value"] == 15000 and voucher["valid_from"] is None and voucher["valid_until"] is None
    page = console.get(f"/console/vouchers/{voucher_id}")
    assert "15.000" in page.text and 'id="code-limits"' in page.text


@pytest.mark.parametrize("field", ["title_es", "terms_es", "title_pt"])
@pytest.mark.parametrize("case", sorted(set(HOSTILE_TEXTS) - {"empty", "spaces"}))
def test_hostile_texts_are_refused_beside_their_field(console, field, case):
    api = console.api
    console.sign_in_operator()
    body = _form(api, **{field: HOSTILE_TEXTS[case]}, **({"title_pt": "Chipa"} if field != "title_pt" else {}))
    refused = unchanged(api, lambda: console.post("/console/vouchers/new", body))
    assert refused.status_code == 400 and f'id="{field}-error"' in refused.text
    assert_escaped(refused)


@pytest.mark.parametrize("changes,field", [
    ({"title_es": "", "title_gn": "", "terms_es": ""}, "title_es"),
    ({"title_es": "   ", "title_gn": "", "terms_es": ""}, "title_es"),
    ({"title_gn": "", "terms_gn": "Sin título"}, "title_gn"),
    ({"discount_value": "abc"}, "discount_value"),
    ({"discount_value": "0"}, "discount_value"),
    ({"discount_value": "101"}, "discount_value"),
    ({"discount_value": "1e3"}, "discount_value"),
    ({"discount_value": ""}, "discount_value"),
    ({"discount_kind": "amount", "discount_value": "100000001"}, "discount_value"),
    ({"discount_kind": "bogus"}, "discount_kind"),
    ({"kind": "bogus"}, "kind"),
    ({"kind": ""}, "kind"),
    ({"valid_from": "2026-13-01"}, "valid_from"),
    ({"valid_from": "tomorrow"}, "valid_from"),
    ({"valid_from": "1796094000"}, "valid_from"),
    ({"valid_until": "3000-01-01"}, "valid_until"),
    ({"valid_from": "2026-12-10", "valid_until": "2026-12-09"}, "valid_until"),
    ({"claim_days": "91"}, "claim_days"),
    ({"claim_days": "x"}, "claim_days"),
    ({"total_limit": "10"}, "total_limit"),  # a personal voucher has no limits
    ({"kind": "printed", "claim_days": "3"}, "claim_days"),  # a printed one no claims
    ({"kind": "printed", "total_limit": "-1"}, "total_limit"),
    ({"kind": "printed", "store_day_limit": "<script>"}, "store_day_limit"),
    ({"retailer_id": ""}, "retailer_id"),
])
def test_wrong_values_are_refused_beside_their_field(console, changes, field):
    api = console.api
    console.sign_in_operator()
    refused = unchanged(api, lambda: console.post("/console/vouchers/new", _form(api, **changes)))
    assert refused.status_code == 400 and f'id="{field}-error"' in refused.text, refused.text[:3000]
    assert_escaped(refused)


def test_forms_need_a_token_once(console):
    api = console.api
    console.sign_in_operator()
    missing = unchanged(api, lambda: console.http.post("/console/vouchers/new", data=_form(api)))
    assert missing.status_code == 400 and "csrf_missing" in missing.text
    token = console.token("/console/vouchers/new")
    voucher_id = _made(console.post("/console/vouchers/new", _form(api), token=token))
    replayed = unchanged(api, lambda: console.post("/console/vouchers/new", _form(api), token=token))
    assert replayed.status_code == 400 and "csrf_replayed" in replayed.text
    token = console.token(f"/console/vouchers/{voucher_id}")
    assert console.post(f"/console/vouchers/{voucher_id}/publish", {}, token=token).status_code == 303
    replayed = unchanged(api, lambda: console.post(f"/console/vouchers/{voucher_id}/unpublish", {}, token=token))
    assert replayed.status_code == 400 and "csrf_replayed" in replayed.text
    assert len(_events(api, voucher_id)) == 2  # made, published: nothing twice
    for path in (f"/console/vouchers/{voucher_id}/edit", f"/console/vouchers/{voucher_id}/revoke"):
        missing = unchanged(api, lambda: console.http.post(path, data={"confirm": "1", "title_es": "X"}))
        assert missing.status_code == 400 and "csrf_missing" in missing.text


def test_a_bad_utf8_body_is_refused(console):
    console.sign_in_operator()
    refused = unchanged(console.api, lambda: post_raw(console, "/console/vouchers/new", b"title_es=%ed%a0%80"))
    assert refused.status_code == 400


# --- published, unpublished, revoked ------------------------------------------------------------------------

def test_publish_unpublish_and_a_revoke_that_asks_first(console):
    api = console.api
    console.sign_in_operator()
    voucher_id = _made(console.post("/console/vouchers/new", _form(api)))
    page = f"/console/vouchers/{voucher_id}"
    assert 'id="unpublish"' not in console.get(page).text
    published = console.post(f"{page}/publish", {}, token_from=page)
    assert published.headers["location"].endswith("?ok=published")
    assert _events(api, voucher_id)[-1]["status"] == "published"
    assert 'id="unpublish"' in console.get(page).text and 'id="publish"' not in console.last.text
    assert console.post(f"{page}/unpublish", {}, token_from=page).status_code == 303
    assert api.backend.get_voucher(voucher_id)["status"] == "unpublished"
    asked = console.get(f"{page}/revoke")
    assert asked.status_code == 200 and 'name="confirm"' in asked.text
    unticked = unchanged(api, lambda: console.post(f"{page}/revoke", {}))
    assert unticked.status_code == 400 and 'id="confirm-error"' in unticked.text
    assert console.post(f"{page}/revoke", {"confirm": "1"}).headers["location"].endswith("?ok=revoked")
    assert api.backend.get_voucher(voucher_id)["status"] == "revoked"
    assert [a[1] for a in _audit(api, "voucher.revoke")] == [voucher_id]
    shown = console.get(page)
    assert 'id="publish"' not in shown.text and 'id="edit"' not in shown.text and 'id="revoke"' not in shown.text
    refused = unchanged(api, lambda: console.post(f"{page}/publish", {}, token_from=f"{page}/revoke"))
    assert refused.status_code == 409 and 'data-code="conflict"' in refused.text
    assert 'id="final"' in console.get(f"{page}/edit").text
    refused = unchanged(api, lambda: console.post(f"{page}/edit", {"title_es": "Otra"}, token_from=page))
    assert refused.status_code == 409


# --- edited -------------------------------------------------------------------------------------------------

def _edit_form(console, voucher_id: str) -> dict:
    """What the edit page's form holds, as a browser would send it back."""
    import re
    import html

    page = console.get(f"/console/vouchers/{voucher_id}/edit").text
    values = {name: html.unescape(value) for name, value in re.findall(r'name="(\w+)" type="[a-z]+"\s+value="([^"]*)"',
                                                                       page)}
    for name, text in re.findall(r'<textarea id="f-\w+" name="(\w+)"[^>]*>([^<]*)</textarea>', page):
        values[name] = html.unescape(text)
    for name, chosen in re.findall(r'<select id="f-(\w+)".*?<option value="([^"]*)" selected', page, re.S):
        values[name] = chosen
    return values


def test_a_draft_changes_everything_but_its_kind_and_a_published_voucher_keeps_its_discount(console):
    api = console.api
    console.sign_in_operator()
    voucher_id = _made(console.post("/console/vouchers/new", _form(api)))
    body = {**_edit_form(console, voucher_id), "discount_value": "25", "title_en": "Free chipa",
            "valid_until": "2027-02-28", "kind": "printed"}
    assert console.post(f"/console/vouchers/{voucher_id}/edit", body).status_code == 303
    voucher = api.backend.get_voucher(voucher_id)
    assert voucher["discount"]["value"] == 25 and voucher["texts"]["en"]["title"] == "Free chipa"
    assert voucher["kind"] == "personal" and voucher["valid_until"] == _midnight("2027-03-01")
    edits = _audit(api, "voucher.edit")
    assert len(edits) == 1 and json.loads(edits[0][2])["before"]["discount_value"] == 15
    console.post(f"/console/vouchers/{voucher_id}/publish", {}, token_from=f"/console/vouchers/{voucher_id}")
    form = console.get(f"/console/vouchers/{voucher_id}/edit")
    assert 'id="what-changes"' in form.text and 'name="discount_value"' not in form.text
    assert 'id="discount-fixed"' in form.text
    body = {**_edit_form(console, voucher_id), "discount_kind": "amount", "discount_value": "99999",
            "terms_gn": "Peteĩ peteĩ"}
    assert console.post(f"/console/vouchers/{voucher_id}/edit", body).status_code == 303
    voucher = api.backend.get_voucher(voucher_id)
    assert voucher["discount"]["value"] == 25 and voucher["texts"]["gn"]["terms"] == "Peteĩ peteĩ"
    assert _events(api, voucher_id)[-1]["texts"]["gn"]["terms"] == "Peteĩ peteĩ"  # tills hear as of a publish


def test_opening_and_saving_changes_nothing_even_a_moment_set_to_the_second(console):
    api = console.api
    odd = api.voucher("printed", valid_from=1_790_000_123, valid_until=1_800_000_456, total_limit=9)
    console.sign_in_operator()
    body = _edit_form(console, odd["id"])
    assert body["total_limit"] == "9" and body["title_es"] == "Prueba"
    saved = unchanged(api, lambda: console.post(f"/console/vouchers/{odd['id']}/edit", body))
    assert saved.status_code == 303
    day = dt.datetime.fromtimestamp(1_800_000_456, ASU).date()
    moved = {**body, "valid_until": (day + dt.timedelta(days=1)).isoformat()}
    assert console.post(f"/console/vouchers/{odd['id']}/edit", moved).status_code == 303
    voucher = api.backend.get_voucher(odd["id"])
    assert voucher["valid_from"] == 1_790_000_123 and voucher["valid_until"] == _midnight(
        (day + dt.timedelta(days=2)).isoformat())


def test_an_edit_reaches_the_tills_feed_and_their_verdicts(console):
    api = console.api
    till = api.enroll("Caja 9")
    start = api.ok(api.client.get("/feed", headers=till.auth))["cursor"]
    voucher_id = api.demo_voucher("personal")["id"]
    claim = api.claim(voucher_id)
    console.sign_in_operator()
    body = {**_edit_form(console, voucher_id), "valid_from": "2026-01-01", "valid_until": "2026-01-31"}
    assert console.post(f"/console/vouchers/{voucher_id}/edit", body).status_code == 303
    feed = api.ok(api.client.get("/feed", headers=till.auth, params={"after": start}))
    changed = [e["data"] for e in feed["events"] if e["type"] == "voucher"]
    assert changed and changed[-1]["valid_until"] == _midnight("2026-02-01")
    verdict = api.redeem(till, claim["token"]).json()["verdict"]
    assert verdict["accepted"] is False and verdict["reason"] == "expired"


@pytest.mark.parametrize("changes,field", [({"title_es": HOSTILE_TEXTS["script"]}, "title_es"),
                                           ({"total_limit": "abc"}, "total_limit"),
                                           ({"valid_until": "2026-02-30"}, "valid_until")])
def test_an_edit_with_a_wrong_field_writes_nothing(console, changes, field):
    api = console.api
    voucher_id = api.demo_voucher("printed")["id"]
    console.sign_in_operator()
    body = {**_edit_form(console, voucher_id), **changes}
    refused = unchanged(api, lambda: console.post(f"/console/vouchers/{voucher_id}/edit", body))
    assert refused.status_code == 400 and f'id="{field}-error"' in refused.text
    assert_escaped(refused)


# --- printed codes ------------------------------------------------------------------------------------------

def test_printed_codes_are_added_and_listed_with_the_limits_that_apply(console):
    api = console.api
    voucher_id = api.demo_voucher("printed")["id"]
    console.sign_in_operator()
    page = console.get(f"/console/vouchers/{voucher_id}")
    assert "CAFE50" in page.text and "5.000" in page.text and "200" in page.text  # total_limit, store_day_limit
    added = console.post(f"/console/vouchers/{voucher_id}/codes", {"code": "chipa 2026"},
                         token_from=f"/console/vouchers/{voucher_id}")
    assert added.status_code == 303
    assert {c["code"] for c in api.backend.list_printed_codes(voucher_id)} == {"CAFE50", "CHIPA2026"}
    assert _audit(api, "printed_code.create")[-1][1] == "CHIPA2026"
    till = api.enroll("Caja 3")
    assert api.redeem(till, "CAFE50", "printed").json()["verdict"]["accepted"] is True
    other = api.backend.create_store(api.retailer_id, "Sucursal Luque")
    page = console.get(f"/console/vouchers/{voucher_id}")
    with i18n.using("es"):  # the console's default language
        used = i18n._("{used} of {limit} used").format(used="1", limit=i18n.format_number(5000))
    assert "CHIPA2026" in page.text and used in page.text
    today = page.text.split('id="uses-today"')[1].split("</table>")[0]
    with i18n.using("es"):
        of = i18n._("{used} of {limit}")
    assert f"Café Pika — Asunción Centro</td><td class=\"num\">{of.format(used=1, limit=200)}" in today
    assert f"Sucursal Luque</td><td class=\"num\">{of.format(used=0, limit=200)}" in today
    assert api.backend.voucher_extras(voucher_id, uses=True)["today"] == {api.store_id: 1, other["id"]: 0}


@pytest.mark.parametrize("code", ["CAFE50", "cafe-50", "ab", "x" * 30, "ÑANDU", "short", *HOSTILE_TEXTS.values()])
def test_a_code_taken_malformed_or_hostile_is_refused(console, code):
    api = console.api
    voucher_id = api.demo_voucher("printed")["id"]
    if code == "short":  # one a customer's claim could have: a till would read it as that
        code = codes.format_short_code(codes.new_short_code())
    console.sign_in_operator()
    refused = unchanged(api, lambda: console.post(f"/console/vouchers/{voucher_id}/codes", {"code": code},
                                                  token_from=f"/console/vouchers/{voucher_id}"))
    assert refused.status_code in (400, 409) and ('id="code-error"' in refused.text or 'role="alert"' in refused.text)
    assert 'id="new-code"' in refused.text
    assert_escaped(refused)


def test_a_personal_voucher_takes_no_printed_code(console):
    api = console.api
    voucher_id = api.demo_voucher("personal")["id"]
    console.sign_in_operator()
    refused = unchanged(api, lambda: console.post(f"/console/vouchers/{voucher_id}/codes", {"code": "NOPE99"},
                                                  token_from=f"/console/vouchers/{voucher_id}"))
    assert refused.status_code == 400 and 'data-code="invalid_value"' in refused.text


# --- who may -------------------------------------------------------------------------------------------------

def test_a_retailers_admin_works_on_its_own_vouchers_only(console):
    api = console.api
    foreign = _other_retailer(api)
    other_id = foreign["voucher"]["id"]
    admin = demo_staff(api, "admin")
    assert console.sign_in_staff(admin["id"], admin["pin"]).status_code == 303
    listing = console.get("/console/vouchers")
    assert listing.status_code == 200 and "Ajena" not in listing.text and "Café gratis" in listing.text
    assert console.get(f"/console/vouchers?retailer={foreign['retailer']['id']}").status_code == 403
    for path in ("", "/edit", "/revoke"):
        refused = console.get(f"/console/vouchers/{other_id}{path}")
        assert refused.status_code == 403 and "not_yours" in refused.text
    for path, body in (("/edit", {"title_es": "Mía"}), ("/publish", {}), ("/unpublish", {}),
                       ("/revoke", {"confirm": "1"}), ("/codes", {"code": "ROBO01"})):
        refused = unchanged(api, lambda: console.post(f"/console/vouchers/{other_id}{path}", body,
                                                      token_from="/console/vouchers"))
        assert refused.status_code == 403 and "not_yours" in refused.text
    made = unchanged(api, lambda: console.post("/console/vouchers/new",
                                               _form(api, retailer_id=foreign["retailer"]["id"])))
    assert made.status_code == 403
    mine = _made(console.post("/console/vouchers/new", _form(api)))
    assert _audit(api, "voucher.create")[-1][:2] == ("staff", mine)


def test_a_manager_and_the_signed_out_cannot_reach_vouchers(console_api):
    api = console_api
    voucher_id = api.demo_voucher("personal")["id"]
    client = ConsoleClient(api)
    for path in ("/console/vouchers", "/console/vouchers/new", f"/console/vouchers/{voucher_id}"):
        answer = client.get(path)
        assert answer.status_code == 303 and answer.headers["location"].startswith("/console/sign-in")
    posted = unchanged(api, lambda: client.http.post(f"/console/vouchers/{voucher_id}/revoke", data={"confirm": "1"}))
    assert posted.status_code == 303
    manager = demo_staff(api, "manager")
    assert client.sign_in_staff(manager["id"], manager["pin"]).status_code == 303
    for path in ("/console/vouchers", f"/console/vouchers/{voucher_id}", f"/console/vouchers/{voucher_id}/edit"):
        assert client.get(path).status_code == 403
    refused = unchanged(api, lambda: client.post(f"/console/vouchers/{voucher_id}/revoke", {"confirm": "1"},
                                                 token_from="/console/"))
    assert refused.status_code == 403
    client.close()


# --- in a browser -------------------------------------------------------------------------------------------

def test_the_operators_path_in_a_browser(browser_page, live_console):
    """Retailer → store → a printed voucher with Spanish and Guaraní texts → published → a printed code."""
    url, api = live_console
    page = browser_page
    SHOTS.mkdir(parents=True, exist_ok=True)
    sign_in_operator_in(page, url, api.admin_token)
    page.goto(f"{url}/console/retailers")
    page.fill("#new-retailer [name=name]", "Despensa Ñemby")
    page.click("#new-retailer button[type=submit]")
    page.wait_for_url("**/console/retailers/ret_*")
    retailer_id = page.url.split("/")[-1].split("?")[0]
    page.click("a[href$='#new-store']")  # "Add a store"
    page.wait_for_url("**/console/stores?retailer=*")
    page.fill("#new-store [name=name]", "Despensa Centro")
    page.select_option("#new-store [name=timezone]", "America/Asuncion")
    page.click("#new-store button[type=submit]")
    page.wait_for_url("**ok=created")
    assert "Despensa Centro" in page.inner_text("main")
    page.goto(f"{url}/console/vouchers/new?retailer={retailer_id}")
    page.select_option("[name=kind]", "printed")
    page.fill("[name=title_es]", "Media docena de chipa")
    page.fill("[name=terms_es]", "Con el librito de diciembre.")
    page.fill("[name=title_gn]", "Chipa mbytere")
    page.select_option("[name=discount_kind]", "amount")
    page.fill("[name=discount_value]", "5000")
    page.fill("[name=valid_from]", "2026-12-01")
    page.fill("[name=valid_until]", "2026-12-31")
    page.fill("[name=total_limit]", "300")
    page.fill("[name=store_day_limit]", "30")
    page.set_viewport_size(PHONE)
    page.screenshot(path=str(SHOTS / "new-390.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.screenshot(path=str(SHOTS / "new-1280.png"), full_page=True)
    page.click("#voucher-form button[type=submit]")
    page.wait_for_url("**/console/vouchers/vch_*?ok=created")
    voucher_id = page.url.split("/")[-1].split("?")[0]
    assert page.get_attribute("#voucher-status", "data-status") == "new"
    page.click("#publish")
    page.wait_for_url("**ok=published")
    assert page.get_attribute("#voucher-status", "data-status") == "published"
    page.fill("#new-code [name=code]", "CHIPA6")
    page.click("#new-code button[type=submit]")
    page.wait_for_url("**ok=created*")
    assert "CHIPA6" in page.inner_text("#printed-codes")
    for width in (390, 1280):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(SHOTS / f"voucher-{width}.png"), full_page=True)
    voucher = api.backend.get_voucher(voucher_id)
    assert voucher["retailer_id"] == retailer_id and voucher["status"] == "published"
    assert voucher["texts"]["gn"]["title"] == "Chipa mbytere" and voucher["discount"]["value"] == 5000
    assert voucher["valid_until"] == _midnight("2027-01-01")
    assert [c["code"] for c in api.backend.list_printed_codes(voucher_id)] == ["CHIPA6"]
    for path, name in (("/console/vouchers", "list"), (f"/console/vouchers/{voucher_id}/edit", "edit"),
                       (f"/console/vouchers/{voucher_id}/revoke", "revoke"), ("/console/retailers", "retailers"),
                       (f"/console/retailers/{retailer_id}", "retailer"), ("/console/stores", "stores")):
        page.goto(url + path)
        for width in (390, 1280):
            page.set_viewport_size({"width": width, "height": 900})
            page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)


def test_the_edit_operation_holds_its_rules_whoever_calls_it(api):
    """The page offers no discount field once published; the operation refuses one all the same, and any
    change to a revoked voucher, and limits on a personal voucher (on SQLite and PostgreSQL)."""
    from server_stub.errors import Conflict, Invalid

    console_api = api
    backend = api.backend
    voucher = api.voucher("personal")
    with pytest.raises(Conflict):
        backend.edit_voucher(voucher["id"], {"discount": {"kind": "percent", "value": 50}})
    with pytest.raises(Invalid):
        backend.edit_voucher(voucher["id"], {"total_limit": 5})
    with pytest.raises(Invalid):
        backend.edit_voucher(voucher["id"], {"valid_from": 1_800_000_000, "valid_until": 1_700_000_000})
    with pytest.raises(Invalid):
        backend.edit_voucher(voucher["id"], {"kind": "printed"})
    assert backend.edit_voucher(voucher["id"], {"claim_ttl_s": 3600})["status"] == "published"
    backend.change_voucher(voucher["id"], "revoke")
    with pytest.raises(Conflict):
        backend.edit_voucher(voucher["id"], {"texts": {"es": {"title": "Otra vez"}}})
    draft = console_api.voucher("printed", publish=False)
    assert backend.edit_voucher(draft["id"], {"discount": {"kind": "amount", "value": 7000}})["discount"]["value"] == 7000
    assert backend.voucher_extras(draft["id"], uses=True)["uses"] == 0
    assert backend.voucher_extras(api.demo_voucher("printed")["id"])["uses"] is None  # not asked, not counted
    assert backend.voucher_extras(api.demo_voucher("printed")["id"], uses=True)["today"] == {api.store_id: 0}
    seen = {r["id"]: r for r in backend.retailers_overview()}[api.retailer_id]
    assert seen["stores"] == 1 and seen["vouchers"] >= 4 and backend.get_retailer(api.retailer_id)["offline_days"] == 7


@pytest.mark.parametrize("language", ["es", "gn", "en", "pt"])
def test_every_page_of_the_chain_and_its_vouchers_opens_in_each_language(console, language):
    api = console.api
    console.sign_in_operator()
    assert console.post("/console/language", {"language": language}, token_from="/console/").status_code == 303
    printed, personal = api.demo_voucher("printed")["id"], api.demo_voucher("personal")["id"]
    for path in ("/console/retailers", f"/console/retailers/{api.retailer_id}", "/console/stores", "/console/vouchers",
                 "/console/vouchers/new", f"/console/vouchers/{printed}", f"/console/vouchers/{personal}",
                 f"/console/vouchers/{printed}/edit", f"/console/vouchers/{personal}/edit",
                 f"/console/vouchers/{personal}/revoke"):
        page = console.get(path)
        assert page.status_code == 200 and f'<html lang="{language}">' in page.text, path
