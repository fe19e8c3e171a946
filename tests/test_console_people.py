"""The staff pages and the audit log: members listed, added, changed, disabled and enabled, given a new PIN
(never shown back), by the operator and a retailer's admin only, each change in the audit log; the log read
with its filters, its dates as dates, each retailer's own."""

from __future__ import annotations


import pytest

from console_fixtures import (HOSTILE_TEXTS, PHONE, SHOTS_ROOT, ConsoleClient, assert_escaped, demo_staff, post_raw,
                              sign_in_operator_in, unchanged)
from console_people_helpers import ADMIN_PIN, other_chain, second_store, signed_in

pytestmark = pytest.mark.slow
SHOTS = SHOTS_ROOT / "people"


def _new(api, **changes) -> dict:
    return {"retailer_id": api.retailer_id, "name": "Diego Rojas", "role": "cashier", "store_id": api.store_id,
            "pin": "5678", "pin_again": "5678", **changes}


def _member(api, name: str):
    rows = api.rows("SELECT id, role, store_id, disabled_at FROM staff WHERE name = ?", (name,))
    return rows[0] if rows else None


def test_the_operator_adds_and_manages_a_member_in_a_browser(live_console, browser_page):
    url, api = live_console
    page = browser_page
    sign_in_operator_in(page, url, api.admin_token)
    page.click("nav a[href='/console/staff']")
    page.click("#add-staff")
    page.select_option("#new-staff [name=retailer_id]", api.retailer_id)
    page.fill("#new-staff [name=name]", "Elena Núñez")
    page.select_option("#new-staff [name=role]", "manager")
    page.select_option("#new-staff [name=store_id]", api.store_id)
    page.fill("#new-staff [name=pin]", "2468")  # too short for a manager: said beside the field
    page.fill("#new-staff [name=pin_again]", "2468")
    page.click("#new-staff button[type=submit]")
    assert page.locator("#pin-error").count() == 1 and page.input_value("#new-staff [name=pin]") == ""
    assert page.input_value("#new-staff [name=name]") == "Elena Núñez"
    page.fill("#new-staff [name=pin]", "246813")
    page.fill("#new-staff [name=pin_again]", "246813")
    page.click("#new-staff button[type=submit]")
    staff_id = page.inner_text("#staff-id").strip()
    assert "246813" not in page.content() and "246813" not in page.url
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "member-1280.png"), full_page=True)
    page.set_viewport_size(PHONE)
    page.screenshot(path=str(SHOTS / "member-390.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})

    page.select_option("#change-staff [name=role]", "admin")
    page.select_option("#change-staff [name=store_id]", "")
    page.click("#change-staff button[type=submit]")
    assert page.locator(".notice.good").count() == 1
    page.fill("#staff-pin [name=pin]", "13579135")
    page.fill("#staff-pin [name=pin_again]", "13579135")
    page.click("#staff-pin button[type=submit]")
    page.click("#disable-staff button[type=submit]")
    assert page.locator("h1 .tag.bad").count() == 1
    page.click("#enable-staff button[type=submit]")
    assert _member(api, "Elena Núñez")[1:] == ("admin", None, None)
    actions = [a for (a,) in api.rows("SELECT action FROM audit_log WHERE target = ? ORDER BY id", (staff_id,))]
    assert actions == ["staff.create", "staff.change", "staff.set_pin", "staff.disable", "staff.enable"]
    assert ConsoleClient(api).sign_in_staff(staff_id, "13579135").status_code == 303  # the new PIN works

    page.goto(f"{url}/console/staff")
    assert page.locator("#staff tr", has_text="Elena Núñez").count() == 1
    page.screenshot(path=str(SHOTS / "list-1280.png"), full_page=True)
    page.set_viewport_size(PHONE)
    page.screenshot(path=str(SHOTS / "list-390.png"), full_page=True)
    page.goto(f"{url}/console/staff/new")
    page.screenshot(path=str(SHOTS / "new-390.png"), full_page=True)

    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{url}/console/audit")
    page.fill("#audit-filters [name=target]", staff_id)
    page.click("#audit-filters button[type=submit]")
    held = api.rows("SELECT count(*) FROM audit_log WHERE target = ?", (staff_id,))[0][0]  # and the sign-in
    assert page.locator("#audit tbody tr").count() == held == 6
    page.screenshot(path=str(SHOTS / "audit-1280.png"), full_page=True)
    page.set_viewport_size(PHONE)
    page.screenshot(path=str(SHOTS / "audit-390.png"), full_page=True)


def test_the_list_shows_disabled_members_and_filters_by_store(console):
    api = console.api
    two = second_store(api)
    cashier = demo_staff(api, "cashier")
    api.backend.disable_staff(cashier["id"])
    console.sign_in_operator()
    everyone = console.get("/console/staff").text
    assert cashier["name"] in everyone and "Marta Dos" in everyone and 'class="disabled"' in everyone
    theirs = console.get(f"/console/staff?store={two['store']['id']}").text
    assert "Marta Dos" in theirs and cashier["name"] not in theirs


@pytest.mark.parametrize("name", sorted(HOSTILE_TEXTS))
def test_a_hostile_name_is_refused_on_adding_and_changing(console, name):
    api = console.api
    console.sign_in_operator()
    text = HOSTILE_TEXTS[name]
    added = unchanged(api, lambda: console.post("/console/staff/new", _new(api, name=text)))
    assert added.status_code == 400 and 'id="name-error"' in added.text, name
    assert_escaped(added)
    assert "5678" not in added.text  # the PIN is never shown back
    member = demo_staff(api, "cashier")
    changed = unchanged(api, lambda: console.post(f"/console/staff/{member['id']}",
                                                  {"name": text, "role": "cashier", "store_id": api.store_id}))
    assert changed.status_code == 400 and 'id="name-error"' in changed.text, name
    assert_escaped(changed)


@pytest.mark.parametrize("changes, field", [
    ({"pin": "12a4", "pin_again": "12a4"}, "pin"), ({"pin": "123", "pin_again": "123"}, "pin"),
    ({"pin": "1" * 13, "pin_again": "1" * 13}, "pin"), ({"pin": "", "pin_again": ""}, "pin"),
    ({"pin": "5678", "pin_again": "5679"}, "pin_again"), ({"pin": "١٢٣٤", "pin_again": "١٢٣٤"}, "pin"),
    ({"role": "manager"}, "pin"),  # four digits for a manager
    ({"role": "owner"}, "role"), ({"role": ""}, "role"), ({"store_id": "sto_nope"}, "store_id"),
    ({"store_id": "<script>"}, "store_id"), ({"retailer_id": "ret_nope"}, "retailer_id"),
])
def test_a_wrong_field_is_said_beside_it_and_nothing_is_added(console, changes, field):
    api = console.api
    console.sign_in_operator()
    refused = unchanged(api, lambda: console.post("/console/staff/new", _new(api, **changes)))
    assert refused.status_code == 400 and f'id="{field}-error"' in refused.text, refused.text[-1500:]
    for pin in {changes.get("pin"), "5678"} - {None, ""}:
        assert f'value="{pin}"' not in refused.text
    assert_escaped(refused)


def test_a_store_of_another_retailer_is_refused(console):
    api = console.api
    other = other_chain(api)
    console.sign_in_operator()
    refused = unchanged(api, lambda: console.post("/console/staff/new", _new(api, store_id=other["store"]["id"])))
    assert refused.status_code == 400 and 'id="store_id-error"' in refused.text


def test_a_new_pin_is_checked_by_the_member_s_role(console):
    api = console.api
    console.sign_in_operator()
    manager = demo_staff(api, "manager")
    path = f"/console/staff/{manager['id']}/pin"
    short = unchanged(api, lambda: console.post(path, {"pin": "1234", "pin_again": "1234"},
                                                token_from=f"/console/staff/{manager['id']}"))
    assert short.status_code == 400 and 'id="pin-error"' in short.text and "1234" not in short.text
    done = console.post(path, {"pin": "918273", "pin_again": "918273"}, token_from=f"/console/staff/{manager['id']}")
    assert done.status_code == 303 and "918273" not in done.headers["location"]
    assert ConsoleClient(api).sign_in_staff(manager["id"], manager["pin"]).status_code == 401
    assert ConsoleClient(api).sign_in_staff(manager["id"], "918273").status_code == 303


def test_bytes_that_are_no_utf8_are_refused(console):
    api = console.api
    console.sign_in_operator()
    refused = unchanged(api, lambda: post_raw(console, "/console/staff/new", b"name=%ff%fe&role=cashier"))
    assert refused.status_code == 400


def test_forms_need_their_token_once(console):
    api = console.api
    console.sign_in_operator()
    missing = unchanged(api, lambda: console.http.post("/console/staff/new", data=_new(api)))
    assert missing.status_code == 400 and "csrf_missing" in missing.text
    token = console.token("/console/staff/new")
    assert console.post("/console/staff/new", _new(api, name="Una Vez"), token=token).status_code == 303
    replayed = console.post("/console/staff/new", _new(api, name="Dos Veces"), token=token)
    assert replayed.status_code == 400 and "csrf_replayed" in replayed.text
    assert _member(api, "Una Vez") is not None and _member(api, "Dos Veces") is None
    member = demo_staff(api, "cashier")
    token = console.token(f"/console/staff/{member['id']}")
    assert console.post(f"/console/staff/{member['id']}/disable", {}, token=token).status_code == 303
    again = unchanged(api, lambda: console.post(f"/console/staff/{member['id']}/enable", {}, token=token))
    assert again.status_code == 400 and "csrf_replayed" in again.text


def test_an_admin_manages_their_own_retailer_only(console):
    api = console.api
    other = other_chain(api)
    admin = demo_staff(api, "admin")
    client = signed_in(api, admin["id"], admin["pin"])
    listing = client.get("/console/staff").text
    assert demo_staff(api, "cashier")["name"] in listing and "Olga Admin" not in listing
    theirs = other["manager"]["id"]
    assert client.get(f"/console/staff/{theirs}").status_code == 403 and "not_yours" in client.last.text
    for action, data in (("", {"name": "Mío", "role": "cashier", "store_id": ""}), ("/disable", {}),
                         ("/enable", {}), ("/pin", {"pin": "111111", "pin_again": "111111"})):
        refused = unchanged(api, lambda: client.post(f"/console/staff/{theirs}{action}", data,
                                                     token_from="/console/staff"))
        assert refused.status_code == 403 and "not_yours" in refused.text, action
    # Adding names no retailer: it is the admin's own, and another's store is no option.
    refused = unchanged(api, lambda: client.post("/console/staff/new", _new(api, store_id=other["store"]["id"])))
    assert refused.status_code == 400
    assert client.post("/console/staff/new", _new(api, retailer_id=other["retailer"]["id"], name="Nuevo Mío")
                       ).status_code == 303
    assert api.rows("SELECT retailer_id FROM staff WHERE name = 'Nuevo Mío'")[0][0] == api.retailer_id
    client.close()


def test_an_admin_cannot_disable_or_demote_themselves(console):
    api = console.api
    admin = demo_staff(api, "admin")
    client = signed_in(api, admin["id"], admin["pin"])
    page = client.get(f"/console/staff/{admin['id']}").text
    assert 'id="disable-staff"' not in page
    refused = unchanged(api, lambda: client.post(f"/console/staff/{admin['id']}/disable", {}))
    assert refused.status_code == 400 and "self_disable" in refused.text
    refused = unchanged(api, lambda: client.post(f"/console/staff/{admin['id']}",
                                                 {"name": admin["name"], "role": "cashier", "store_id": ""}))
    assert refused.status_code == 400 and 'id="role-error"' in refused.text
    client.close()


def test_a_manager_a_cashier_and_a_signed_out_request_get_no_staff_page(console):
    api = console.api
    member = demo_staff(api, "cashier")
    for path in ("/console/staff", f"/console/staff/{member['id']}", "/console/staff/new", "/console/audit"):
        response = console.get(path)
        assert response.status_code == 303 and response.headers["location"].startswith("/console/sign-in")
    posted = unchanged(api, lambda: console.http.post(f"/console/staff/{member['id']}/disable", data={}))
    assert posted.status_code == 303
    manager = demo_staff(api, "manager")
    client = signed_in(api, manager["id"], manager["pin"])
    for path in ("/console/staff", f"/console/staff/{member['id']}", "/console/audit"):
        assert client.get(path).status_code == 403, path
    refused = unchanged(api, lambda: client.http.post(f"/console/staff/{member['id']}/disable",
                                                      data={"csrf": client.token("/console/")}))
    assert refused.status_code == 403
    client.close()


# --- the audit log ---------------------------------------------------------------------------


def test_the_audit_log_filters_by_action_actor_target_and_dates(console):
    api = console.api
    console.sign_in_operator()
    member = demo_staff(api, "cashier")
    console.post(f"/console/staff/{member['id']}/disable", {}, token_from=f"/console/staff/{member['id']}")
    by_action = console.get("/console/audit?action=staff.disable")
    assert by_action.status_code == 200 and by_action.text.count("<tr data-id=") == 1
    assert member["id"] in by_action.text
    by_target = console.get(f"/console/audit?target={member['id']}")
    assert by_target.text.count("<tr data-id=") == 2  # created (by the demo), disabled (here)
    by_actor = console.get("/console/audit?actor=OPERATOR")  # the token's name, any case
    assert by_actor.text.count("<tr data-id=") >= 1 and "staff.disable" in by_actor.text
    assert console.get("/console/audit?actor=100%25").text.count("<tr data-id=") == 0  # % is a character
    today = console.get("/console/audit?from=2000-01-01&to=2100-12-31")
    assert today.status_code == 200 and today.text.count("<tr data-id=") > 5
    none = console.get("/console/audit?from=2000-01-01&to=2000-01-02")
    assert 'id="audit-empty"' in none.text


@pytest.mark.parametrize("query, field", [("from=2026-13-01", "from"), ("to=yesterday", "to"),
                                          ("from=2026-02-30", "from"), ("from=1999-12-31", "from"),
                                          ("from=2026-05-02&to=2026-05-01", "to"), ("action=nope", "action"),
                                          ("before=abc", "before"), ("retailer=ret_nope", "retailer"),
                                          ("actor=" + "x" * 200, "actor"), ("target=a%00b", "target")])
def test_a_wrong_filter_is_a_message_beside_it(console, query, field):
    console.sign_in_operator()
    page = console.get(f"/console/audit?{query}")
    assert page.status_code == 400 and f'id="{field}-error"' in page.text and "<tr data-id=" not in page.text


def test_the_audit_log_pages_back_and_escapes_what_it_shows(console):
    api = console.api
    hostile = api.backend.create_retailer(HOSTILE_TEXTS["script"])  # a name made before the console refused it
    api.backend.create_store(hostile["id"], HOSTILE_TEXTS["attribute"])
    for i in range(60):
        api.backend.create_store(api.retailer_id, f"Sucursal {i}")
    console.sign_in_operator()
    first = console.get("/console/audit?action=store.create")
    assert_escaped(first)
    assert first.text.count("<tr data-id=") == 50 and 'id="audit-older"' in first.text
    older = first.text[first.text.find('id="audit-older" href="') + 23:]
    older = older[:older.find('"')].replace("&amp;", "&")
    second = console.get(older)
    assert second.status_code == 200 and second.text.count("<tr data-id=") == 62 - 50
    assert_escaped(console.get("/console/audit?actor=%3Cscript%3Ealert(1)%3C/script%3E"))


def test_an_admin_reads_their_own_retailer_s_log_only(console):
    api = console.api
    other = other_chain(api)
    admin = demo_staff(api, "admin")
    client = signed_in(api, admin["id"], admin["pin"])
    page = client.get("/console/audit")
    assert page.status_code == 200 and other["retailer"]["id"] not in page.text and "Otra Sucursal" not in page.text
    assert client.get(f"/console/audit?retailer={other['retailer']['id']}").text.count("<tr data-id=") > 0  # ignored
    theirs = signed_in(api, other["admin"]["id"], ADMIN_PIN)
    page = theirs.get("/console/audit")
    assert api.retailer_id not in page.text and "Otra Sucursal" in page.text
    client.close()
    theirs.close()


@pytest.mark.parametrize("name", sorted(HOSTILE_TEXTS))
def test_a_hostile_pin_or_filter_is_a_message_and_escaped(console, name):
    api = console.api
    console.sign_in_operator()
    text = HOSTILE_TEXTS[name]
    member = demo_staff(api, "cashier")
    refused = unchanged(api, lambda: console.post(f"/console/staff/{member['id']}/pin", {"pin": text, "pin_again": text},
                                                  token_from=f"/console/staff/{member['id']}"))
    assert refused.status_code == 400 and 'id="pin-error"' in refused.text, name
    assert_escaped(refused)
    for field in ("actor", "target"):
        page = unchanged(api, lambda: console.get("/console/audit", params={field: text}))
        assert page.status_code in (200, 400), name
        assert_escaped(page)
        if name in ("oversize", "bidi", "nul", "private_use"):
            assert page.status_code == 400 and f'id="{field}-error"' in page.text, (name, field)
