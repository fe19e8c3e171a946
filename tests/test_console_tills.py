"""The tills pages: the list with what each till last told us, enrollment codes as text and a QR a till
takes, a till's page (rename, roll, revoke), and who may do which (a manager: their own store's only)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from console_fixtures import (HOSTILE_TEXTS, PHONE, SHOTS_ROOT, ConsoleClient, assert_escaped, demo_staff,
                              sign_in_operator_in, unchanged)
from console_people_helpers import MANAGER_PIN, decode_png, other_chain, second_store, signed_in
from pos_app.core import codes

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
SHOTS = SHOTS_ROOT / "tills"


def _codes(api) -> int:
    return api.rows("SELECT count(*) FROM enrollment_codes")[0][0]


@pytest.mark.allow_log_warnings(r"enrollment refused")
def test_an_enrollment_code_read_from_its_qr_enrolls_a_real_till(live_console, browser_page, tmp_path):
    url, api = live_console
    page = browser_page
    sign_in_operator_in(page, url, api.admin_token)
    page.click("nav a[href='/console/tills']")
    page.select_option("#new-code [name=store_id]", api.store_id)
    page.click("#new-code button[type=submit]")
    shown = page.inner_text("#enrollment-code").strip()
    assert codes.parse_short_code(shown)  # grouped, as people read it, and a valid code
    read = decode_png(page.locator("#enrollment-qr").screenshot())
    assert read == [codes.parse_short_code(shown)]  # the canonical code alone: what `enroll --code` takes
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "code-1280.png"), full_page=True)
    page.set_viewport_size(PHONE)
    page.screenshot(path=str(SHOTS / "code-390.png"), full_page=True)
    assert decode_png(page.locator("#enrollment-qr").screenshot()) == read  # as a phone shows it too
    command = page.inner_text("#enroll-command")
    assert f"--server {url}" in command and f"--code {read[0]}" in command

    till = tmp_path / "till"
    proc = subprocess.run([sys.executable, "-m", "pos_app", "enroll", "--data", str(till), "--server", url,
                           "--code", read[0], "--name", "Caja QR"], cwd=ROOT, capture_output=True, text=True,
                          timeout=90)
    assert proc.returncode == 0, proc.stderr
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{url}/console/tills")
    row = page.locator("#tills tr", has_text="Caja QR")
    assert row.count() == 1
    page.screenshot(path=str(SHOTS / "list-1280.png"), full_page=True)
    page.set_viewport_size(PHONE)
    page.screenshot(path=str(SHOTS / "list-390.png"), full_page=True)
    # The code was used: the same code again enrolls nothing.
    again = api.client.post("/devices/enroll", json={"code": read[0], "name": "Otra"})
    assert again.status_code == 403


def test_a_till_s_page_renames_rolls_and_revokes_it(live_console, browser_page):
    url, api = live_console
    till = api.enroll("Caja 7")
    page = browser_page
    sign_in_operator_in(page, url, api.admin_token)
    page.goto(f"{url}/console/tills/{till.id}")
    page.fill("#rename-till [name=name]", "Caja Siete")
    page.click("#rename-till button[type=submit]")
    assert page.locator("h1", has_text="Caja Siete").count() == 1
    page.click("#roll-till button[type=submit]")  # not confirmed: said, nothing done
    assert page.locator("#roll-till .field-error").count() == 1
    assert api.rows("SELECT rolled_at FROM devices WHERE id = ?", (till.id,))[0][0] is None
    page.check("#roll-till [name=confirm]")
    page.click("#roll-till button[type=submit]")
    code = decode_png(page.locator("#enrollment-qr").screenshot())[0]
    assert "--again" in page.inner_text("#enroll-command")
    assert api.client.get("/catalog", headers=till.auth).json()["error"]["code"] == "device_rolled"
    body = api.ok(api.client.post("/devices/enroll", json={"code": code, "name": "x"}), 201)
    assert body["device_id"] == till.id  # the same till, a new token
    page.goto(f"{url}/console/tills/{till.id}")
    page.fill("#revoke-till [name=reason]", "robada")
    page.check("#revoke-till [name=confirm]")
    page.click("#revoke-till button[type=submit]")
    assert page.locator(".notice.good").count() == 1
    assert api.rows("SELECT revoked_at IS NOT NULL FROM devices WHERE id = ?", (till.id,))[0][0]
    assert api.rows("SELECT action FROM audit_log WHERE target = ? ORDER BY id", (till.id,)) == [
        ("device.rename",), ("device.roll",), ("device.revoke",)]
    page.screenshot(path=str(SHOTS / "till-1280.png"), full_page=True)
    page.set_viewport_size(PHONE)
    page.screenshot(path=str(SHOTS / "till-390.png"), full_page=True)


def test_the_list_shows_what_each_till_last_told_us(console):
    api = console.api
    till = api.enroll("Caja Informe")
    oldest = time.time() - 7200
    api.ok(api.client.post("/sync", headers={**till.auth, "User-Agent": "pika-till/9.8.7"},
                           json={"entries": [], "till": {"outbox": 4, "outbox_oldest_at": oldest}}))
    console.sign_in_operator()
    page = console.get("/console/tills")
    assert page.status_code == 200
    row = page.text[page.text.find(f'data-id="{till.id}"'):]
    row = row[:row.find("</tr>")]
    assert "9.8.7" in row and ">4<" in row.replace(" ", "") or "4<br>" in row
    assert "2 hours" in row or "2 horas" in row  # the outbox's oldest entry, in words
    assert "Activ" in row  # status active (Activo / Active)


def test_a_manager_sees_and_enrolls_only_their_own_store(console):
    api = console.api
    two = second_store(api)
    mine = api.enroll("Caja Mía")
    theirs_code = api.backend.create_enrollment_code(two["store"]["id"])["code"]
    theirs = api.backend.enroll(theirs_code, "Caja Ajena")
    manager = demo_staff(api, "manager")
    client = signed_in(api, manager["id"], manager["pin"])
    listing = client.get("/console/tills")
    assert "Caja Mía" in listing.text and "Caja Ajena" not in listing.text
    assert client.get(f"/console/tills/{theirs['device_id']}").status_code == 403
    assert "not_yours" in client.last.text
    assert client.get(f"/console/tills?store={two['store']['id']}").status_code == 403
    before = _codes(api)
    refused = unchanged(api, lambda: client.post("/console/tills/codes", {"store_id": two["store"]["id"],
                                                                         "ttl_s": "3600"}, token_from="/console/tills"))
    assert refused.status_code == 403 and "not_yours" in refused.text
    renamed = unchanged(api, lambda: client.post(f"/console/tills/{theirs['device_id']}/name", {"name": "X"},
                                                 token_from="/console/tills"))
    assert renamed.status_code == 403
    made = client.post("/console/tills/codes", {"store_id": api.store_id, "ttl_s": "3600"},
                       token_from="/console/tills")
    assert made.status_code == 200 and 'id="enrollment-qr"' in made.text and _codes(api) == before + 1
    # Revoke and roll are the admin's: refused for the manager even on their own store's till.
    assert 'id="revoke-till"' not in client.get(f"/console/tills/{mine.id}").text
    for action, data in (("revoke", {"reason": "x", "confirm": "1"}), ("roll", {"confirm": "1"})):
        refused = unchanged(api, lambda: client.post(f"/console/tills/{mine.id}/{action}", data,
                                                     token_from=f"/console/tills/{mine.id}"))
        assert refused.status_code == 403, action
    assert client.post(f"/console/tills/{mine.id}/name", {"name": "Caja Nueva"}).status_code == 303
    client.close()


def test_another_retailer_s_admin_reaches_none_of_these_tills(console):
    api = console.api
    other = other_chain(api)
    till = api.enroll("Caja Demo")
    client = signed_in(api, other["admin"]["id"], "739205")
    assert till.id not in client.get("/console/tills").text
    for path in (f"/console/tills/{till.id}", f"/console/tills?store={api.store_id}"):
        assert client.get(path).status_code == 403
    for action, data in (("revoke", {"reason": "x", "confirm": "1"}), ("roll", {"confirm": "1"}),
                         ("name", {"name": "Mía"})):
        refused = unchanged(api, lambda: client.post(f"/console/tills/{till.id}/{action}", data,
                                                     token_from="/console/tills"))
        assert refused.status_code == 403 and "not_yours" in refused.text, action
    refused = unchanged(api, lambda: client.post("/console/tills/codes", {"store_id": api.store_id, "ttl_s": "3600"},
                                                 token_from="/console/tills"))
    assert refused.status_code == 403
    client.close()


@pytest.mark.parametrize("name", sorted(HOSTILE_TEXTS))
def test_a_hostile_till_name_or_reason_is_refused_and_nothing_changes(console, name):
    api = console.api
    till = api.enroll("Caja H")
    console.sign_in_operator()
    text = HOSTILE_TEXTS[name]
    renamed = unchanged(api, lambda: console.post(f"/console/tills/{till.id}/name", {"name": text}))
    assert renamed.status_code == 400 and 'class="field-error"' in renamed.text, name
    assert_escaped(renamed)
    revoked = unchanged(api, lambda: console.post(f"/console/tills/{till.id}/revoke",
                                                  {"reason": text, "confirm": "1"},
                                                  token_from=f"/console/tills/{till.id}"))
    assert revoked.status_code == 400 and 'class="field-error"' in revoked.text, name
    assert_escaped(revoked)


def test_wrong_types_and_bytes_are_messages_and_nothing_is_made(console):
    api = console.api
    console.sign_in_operator()
    for data in ({"store_id": api.store_id, "ttl_s": "forever"}, {"store_id": api.store_id, "ttl_s": "12abc"},
                 {"store_id": "", "ttl_s": "3600"}):
        refused = unchanged(api, lambda: console.post("/console/tills/codes", data, token_from="/console/tills"))
        assert refused.status_code == 400 and "field-error" in refused.text, data
    unknown = unchanged(api, lambda: console.post("/console/tills/codes", {"store_id": "sto_nope", "ttl_s": "3600"},
                                                  token_from="/console/tills"))
    assert unknown.status_code == 404
    token = console.token("/console/tills")  # bytes that are no UTF-8: refused whole
    raw = unchanged(api, lambda: console.http.post(
        "/console/tills/codes", content=b"csrf=" + token.encode() + b"&store_id=%ff%fe&ttl_s=3600",
        headers={"Content-Type": "application/x-www-form-urlencoded"}))
    assert raw.status_code == 400
    assert console.get("/console/tills/dev_nope").status_code == 404


def test_forms_need_their_token_once_and_a_replay_makes_no_second_code(console):
    api = console.api
    console.sign_in_operator()
    before = _codes(api)
    missing = unchanged(api, lambda: console.http.post("/console/tills/codes",
                                                       data={"store_id": api.store_id, "ttl_s": "3600"}))
    assert missing.status_code == 400 and "csrf_missing" in missing.text
    token = console.token("/console/tills")
    first = console.post("/console/tills/codes", {"store_id": api.store_id, "ttl_s": "3600"}, token=token)
    assert first.status_code == 200
    replayed = console.post("/console/tills/codes", {"store_id": api.store_id, "ttl_s": "3600"}, token=token)
    assert replayed.status_code == 400 and "csrf_replayed" in replayed.text
    assert _codes(api) == before + 1


def test_signed_out_and_a_cashier_get_no_tills_page(console):
    api = console.api
    till = api.enroll("Caja S")
    for path in ("/console/tills", f"/console/tills/{till.id}"):
        response = console.get(path)
        assert response.status_code == 303 and response.headers["location"].startswith("/console/sign-in")
    posted = unchanged(api, lambda: console.http.post(f"/console/tills/{till.id}/revoke",
                                                      data={"reason": "x", "confirm": "1"}))
    assert posted.status_code == 303
    cashier = demo_staff(api, "cashier")
    assert ConsoleClient(api).sign_in_staff(cashier["id"], cashier["pin"]).status_code == 403


def test_a_manager_of_another_chain_cannot_open_this_one_s_tills(console):
    api = console.api
    other = other_chain(api)
    till = api.enroll("Caja Z")
    client = signed_in(api, other["manager"]["id"], MANAGER_PIN)
    assert client.get(f"/console/tills/{till.id}").status_code == 403
    assert till.id not in client.get("/console/tills").text
    client.close()


@pytest.mark.parametrize("name", sorted(HOSTILE_TEXTS))
def test_a_hostile_store_for_a_code_is_refused_and_nothing_is_made(console, name):
    api = console.api
    console.sign_in_operator()
    refused = unchanged(api, lambda: console.post("/console/tills/codes", {"store_id": HOSTILE_TEXTS[name],
                                                                            "ttl_s": "3600"},
                                                  token_from="/console/tills"))
    assert refused.status_code in (400, 404), name
    assert_escaped(refused)
