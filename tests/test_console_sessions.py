"""The console's sign-in, sessions and form tokens: who gets in, for how long, and what a form may replay."""

from __future__ import annotations

import pytest

from console_fixtures import ConsoleClient, demo_staff, sign_in_operator_in, sign_in_staff_in
from server_stub.operations import console_sessions

pytestmark = pytest.mark.slow


def test_root_leads_to_the_console_and_the_console_to_its_sign_in(console):
    assert console.get("/").headers["location"] == "/console/"
    assert console.get("/console/").headers["location"].startswith("/console/sign-in")
    page = console.get("/console/sign-in")
    assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"


def test_the_operator_signs_in_with_the_admin_token_and_out_again(console):
    response = console.sign_in_operator()
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie  # plain http on loopback
    home = console.get("/console/")
    assert home.status_code == 200 and "/console/retailers" in home.text
    out = console.post("/console/sign-out", {}, token_from="/console/")
    assert out.status_code == 303
    assert console.get("/console/").headers["location"].startswith("/console/sign-in")
    assert console.api.rows("SELECT count(*) FROM console_sessions")[0][0] == 0
    actions = [r[0] for r in console.api.rows("SELECT action FROM audit_log WHERE action LIKE 'console.%' ORDER BY id")]
    assert actions == ["console.sign_in", "console.sign_out"]


def test_a_session_cookie_is_secure_under_https(console_api):
    client = ConsoleClient(console_api)
    client.http.base_url = "https://console.test"
    response = client.sign_in_operator()
    assert "Secure" in response.headers["set-cookie"]
    client.close()


def test_a_wrong_token_or_pin_is_a_page_saying_so_and_no_session(console):
    refused = console.post("/console/sign-in", {"how": "token", "token": "nope"}, token_from="/console/sign-in")
    assert refused.status_code == 401 and "unauthorized" in refused.text and "nope" not in refused.text
    manager = demo_staff(console.api, "manager")
    refused = console.sign_in_staff(manager["id"], "000000")
    assert refused.status_code == 401 and 'name="pin"' in refused.text and "000000" not in refused.text
    assert console.api.rows("SELECT count(*) FROM console_sessions")[0][0] == 0


def test_a_cashier_cannot_sign_in_to_the_console(console):
    cashier = demo_staff(console.api, "cashier")
    refused = console.sign_in_staff(cashier["id"], cashier["pin"])
    assert refused.status_code == 403 and "role_not_allowed" in refused.text


def test_five_wrong_pins_lock_the_member_out_of_the_console(console):
    manager = demo_staff(console.api, "manager")
    statuses = [console.sign_in_staff(manager["id"], "111111").status_code for _ in range(5)]
    assert statuses == [401, 401, 401, 401, 429]
    locked = console.sign_in_staff(manager["id"], manager["pin"])  # the right PIN, while locked
    assert locked.status_code == 429 and "too_many_attempts" in locked.text


def test_forms_need_their_token_once(console):
    console.sign_in_operator()
    missing = console.http.post("/console/language", data={"language": "en"})
    assert missing.status_code == 400 and "csrf_missing" in missing.text
    token = console.token("/console/")
    assert console.post("/console/language", {"language": "en"}, token=token).status_code == 303
    replayed = console.post("/console/language", {"language": "gn"}, token=token)
    assert replayed.status_code == 400 and "csrf_replayed" in replayed.text
    forged = console.post("/console/language", {"language": "gn"}, token="0" * 32 + "." + "0" * 32)
    assert forged.status_code == 400 and "csrf_invalid" in forged.text
    other = ConsoleClient(console.api)
    other.sign_in_operator()
    foreign = other.post("/console/language", {"language": "gn"}, token=console.token("/console/"))
    assert foreign.status_code == 400 and "csrf_invalid" in foreign.text
    other.close()
    assert console.api.rows("SELECT language FROM console_sessions ORDER BY created_at")[0][0] == "en"


def test_an_idle_or_old_session_ends(console):
    api = console.api
    console.sign_in_operator()
    now = api.backend.clock()
    api.backend.clock = lambda: now + console_sessions.IDLE_S["operator"] + 1
    expired = console.get("/console/")
    assert expired.status_code == 303 and "expired=1" in expired.headers["location"]
    assert "data-code=\"session_ended\"" in console.get(expired.headers["location"]).text
    assert api.rows("SELECT count(*) FROM console_sessions")[0][0] == 0


def test_a_member_disabled_while_signed_in_is_out_at_the_next_page(console):
    admin = demo_staff(console.api, "admin")
    assert console.sign_in_staff(admin["id"], admin["pin"]).status_code == 303
    assert console.get("/console/").status_code == 200
    console.api.backend.disable_staff(admin["id"])
    assert console.get("/console/").headers["location"].startswith("/console/sign-in")


def test_a_manager_cannot_open_the_operators_pages(console):
    manager = demo_staff(console.api, "manager")
    assert console.sign_in_staff(manager["id"], manager["pin"]).status_code == 303
    refused = console.get("/console/retailers")
    assert refused.status_code in (403, 404)


def test_a_browser_signs_in_and_sees_its_language(browser_page, live_console):
    url, api = live_console
    sign_in_operator_in(browser_page, url, api.admin_token)
    assert browser_page.locator("h1").inner_text().startswith(("Hola", "Hello"))
    browser_page.select_option("#language", "gn")
    browser_page.click("form[action='/console/language'] button")
    assert browser_page.locator("html").get_attribute("lang") == "gn"
    manager = demo_staff(api, "manager")
    browser_page.context.clear_cookies()
    sign_in_staff_in(browser_page, url, manager["id"], manager["pin"])
    browser_page.wait_for_url(f"{url}/console/")
    assert manager["name"] in browser_page.inner_text(".who")


def test_sessions_and_form_tokens_hold_on_both_engines_and_across_backends(api, tmp_path):
    """Over PostgreSQL too: a session made by one Backend is known to another (every worker, every host),
    a sign-out there ends it here, and a token used once here is refused there."""
    from server_stub.app import App
    from server_stub.backend import Backend

    here = ConsoleClient(api)
    here.sign_in_operator()
    token = here.token("/console/")
    other_backend = Backend(api.path)
    try:
        other_app = App(other_backend)
        there = ConsoleClient(api)
        import httpx

        there.http = httpx.Client(transport=httpx.WSGITransport(app=other_app), base_url="http://console.test",
                                  cookies=here.http.cookies)
        assert there.get("/console/").status_code == 200
        assert there.post("/console/language", {"language": "pt"}, token=token).status_code == 303
        assert here.post("/console/language", {"language": "gn"}, token=token).status_code == 400
        assert "csrf_replayed" in here.last.text
        assert there.post("/console/sign-out", {}, token_from="/console/").status_code == 303
        assert here.get("/console/").headers["location"].startswith("/console/sign-in")
        there.close()
    finally:
        other_backend.close()
        here.close()


@pytest.mark.parametrize("target", ["/console/\r\nSet-Cookie: pika_session=evil", "/console/\nX: y", "/console/ x",
                                    "/console/\x7f", "//evil.example/", "https://evil.example/console/"])
def test_where_to_go_after_signing_in_is_never_a_header_or_another_site(console, target):
    """A `next=` with a line break would add a header of the attacker's (a cookie: session fixation)."""
    response = console.post("/console/sign-in", {"how": "token", "token": console.api.admin_token, "next": target},
                            token_from="/console/sign-in")
    assert response.status_code == 303 and response.headers["location"] == "/console/"
    assert response.headers.get_list("set-cookie")[0].startswith("pika_session=")
    assert "evil" not in "".join(response.headers.get_list("set-cookie"))
    switched = console.post("/console/language", {"language": "en", "next": target}, token_from="/console/")
    assert switched.headers["location"] == "/console/"


def test_a_new_pin_ends_the_members_console_sessions(console):
    manager = demo_staff(console.api, "manager")
    assert console.sign_in_staff(manager["id"], manager["pin"]).status_code == 303
    assert console.get("/console/today").status_code == 200
    console.api.backend.set_staff_pin(manager["id"], "905172")  # the admin resets a PIN that leaked
    assert console.get("/console/today").headers["location"].startswith("/console/sign-in")
    assert console.sign_in_staff(manager["id"], manager["pin"]).status_code == 401
    assert console.sign_in_staff(manager["id"], "905172").status_code == 303


def test_a_disabled_members_id_is_not_told_apart_without_the_pin(console):
    manager = demo_staff(console.api, "manager")
    console.api.backend.disable_staff(manager["id"])
    assert console.sign_in_staff(manager["id"], "000000").status_code == 401  # as for any wrong PIN
    assert console.sign_in_staff(manager["id"], manager["pin"]).status_code == 403


@pytest.mark.allow_log_warnings("enrollment refused")  # a wrong code, as the guard counts it
def test_a_web_tills_shop_code_enrolls_no_till_program(console_api):
    from server_stub.errors import DomainError

    backend = console_api.backend
    made = backend.create_web_till(console_api.store_id, "Web 1")
    code = backend.web_till_shop_code(made["device_id"])["code"]
    with pytest.raises(DomainError):
        backend.enroll(code, "Caja robada")
    assert console_api.rows("SELECT count(*) FROM devices WHERE name = 'Caja robada'")[0][0] == 0
    assert backend.set_up_web_till(code, "127.0.0.1")  # still good for the shop's browser


def test_putting_a_web_till_in_this_browser_signs_the_manager_out_of_it(console):
    manager = demo_staff(console.api, "manager")
    assert console.sign_in_staff(manager["id"], manager["pin"]).status_code == 303
    made = console.post("/console/tills/web", {"store_id": console.api.store_id, "name": "Web 1", "how": "here"})
    assert made.status_code == 303 and "pika_webtill=" in "".join(made.headers.get_list("set-cookie"))
    assert console.get("/console/tills/web").headers["location"].startswith("/console/sign-in")
    assert console.api.rows("SELECT count(*) FROM console_sessions")[0][0] == 0
