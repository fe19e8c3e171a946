"""The console's retailers and stores pages: who may open them, what they make, and every bad input refused."""

from __future__ import annotations

import pytest

from console_fixtures import HOSTILE_TEXTS, ConsoleClient, assert_escaped, demo_staff, post_raw, unchanged

pytestmark = pytest.mark.slow


def _audit(api, action: str) -> list[tuple]:
    return api.rows("SELECT actor_kind, target, detail FROM audit_log WHERE action = ? ORDER BY id", (action,))


def _as_admin(console) -> dict:
    admin = demo_staff(console.api, "admin")
    assert console.sign_in_staff(admin["id"], admin["pin"]).status_code == 303
    return admin


def test_the_operator_makes_a_retailer_and_sets_its_till_policy(console):
    api = console.api
    console.sign_in_operator()
    listing = console.get("/console/retailers")
    assert listing.status_code == 200 and "Café Pika" in listing.text
    made = console.post("/console/retailers", {"name": "Kiosco Ñandutí"})
    assert made.status_code == 303 and made.headers["location"].endswith("?ok=created")
    retailer_id = made.headers["location"].split("/")[3].split("?")[0]
    assert api.backend.get_retailer(retailer_id)["name"] == "Kiosco Ñandutí"
    assert _audit(api, "retailer.create")[-1][:2] == ("admin", retailer_id)
    page = console.get(made.headers["location"])
    assert page.status_code == 200 and "Kiosco Ñandutí" in page.text and 'role="status"' in page.text
    assert 'name="offline_days"' in page.text and 'value="7"' in page.text and "checked" in page.text
    saved = console.post(f"/console/retailers/{retailer_id}/settings", {"offline_days": "30"})
    assert saved.status_code == 303, saved.text[:2000]
    settings = api.backend.get_retailer(retailer_id)
    assert (settings["offline_days"], settings["staff_anywhere"]) == (30, False)  # the box left unticked: off
    assert _audit(api, "retailer.settings")[-1][1] == retailer_id
    again = console.post(f"/console/retailers/{retailer_id}/settings", {"offline_days": "90", "staff_anywhere": "1"})
    assert again.status_code == 303
    assert api.backend.get_retailer(retailer_id)["staff_anywhere"] is True
    assert 'value="90"' in console.get(f"/console/retailers/{retailer_id}").text


@pytest.mark.parametrize("case", sorted(HOSTILE_TEXTS))
def test_a_retailers_name_is_refused_when_hostile(console, case):
    console.sign_in_operator()
    refused = unchanged(console.api, lambda: console.post("/console/retailers", {"name": HOSTILE_TEXTS[case]}))
    assert refused.status_code == 400 and 'class="field-error" id="name-error"' in refused.text
    assert_escaped(refused)


@pytest.mark.parametrize("days", ["", "abc", "0", "91", "7.5", "-3", "٣"])
def test_offline_days_out_of_bounds_or_no_number_are_refused(console, days):
    api = console.api
    console.sign_in_operator()
    path = f"/console/retailers/{api.retailer_id}/settings"
    refused = unchanged(api, lambda: console.post(path, {"offline_days": days, "staff_anywhere": "1"}))
    assert refused.status_code == 400 and 'id="offline_days-error"' in refused.text
    assert f'value="{days}"' in refused.text  # what was typed, shown again beside its message


def test_forms_without_their_token_or_sent_twice_do_nothing(console):
    api = console.api
    console.sign_in_operator()
    missing = unchanged(api, lambda: console.http.post("/console/retailers", data={"name": "Sin token"}))
    assert missing.status_code == 400 and "csrf_missing" in missing.text
    token = console.token("/console/retailers")
    assert console.post("/console/retailers", {"name": "Una vez"}, token=token).status_code == 303
    replayed = unchanged(api, lambda: console.post("/console/retailers", {"name": "Una vez"}, token=token))
    assert replayed.status_code == 400 and "csrf_replayed" in replayed.text
    assert [r for r in api.backend.list_retailers() if r["name"] == "Una vez"].__len__() == 1
    token = console.token("/console/stores")
    body = {"retailer_id": api.retailer_id, "name": "Sucursal", "timezone": "America/Asuncion"}
    assert console.post("/console/stores", body, token=token).status_code == 303
    replayed = unchanged(api, lambda: console.post("/console/stores", body, token=token))
    assert replayed.status_code == 400 and "csrf_replayed" in replayed.text
    settings = f"/console/retailers/{api.retailer_id}/settings"
    missing = unchanged(api, lambda: console.http.post(settings, data={"offline_days": "3"}))
    assert missing.status_code == 400 and "csrf_missing" in missing.text


def test_a_bad_utf8_body_is_refused(console):
    console.sign_in_operator()
    refused = unchanged(console.api, lambda: post_raw(console, "/console/retailers", b"name=%ff%fe"))
    assert refused.status_code == 400


def test_the_operator_makes_stores_and_sees_them_by_retailer(console):
    api = console.api
    other = api.backend.create_retailer("Farmacia Guaraní")
    console.sign_in_operator()
    page = console.get("/console/stores")
    assert page.status_code == 200 and "Farmacia Guaraní" in page.text and "Café Pika — Asunción Centro" in page.text
    assert 'option value="America/Asuncion" selected' in page.text
    made = console.post("/console/stores", {"retailer_id": other["id"], "name": "Farmacia Centro",
                                            "timezone": "America/Sao_Paulo"})
    assert made.status_code == 303 and f"retailer={other['id']}" in made.headers["location"]
    store = next(s for s in api.backend.list_stores(other["id"]))
    assert (store["name"], store["timezone"]) == ("Farmacia Centro", "America/Sao_Paulo")
    assert _audit(api, "store.create")[-1][1] == store["id"]
    only = console.get(f"/console/stores?retailer={other['id']}")
    assert "Farmacia Centro" in only.text and "Café Pika — Asunción Centro" not in only.text
    assert f"/console/stores?retailer={other['id']}" in console.get(f"/console/retailers/{other['id']}").text
    assert console.get("/console/stores?retailer=ret_nosuch").status_code == 404


@pytest.mark.parametrize("case", sorted(HOSTILE_TEXTS))
def test_a_stores_name_is_refused_when_hostile(console, case):
    api = console.api
    console.sign_in_operator()
    body = {"retailer_id": api.retailer_id, "name": HOSTILE_TEXTS[case], "timezone": "America/Asuncion"}
    refused = unchanged(api, lambda: console.post("/console/stores", body))
    assert refused.status_code == 400 and 'id="name-error"' in refused.text
    assert_escaped(refused)


@pytest.mark.parametrize("field,value", [("timezone", "Mars/Olympus"), ("timezone", ""), ("timezone", "<script>"),
                                         ("retailer_id", ""), ("retailer_id", "x" * 70)])
def test_a_store_with_an_unknown_zone_or_no_retailer_is_refused(console, field, value):
    api = console.api
    console.sign_in_operator()
    body = {"retailer_id": api.retailer_id, "name": "Sucursal", "timezone": "UTC", field: value}
    refused = unchanged(api, lambda: console.post("/console/stores", body))
    assert refused.status_code == 400 and f'id="{field}-error"' in refused.text
    assert_escaped(refused)


def test_a_retailers_admin_sees_and_makes_only_its_own_stores(console):
    api = console.api
    other = api.backend.create_retailer("Farmacia Guaraní")
    api.backend.create_store(other["id"], "Farmacia Centro")
    _as_admin(console)
    page = console.get("/console/stores")
    assert page.status_code == 200 and "Café Pika — Asunción Centro" in page.text
    assert "Farmacia" not in page.text
    assert console.get(f"/console/stores?retailer={other['id']}").status_code == 403
    assert "not_yours" in console.last.text
    foreign = unchanged(api, lambda: console.post("/console/stores", {"retailer_id": other["id"], "name": "Intrusa",
                                                                      "timezone": "UTC"}))
    assert foreign.status_code == 403 and "not_yours" in foreign.text
    made = console.post("/console/stores", {"retailer_id": api.retailer_id, "name": "Sucursal San Lorenzo",
                                            "timezone": "America/Asuncion"})
    assert made.status_code == 303
    assert _audit(api, "store.create")[-1][0] == "staff"
    for path in ("/console/retailers", f"/console/retailers/{api.retailer_id}"):
        assert console.get(path).status_code == 403
    refused = unchanged(api, lambda: console.post(f"/console/retailers/{api.retailer_id}/settings",
                                                  {"offline_days": "3"}, token_from="/console/stores"))
    assert refused.status_code == 403


def test_a_manager_cannot_open_stores_or_retailers(console):
    api = console.api
    manager = demo_staff(api, "manager")
    assert console.sign_in_staff(manager["id"], manager["pin"]).status_code == 303
    for path in ("/console/stores", "/console/retailers", f"/console/retailers/{api.retailer_id}"):
        refused = console.get(path)
        assert refused.status_code == 403 and "forbidden" in refused.text
    refused = unchanged(api, lambda: console.post("/console/stores", {"retailer_id": api.retailer_id, "name": "X",
                                                                      "timezone": "UTC"}, token_from="/console/"))
    assert refused.status_code == 403


def test_signed_out_the_pages_lead_to_the_sign_in(console_api):
    client = ConsoleClient(console_api)
    for path in ("/console/retailers", "/console/stores", f"/console/retailers/{console_api.retailer_id}"):
        answer = client.get(path)
        assert answer.status_code == 303 and answer.headers["location"].startswith("/console/sign-in?next=")
    posted = unchanged(console_api, lambda: client.http.post("/console/retailers", data={"name": "Nadie"}))
    assert posted.status_code == 303 and posted.headers["location"].startswith("/console/sign-in")
    client.close()


def test_a_hostile_name_made_elsewhere_is_shown_escaped(console):
    api = console.api
    hostile = api.backend.create_retailer(HOSTILE_TEXTS["attribute"])
    api.backend.create_store(hostile["id"], HOSTILE_TEXTS["script"])
    console.sign_in_operator()
    for path in ("/console/retailers", "/console/stores", f"/console/retailers/{hostile['id']}"):
        page = console.get(path)
        assert page.status_code == 200
        assert_escaped(page)


@pytest.mark.parametrize("query", ["retailer=%3Cscript%3Ealert(1)%3C/script%3E", "retailer=" + "x" * 300,
                                   "status=%22%3E%3Cimg%20src=x%20onerror=alert(1)%3E", "retailer=ret_nosuch"])
def test_a_hostile_filter_in_the_address_is_a_page_not_markup(console, query):
    console.sign_in_operator()
    for path in ("/console/stores", "/console/vouchers", "/console/vouchers/new"):
        page = console.get(f"{path}?{query}")
        assert page.status_code in (200, 404)
        assert_escaped(page)
