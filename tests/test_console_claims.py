"""The test claims page: a claim for a published personal voucher, its QR read back through the till's
decoder and redeemed by a till, its short code, its revoke; who may, and every bad input."""

from __future__ import annotations


import pytest

from console_fixtures import (HOSTILE_TEXTS, PHONE, SHOTS_ROOT, assert_escaped, demo_staff, post_raw,
                              sign_in_operator_in, unchanged)
from console_people_helpers import ADMIN_PIN, decode_png, other_chain, signed_in
from pos_app.core import codes

pytestmark = pytest.mark.slow
SHOTS = SHOTS_ROOT / "claims"


def _claims(api) -> int:
    return api.rows("SELECT count(*) FROM claims")[0][0]


def test_a_test_claim_s_qr_decodes_to_a_token_a_till_redeems(live_console, browser_page):
    url, api = live_console
    page = browser_page
    sign_in_operator_in(page, url, api.admin_token)
    page.click("nav a[href='/console/claims']")
    voucher = api.demo_voucher("personal")["id"]
    page.select_option("#new-claim [name=voucher_id]", voucher)
    customer = page.input_value("#new-claim [name=customer_id]")
    assert customer.startswith("test-")
    page.click("#new-claim button[type=submit]")
    read = decode_png(page.locator("#claim-qr").screenshot())
    assert len(read) == 1 and read[0].count(".") == 2  # the token itself, as the customer app shows it
    short = page.inner_text("#claim-code").strip()
    assert codes.parse_short_code(short)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "issued-1280.png"), full_page=True)
    page.set_viewport_size(PHONE)
    page.screenshot(path=str(SHOTS / "issued-390.png"), full_page=True)
    assert decode_png(page.locator("#claim-qr").screenshot()) == read
    jti, customer_id = api.rows("SELECT jti, customer_id FROM claims ORDER BY issued_at DESC LIMIT 1")[0]
    assert customer_id == customer
    assert api.rows("SELECT action FROM audit_log WHERE target = ?", (jti,)) == [("claim.create",)]

    till = api.enroll("Caja Prueba")
    answer = api.ok(api.redeem(till, read[0]), 201)
    assert answer["verdict"]["accepted"] is True
    again = api.redeem(till, read[0]).json()
    assert again["verdict"]["accepted"] is False and again["verdict"]["reason"] == "already_redeemed"

    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{url}/console/claims")
    assert page.locator(f"tr[data-jti='{jti}']").count() == 1
    page.screenshot(path=str(SHOTS / "list-1280.png"), full_page=True)
    page.set_viewport_size(PHONE)
    page.screenshot(path=str(SHOTS / "list-390.png"), full_page=True)


def test_a_test_claim_s_short_code_redeems_typed_and_its_revoke_stops_it(console):
    api = console.api
    console.sign_in_operator()
    voucher = api.demo_voucher("personal")["id"]
    issued = console.post("/console/claims", {"voucher_id": voucher, "customer_id": "test-typed"})
    assert issued.status_code == 200 and 'id="claim-qr"' in issued.text
    jti, short = api.rows("SELECT jti, short_code FROM claims WHERE customer_id = 'test-typed'")[0]
    assert codes.format_short_code(short) in issued.text
    revoked = console.post(f"/console/claims/{jti}/revoke", {}, token_from="/console/claims")
    assert revoked.status_code == 303 and revoked.headers["location"] == "/console/claims?ok=revoked"
    assert api.rows("SELECT revoked_at IS NOT NULL FROM claims WHERE jti = ?", (jti,))[0][0]
    till = api.enroll("Caja Tecleo")
    refused = api.redeem(till, codes.format_short_code(short), method="typed").json()
    assert refused["verdict"]["accepted"] is False and refused["verdict"]["reason"] == "revoked"
    fresh = console.post("/console/claims", {"voucher_id": voucher, "customer_id": "test-typed-2"})
    assert fresh.status_code == 200
    short2 = api.rows("SELECT short_code FROM claims WHERE customer_id = 'test-typed-2'")[0][0]
    accepted = api.ok(api.redeem(till, codes.format_short_code(short2), method="typed"), 201)
    assert accepted["verdict"]["accepted"] is True


def test_a_customer_s_own_claim_is_neither_listed_nor_revoked_here(console):
    api = console.api
    real = api.claim(customer_id="cust-42")
    console.sign_in_operator()
    page = console.get("/console/claims")
    assert real["jti"] not in page.text and "cust-42" not in page.text
    refused = unchanged(api, lambda: console.post(f"/console/claims/{real['jti']}/revoke", {},
                                                  token_from="/console/claims"))
    assert refused.status_code == 404


@pytest.mark.parametrize("name", sorted(HOSTILE_TEXTS))
def test_a_hostile_customer_id_is_refused_and_nothing_is_made(console, name):
    api = console.api
    console.sign_in_operator()
    voucher = api.demo_voucher("personal")["id"]
    refused = unchanged(api, lambda: console.post("/console/claims", {"voucher_id": voucher,
                                                                      "customer_id": HOSTILE_TEXTS[name]}))
    assert refused.status_code == 400 and 'id="customer_id-error"' in refused.text, name
    assert_escaped(refused)
    prefixed = unchanged(api, lambda: console.post("/console/claims", {"voucher_id": voucher,
                                                                       "customer_id": "test-" + HOSTILE_TEXTS[name]}))
    assert prefixed.status_code == 400 and 'id="customer_id-error"' in prefixed.text, name
    assert_escaped(prefixed)


@pytest.mark.parametrize("voucher, status", [("vch_nope", 404), ("", 400), ("<script>", 404), ("x" * 70, 400)])
def test_an_unknown_or_malformed_voucher_is_a_message(console, voucher, status):
    console.sign_in_operator()
    refused = unchanged(console.api, lambda: console.post("/console/claims", {"voucher_id": voucher,
                                                                              "customer_id": "test-1"}))
    assert refused.status_code == status
    assert_escaped(refused)


def test_a_printed_or_unpublished_voucher_gets_no_claim(console):
    api = console.api
    console.sign_in_operator()
    draft = api.voucher("personal", publish=False)
    for voucher in (api.demo_voucher("printed")["id"], draft["id"]):
        refused = unchanged(api, lambda: console.post("/console/claims", {"voucher_id": voucher,
                                                                          "customer_id": "test-1"}))
        assert refused.status_code == 422 and 'class="notice bad"' in refused.text
    assert draft["id"] not in console.get("/console/claims").text  # not offered either


def test_bytes_that_are_no_utf8_are_refused(console):
    console.sign_in_operator()
    before = _claims(console.api)
    refused = post_raw(console, "/console/claims", b"voucher_id=%ff&customer_id=test-%c3%28")
    assert refused.status_code == 400 and _claims(console.api) == before


def test_forms_need_their_token_once(console):
    api = console.api
    console.sign_in_operator()
    voucher = api.demo_voucher("personal")["id"]
    before = _claims(api)
    missing = console.http.post("/console/claims", data={"voucher_id": voucher, "customer_id": "test-x"})
    assert missing.status_code == 400 and "csrf_missing" in missing.text
    token = console.token("/console/claims")
    assert console.post("/console/claims", {"voucher_id": voucher, "customer_id": "test-x"}, token=token).status_code == 200
    replayed = console.post("/console/claims", {"voucher_id": voucher, "customer_id": "test-y"}, token=token)
    assert replayed.status_code == 400 and "csrf_replayed" in replayed.text
    assert _claims(api) == before + 1


def test_another_retailer_s_admin_can_neither_claim_nor_revoke_here(console):
    api = console.api
    other = other_chain(api)
    console.sign_in_operator()
    voucher = api.demo_voucher("personal")["id"]
    console.post("/console/claims", {"voucher_id": voucher, "customer_id": "test-ours"})
    jti = api.rows("SELECT jti FROM claims WHERE customer_id = 'test-ours'")[0][0]
    client = signed_in(api, other["admin"]["id"], ADMIN_PIN)
    page = client.get("/console/claims")
    assert page.status_code == 200 and voucher not in page.text and jti not in page.text
    refused = unchanged(api, lambda: client.post("/console/claims", {"voucher_id": voucher, "customer_id": "test-1"}))
    assert refused.status_code == 403 and "not_yours" in refused.text
    refused = unchanged(api, lambda: client.post(f"/console/claims/{jti}/revoke", {}, token_from="/console/claims"))
    assert refused.status_code == 403 and "not_yours" in refused.text
    client.close()


def test_a_retailer_s_admin_issues_and_revokes_their_own(console):
    api = console.api
    admin = demo_staff(api, "admin")
    client = signed_in(api, admin["id"], admin["pin"])
    voucher = api.demo_voucher("personal")["id"]
    assert client.post("/console/claims", {"voucher_id": voucher, "customer_id": "test-admin"}).status_code == 200
    jti = api.rows("SELECT jti FROM claims WHERE customer_id = 'test-admin'")[0][0]
    actor = api.rows("SELECT actor_kind, actor FROM audit_log WHERE target = ?", (jti,))[0]
    assert actor[0] == "staff" and admin["id"] in actor[1]
    assert client.post(f"/console/claims/{jti}/revoke", {}, token_from="/console/claims").status_code == 303
    client.close()


def test_a_manager_and_a_signed_out_request_get_no_claims_page(console):
    api = console.api
    manager = demo_staff(api, "manager")
    signed_out = console.get("/console/claims")
    assert signed_out.status_code == 303 and signed_out.headers["location"].startswith("/console/sign-in")
    posted = unchanged(api, lambda: console.http.post("/console/claims", data={"voucher_id": "x", "customer_id": "y"}))
    assert posted.status_code == 303
    client = signed_in(api, manager["id"], manager["pin"])
    assert client.get("/console/claims").status_code == 403
    refused = unchanged(api, lambda: client.http.post("/console/claims", data={
        "voucher_id": api.demo_voucher("personal")["id"], "customer_id": "test-m", "csrf": client.token("/console/")}))
    assert refused.status_code == 403
    client.close()


def test_the_console_s_reads_run_on_both_engines(api):
    """The SQL of test_claims, audit_search and till_kinds, on SQLite and PostgreSQL alike."""
    backend = api.backend
    voucher = api.demo_voucher("personal")["id"]
    made = backend.issue_test_claim(voucher, "test-engine")
    api.claim(customer_id="cust-engine")  # a customer's: never listed here
    listed = backend.test_claims(api.retailer_id)
    assert [c["jti"] for c in listed] == [made["jti"]] and backend.test_claims(None) == listed
    assert backend.get_test_claim(made["jti"])["customer_id"] == "test-engine"
    till = api.enroll("Caja Motor")
    assert backend.device_kinds(api.retailer_id) == {till.id: "till"}
    found = backend.audit_search(retailer_id=api.retailer_id, action="claim.create")["records"]
    assert [r["target"] for r in found] == [made["jti"]]
    assert backend.audit_search(actor="%")["records"] == []  # a character, not a pattern
    assert backend.audit_search(target=made["jti"], since=0.0, until=4e9)["records"][0]["action"] == "claim.create"
    first = backend.audit_search(limit=2)
    second = backend.audit_search(limit=2, before=first["next"])
    assert first["more"] and [r["id"] for r in second["records"]] < [r["id"] for r in first["records"]]
    assert "claim.create" in backend.audit_actions(api.retailer_id)
