"""The backend's HTTP API: what each endpoint does, and how it stands up to
hostile input. Requests go through the real WSGI app in-process (httpx's
WSGITransport), one test over a real loopback port.

Every refusal is checked for its status, its stable code, the error shape,
and that nothing was written (every row of every table, before and after).
"""

from __future__ import annotations


import collections
import json
import re
import socket
import time

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server_stub.app import API, App
from server_stub.operations.redemptions import SYNC_BATCH_MAX
from server_stub.http import MAX_BODY_BYTES
from server_stub.serving import EmbeddedServer
from api_fixtures import Api, bearer, new_key

OPEN = {("GET", "/health"), ("GET", "/openapi.json"), ("POST", "/devices/enroll"), ("GET", "/health/ready")}
DEVICE = {("GET", "/catalog"), ("POST", "/redemptions"), ("GET", "/redemptions/{key}"), ("POST", "/sync"),
          ("GET", "/feed"), ("POST", "/till-log"),
          # a staff member in person: the device token with X-Pika-Staff and X-Pika-Pin (tests/test_pin_policy.py)
          ("GET", "/staff/me"), ("POST", "/staff/me/pin")}
ADMIN = {("POST", "/retailers"), ("GET", "/retailers"), ("POST", "/stores"), ("GET", "/stores"), ("GET", "/metrics"),
         ("POST", "/vouchers"), ("GET", "/vouchers"), ("GET", "/vouchers/{voucher_id}"),
         ("POST", "/vouchers/{voucher_id}/publish"), ("POST", "/vouchers/{voucher_id}/unpublish"),
         ("POST", "/vouchers/{voucher_id}/revoke"), ("POST", "/printed-codes"), ("GET", "/printed-codes"),
         ("POST", "/staff"), ("GET", "/pin-lockouts"), ("POST", "/retailers/{retailer_id}/settings"),
         ("POST", "/enrollment-codes"), ("POST", "/claims"), ("POST", "/claims/{jti}/revoke"),
         # the booklet: also a till's device token with an admin's staff id and PIN (tests/test_booklet_api.py)
         ("POST", "/booklets"), ("GET", "/booklets"), ("GET", "/booklets/{edition_id}.pdf"),
         ("GET", "/booklets/{edition_id}"), ("GET", "/booklets/{edition_id}/billing.csv"),
         ("POST", "/booklets/{edition_id}/placements"),
         ("POST", "/booklets/{edition_id}/placements/{placement_id}/lock"), ("POST", "/booklets/{edition_id}/render"),
         # the manager's report and voids: also a till's manager or admin in person (tests/test_report_api.py,
         # tests/test_voids.py)
         ("GET", "/reports/daily"), ("POST", "/redemptions/{key}/void"),
         # the operator's tills (tests/test_devices.py)
         ("GET", "/devices"), ("GET", "/devices/{device_id}"), ("POST", "/devices/{device_id}/rename"),
         ("POST", "/devices/{device_id}/revoke"), ("POST", "/devices/{device_id}/roll"),
         # the operator's staff (tests/test_staff_admin.py) and the audit log (tests/test_audit_log.py)
         ("GET", "/staff"), ("GET", "/staff/{staff_id}"), ("POST", "/staff/{staff_id}"),
         ("POST", "/staff/{staff_id}/disable"), ("POST", "/staff/{staff_id}/enable"), ("POST", "/staff/{staff_id}/pin"),
         ("GET", "/audit"),
         # reconciliation's findings: also a retailer's admin in person (tests/test_findings_api.py)
         ("GET", "/findings"), ("POST", "/findings/{finding_id}/resolve"), ("POST", "/reconcile")}
BIG = "x" * 100_000


def assert_error(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text[:500]
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert set(body["error"]) == {"code", "message"}
    if response.request.url.path == f"{API}/redemptions" and status in (409, 422) and "verdict" in body:
        assert set(body) == {"error", "verdict", "server_time"}, body  # a refused redemption
        assert body["verdict"]["reason"] == code and body["verdict"]["accepted"] is False
    else:
        assert set(body) == {"error"}, body
    return body


def refused_untouched(api: Api, request, status: int, code: str) -> dict:
    """Send a request that must fail; check the error and that no row changed."""
    before = api.snapshot()
    body = assert_error(request(), status, code)
    assert api.snapshot() == before, f"{status} {code} wrote something"
    return body


def _not_json(name):
    raise ValueError(f"{name} is not JSON")


def strict_json(data: bytes):
    """JSON as RFC 8259 has it: UTF-8, no NaN or Infinity."""
    return json.loads(data.decode("utf-8"), parse_constant=_not_json)


def sync_entry(**overrides) -> dict:
    entry = {"key": new_key(), "at": time.time() - 5, "accepted": True, "reason": None, "kind": "personal",
             "voucher_id": None, "jti": None, "code": None, "method": "camera", "staff_id": None,
             "decided": "offline"}
    entry.update(overrides)
    return entry


def test_route_table_is_complete(api):
    assert {(m, t[len(API):]) for m, t in api.app.router.routes()} == OPEN | DEVICE | ADMIN


# --- credentials ----------------------------------------------------------------------------


def test_every_protected_endpoint_needs_its_own_kind_of_token(api):
    till = api.enroll()
    before = api.snapshot()
    wrong_tokens = [{}, bearer("wrong"), bearer(api.admin_token + "x"), bearer(till.token[:-1]),
                    {"Authorization": api.admin_token}, {"Authorization": f"Basic {api.admin_token}"},
                    {"Authorization": "Bearer "}, bearer("y" * 600)]
    for method, template in sorted(ADMIN | DEVICE):
        path = template.replace("{voucher_id}", "vch_x").replace("{jti}", "abc").replace("{key}", new_key()) \
            .replace("{edition_id}", "bk_x").replace("{placement_id}", "plc_x").replace("{retailer_id}", "ret_x") \
            .replace("{device_id}", "dev_x").replace("{staff_id}", "stf_x").replace("{finding_id}", "1")
        other = till.auth if (method, template) in ADMIN else api.admin
        for headers in [*wrong_tokens, other]:
            response = api.client.request(method, path, headers={**headers, "Idempotency-Key": new_key()},
                                          json={} if method == "POST" else None)
            assert_error(response, 401, "unauthorized")
    assert api.snapshot() == before


def test_open_endpoints_need_no_token(api):
    assert api.client.get("/health").json()["status"] == "ok"
    assert api.client.get("/openapi.json").json()["openapi"] == "3.0.3"
    code = api.demo["enrollment_codes"][0]
    assert api.client.post("/devices/enroll", json={"code": code, "name": "Caja"}).status_code == 201


# --- malformed bodies ---------------------------------------------------------------------------


def _body_endpoints(api: Api):
    till = api.enroll()
    return [("/retailers", api.admin), ("/vouchers", api.admin), ("/devices/enroll", {}),
            ("/redemptions", {**till.auth, "Idempotency-Key": new_key()}), ("/sync", till.auth)]


@pytest.mark.parametrize("raw", [
    b"{", b"{'name': 'x'}", b'{"name": "x"} trailing', b"\xff\xfe{}", b'{"name": "caf\xe9"}',
    "{\"name\": \"café\"}".encode("utf-16"), b'\xef\xbb\xbf{"name": "x"}', b"nul\x00", b'{"name": NaN}',
    b'{"at": Infinity}', b'{"value": -Infinity}', b'{"at": 1e400}', b"[" * 100_000 + b"]" * 100_000,
    b'{"a": ' * 5000 + b"1" + b"}" * 5000, b"\x00" * 100, b'{"name": "\x01"}',
], ids=lambda raw: repr(raw[:16]))
def test_malformed_json_is_400_invalid_json(api, raw):
    for path, headers in _body_endpoints(api):
        refused_untouched(api, lambda: api.client.post(path, headers=headers, content=raw), 400, "invalid_json")


def test_empty_body_is_400_and_other_media_types_415(api):
    for path, headers in _body_endpoints(api):
        refused_untouched(api, lambda: api.client.post(path, headers=headers), 400, "invalid_json")
        refused_untouched(api, lambda: api.client.post(path, headers={**headers, "Content-Type": "text/plain"},
                                                       content=b"{}"), 415, "unsupported_media_type")
        refused_untouched(api, lambda: api.client.post(path, headers=headers, content=(b"{}" for _ in "x")),
                          411, "length_required")


def test_unknown_fields_are_refused_at_every_level(api):
    till = api.enroll()
    voucher = {"retailer_id": api.retailer_id, "kind": "personal", "texts": {"es": {"title": "t"}},
               "discount": {"kind": "percent", "value": 5}}
    cases = [
        ("/retailers", api.admin, {"name": "x", "id": "ret_mine"}),
        ("/vouchers", api.admin, {**voucher, "status": "published"}),
        ("/vouchers", api.admin, {**voucher, "discount": {"kind": "percent", "value": 5, "cap": 1}}),
        ("/devices/enroll", {}, {"code": api.demo["enrollment_codes"][0], "name": "x", "store_id": api.store_id}),
        ("/redemptions", {**till.auth, "Idempotency-Key": new_key()}, {"input": "CAFE50", "method": "typed",
                                                                       "accepted": True}),
        ("/sync", till.auth, {"entries": [], "device_id": "dev_other"}),
        ("/sync", till.auth, {"entries": [sync_entry(), sync_entry(store_id="sto_other")]}),
        ("/claims", api.admin, {"voucher_id": "v", "customer_id": "c", "jti": "mine"}),
        ("/staff", api.admin, {"retailer_id": api.retailer_id, "name": "x", "role": "admin", "pin": "123456",
                               "pin_hash": "x"}),
    ]
    for path, headers, body in cases:
        refused_untouched(api, lambda: api.client.post(path, headers=headers, json=body), 400, "unknown_field")


def test_wrong_types_are_refused(api):
    till = api.enroll()
    redeem = {**till.auth, "Idempotency-Key": new_key()}
    voucher = {"retailer_id": api.retailer_id, "kind": "personal", "texts": {"es": {"title": "t"}},
               "discount": {"kind": "percent", "value": 5}}
    cases = [
        ("/retailers", api.admin, {"name": 12}),  # int where str
        ("/retailers", api.admin, {"name": None}),  # null where required
        ("/retailers", api.admin, {"name": ["x"]}),
        ("/retailers", api.admin, ["name"]),  # array where object
        ("/retailers", api.admin, "name"),
        ("/retailers", api.admin, 7),
        ("/retailers", api.admin, None),
        ("/vouchers", api.admin, {**voucher, "discount": {"kind": "percent", "value": "5"}}),  # str where int
        ("/vouchers", api.admin, {**voucher, "discount": {"kind": "percent", "value": True}}),  # bool where int
        ("/vouchers", api.admin, {**voucher, "discount": {"kind": "percent", "value": 5.0}}),  # float where int
        ("/vouchers", api.admin, {**voucher, "discount": [5]}),  # array where object
        ("/vouchers", api.admin, {**voucher, "total_limit": False}),
        ("/vouchers", api.admin, {**voucher, "valid_from": "2026-01-01"}),
        ("/vouchers", api.admin, {**voucher, "texts": None}),
        ("/enrollment-codes", api.admin, {"store_id": api.store_id, "ttl_s": True}),
        ("/enrollment-codes", api.admin, {"store_id": 5}),
        ("/redemptions", redeem, {"input": 123, "method": "typed"}),
        ("/redemptions", redeem, {"input": "CAFE50", "method": "typed", "at": "now"}),
        ("/redemptions", redeem, {"input": "CAFE50", "method": "typed", "at": True}),
        ("/redemptions", redeem, {"input": {"code": "CAFE50"}, "method": "typed"}),
        ("/redemptions", redeem, {"input": "CAFE50", "method": None}),
        ("/sync", till.auth, {"entries": None}),
        ("/sync", till.auth, {"entries": {"0": sync_entry()}}),
        ("/sync", till.auth, {"entries": [sync_entry(), "entry"]}),
        ("/sync", till.auth, {"entries": [sync_entry(accepted=1)]}),  # int where bool
        ("/sync", till.auth, {"entries": [sync_entry(at="yesterday")]}),
        ("/sync", till.auth, {"entries": [sync_entry(at=None)]}),
        ("/sync", till.auth, {"entries": [sync_entry(jti=12345)]}),
    ]
    for path, headers, body in cases:
        refused_untouched(api, lambda: api.client.post(path, headers=headers, content=json.dumps(body).encode()),
                          400, "wrong_type")


def test_missing_fields_are_refused(api):
    till = api.enroll()
    cases = [("/retailers", api.admin, {}), ("/stores", api.admin, {"name": "x"}),
             ("/devices/enroll", {}, {"code": api.demo["enrollment_codes"][0]}),
             ("/redemptions", {**till.auth, "Idempotency-Key": new_key()}, {"input": "CAFE50"}),
             ("/sync", till.auth, {}),
             ("/sync", till.auth, {"entries": [{k: v for k, v in sync_entry().items() if k != "decided"}]})]
    for path, headers, body in cases:
        refused_untouched(api, lambda: api.client.post(path, headers=headers, json=body), 400, "missing_field")


def test_out_of_range_numbers_are_refused(api):
    """Integers past ±(2**53 − 1) used to overflow SQLite (500); now 400 and nothing written."""
    till = api.enroll()
    voucher = {"retailer_id": api.retailer_id, "kind": "personal", "texts": {"es": {"title": "t"}},
               "discount": {"kind": "amount", "value": 10**30}}
    cases = [("/vouchers", api.admin, voucher),
             ("/vouchers", api.admin, {**voucher, "discount": {"kind": "amount", "value": 5}, "claim_ttl_s": 2**63}),
             ("/redemptions", {**till.auth, "Idempotency-Key": new_key()},
              {"input": "CAFE50", "method": "typed", "at": 10**40}),
             ("/sync", till.auth, {"entries": [sync_entry(at=-(10**20))]})]
    for path, headers, body in cases:
        refused_untouched(api, lambda: api.client.post(path, headers=headers, json=body), 400, "invalid_value")
    biggest = {**voucher, "discount": {"kind": "amount", "value": 2**53 - 1}, "claim_ttl_s": 2**53 - 1}
    made = api.ok(api.client.post("/vouchers", headers=api.admin, json=biggest), 201)
    api.ok(api.client.post(f"/vouchers/{made['id']}/publish", headers=api.admin))
    assert api.claim(made["id"])["expires_at"] > time.time()


# --- size ------------------------------------------------------------------------------------


def test_a_body_over_the_limit_is_refused_unread(api):
    till = api.enroll()
    entries = [sync_entry() for _ in range(3)]
    padding = MAX_BODY_BYTES - len(json.dumps({"entries": entries, "pad": ""})) + 1
    body = json.dumps({"entries": entries, "pad": " " * padding}).encode()
    assert len(body) == MAX_BODY_BYTES + 1

    read = []

    class Input:  # a body that tells whether anyone read it
        def __init__(self, inner):
            self.inner = inner

        def read(self, *args):
            read.append(args)
            return self.inner.read(*args)

    app = api.app

    def spying_app(environ, start_response):
        environ["wsgi.input"] = Input(environ["wsgi.input"])
        return app(environ, start_response)
    client = httpx.Client(transport=httpx.WSGITransport(app=spying_app), base_url=f"http://t{API}")
    refused_untouched(api, lambda: client.post("/sync", headers=till.auth, content=body), 413, "payload_too_large")
    assert read == [], "the body was read before it was refused"
    refused_untouched(api, lambda: client.post("/retailers", headers=api.admin, content=body), 413,
                      "payload_too_large")
    # exactly at the limit: read, and judged on its content
    at_limit = body[:-3] + b'"}'
    assert len(at_limit) == MAX_BODY_BYTES
    refused_untouched(api, lambda: client.post("/sync", headers=till.auth, content=at_limit), 400, "unknown_field")


def test_100_kb_strings_are_refused(api):
    till = api.enroll()
    cases = [
        ("/retailers", api.admin, {"name": BIG}),
        ("/stores", api.admin, {"retailer_id": api.retailer_id, "name": BIG}),
        ("/stores", api.admin, {"retailer_id": BIG, "name": "x"}),
        ("/devices/enroll", {}, {"code": api.demo["enrollment_codes"][0], "name": BIG}),
        ("/devices/enroll", {}, {"code": BIG, "name": "x"}),
        ("/claims", api.admin, {"voucher_id": api.demo_voucher("personal")["id"], "customer_id": BIG}),
        ("/redemptions", {**till.auth, "Idempotency-Key": new_key()}, {"input": BIG, "method": "typed"}),
        ("/redemptions", {**till.auth, "Idempotency-Key": new_key()}, {"input": "CAFE50", "method": BIG}),
        ("/sync", till.auth, {"entries": [sync_entry(code=BIG)]}),
        ("/sync", till.auth, {"entries": [sync_entry(key=BIG)]}),
        ("/vouchers", api.admin, {"retailer_id": api.retailer_id, "kind": "personal",
                                  "texts": {"es": {"title": BIG}}, "discount": {"kind": "percent", "value": 5}}),
    ]
    for path, headers, body in cases:
        refused_untouched(api, lambda: api.client.post(path, headers=headers, json=body), 400, "invalid_value")


# --- routing ------------------------------------------------------------------------------------


def test_unknown_paths_are_404_and_wrong_methods_405(api):
    c = api.client
    # `/` is the web console's door (tests/test_console_pages.py), everything else unknown is the API's 404.
    assert c.get("http://t/").headers["location"] == "/console/"
    for url in ("http://t/api/v2/health", f"http://t{API}", f"http://t{API}/nope",
                f"http://t{API}/vouchers/a/b", f"http://t{API}/vouchers/{'v' * 129}", f"http://t{API}/health/",
                f"http://t{API}/vouchers/a%2Fb", f"http://t{API}/vouchers/caf%C3%A9"):
        assert_error(c.get(url, headers=api.admin), 404, "not_found")
    for method, path in (("DELETE", "/retailers"), ("PUT", "/sync"), ("GET", "/sync"), ("POST", "/health"),
                         ("GET", "/redemptions"), ("PATCH", "/vouchers/abc"), ("GET", "/devices/enroll"),
                         ("OPTIONS", "/feed")):
        refused_untouched(api, lambda: c.request(method, path, headers=api.admin), 405, "method_not_allowed")


def test_a_405_says_in_allow_which_methods_the_path_serves(api):
    for method, path, allow in (("DELETE", "/retailers", "GET, POST"), ("GET", "/sync", "POST"),
                                ("PATCH", "/vouchers/abc", "GET"), ("GET", "/redemptions/abcdefgh/void", "POST"),
                                ("PUT", "/health", "GET"), ("OPTIONS", "/feed", "GET")):
        response = api.client.request(method, path, headers=api.admin)
        assert (response.status_code, response.headers.get("Allow")) == (405, allow), (method, path)
    assert "Allow" not in api.client.get("/nope").headers  # a 404 has no methods to offer


# --- Unicode --------------------------------------------------------------------------------------

ODD_NAMES = [
    "Café Pika 🧉☕", "مقهى بيكا", "קפה פיקה", "\u202eakiP éfaC", "Kafe g̃ ỹ ẽ ĩ ũ ã õ", "e\u0301\u0301\u0301",
    "👩‍👩‍👧‍👦 family", "\u200b\u200d\ufeff", "𝔓𝔦𝔨𝔞", "\U0010fffd", "tab\tand\nnewline", "'; DROP TABLE retailers; --",
]


def test_odd_unicode_in_names_is_stored_and_returned_intact(api):
    for name in ODD_NAMES:
        made = api.ok(api.client.post("/retailers", headers=api.admin, json={"name": name}), 201)
        assert made["name"] == name
    listed = {r["name"] for r in api.ok(api.client.get("/retailers", headers=api.admin))["retailers"]}
    assert set(ODD_NAMES) <= listed
    texts = {"es": {"title": ODD_NAMES[0], "terms": ODD_NAMES[1]}, "gn": {"title": ODD_NAMES[4]}}
    voucher = api.voucher(texts=texts)
    assert api.ok(api.client.get(f"/vouchers/{voucher['id']}", headers=api.admin))["texts"] == texts
    till = api.enroll(ODD_NAMES[2])
    claim = api.claim(voucher["id"])
    assert api.redeem(till, claim["token"]).status_code == 201
    other = api.enroll("Caja 2")
    used = api.redeem(other, claim["token"]).json()["verdict"]["used"]
    assert used["till"] == ODD_NAMES[2]
    # the raw bytes are UTF-8, not \u escapes
    raw = api.client.get("/retailers", headers=api.admin).content
    assert ODD_NAMES[0].encode() in raw


@pytest.mark.parametrize("bad", ["a\u0000b", "\u0000", "x\ud800", "\udfff", "\ud83d"], ids=repr)
def test_nul_and_lone_surrogates_are_refused_everywhere(api, bad):
    till = api.enroll()
    escaped = json.dumps(bad)  # \u escapes: the only way these reach the server
    cases = [
        ("/retailers", api.admin, f'{{"name": {escaped}}}'),
        ("/devices/enroll", {}, f'{{"code": "{api.demo["enrollment_codes"][0]}", "name": {escaped}}}'),
        ("/vouchers", api.admin, json.dumps({"retailer_id": api.retailer_id, "kind": "personal",
                                             "discount": {"kind": "percent", "value": 5}})[:-1]
         + f', "texts": {{"es": {{"title": {escaped}}}}}}}'),
        ("/redemptions", {**till.auth, "Idempotency-Key": new_key()}, f'{{"input": {escaped}, "method": "typed"}}'),
        ("/sync", till.auth, json.dumps({"entries": [sync_entry()]})[:-2] + f', {{{escaped}: 1}}]}}'),
        ("/retailers", api.admin, f'{{{escaped}: "x"}}'),
    ]
    for path, headers, raw in cases:
        json.loads(raw)  # the test sends valid JSON
        refused_untouched(api, lambda: api.client.post(path, headers=headers, content=raw.encode()), 400,
                          "invalid_value")


# --- enrollment and claims ----------------------------------------------------------------------


@pytest.mark.allow_log_warnings(r"^enrollment refused from ")
def test_an_enrollment_code_works_once(api):
    code = api.demo["enrollment_codes"][0]
    typed = code.lower().replace("-", " ")  # entry forgives case and separators
    first = api.ok(api.client.post("/devices/enroll", json={"code": typed, "name": "  Caja 1  "}), 201)
    assert first["name"] == "Caja 1" and first["store_id"] == api.store_id and first["keys"]
    for again in (code, typed):
        refused_untouched(api, lambda: api.client.post("/devices/enroll", json={"code": again, "name": "Caja 2"}),
                          403, "invalid_enrollment_code")
    for unknown in ("", "0000-0000-0", "K7QF-3M2X-T", "not a code", "🧉" * 10):
        refused_untouched(api, lambda: api.client.post("/devices/enroll", json={"code": unknown, "name": "X"}),
                          403, "invalid_enrollment_code")
    refused_untouched(api, lambda: api.client.post("/devices/enroll", json={"code": api.demo["enrollment_codes"][1],
                                                                            "name": " \t "}), 400, "invalid_value")
    # the device token works for the till endpoints, and only it
    assert api.client.get("/catalog", headers=bearer(first["device_token"])).status_code == 200


@pytest.mark.allow_log_warnings(r"^enrollment refused from ")
def test_an_expired_enrollment_code_is_refused(api, monkeypatch):
    monkeypatch.setattr(api.backend, "clock", lambda: time.time() + 8 * 24 * 3600)
    refused_untouched(api, lambda: api.client.post("/devices/enroll", json={"code": api.demo["enrollment_codes"][0],
                                                                            "name": "Caja"}),
                      403, "invalid_enrollment_code")


def test_claims_of_vouchers_not_on_offer_are_422(api):
    unpublished = api.voucher(publish=False)
    revoked = api.voucher()
    api.ok(api.client.post(f"/vouchers/{revoked['id']}/revoke", headers=api.admin))
    taken_off = api.voucher()
    api.ok(api.client.post(f"/vouchers/{taken_off['id']}/unpublish", headers=api.admin))
    now = int(time.time())
    ended = api.voucher(valid_from=now - 100, valid_until=now - 10)
    for voucher_id, reason in ((unpublished["id"], "unpublished"), (revoked["id"], "revoked"),
                               (taken_off["id"], "unpublished"), (api.demo_voucher("printed")["id"], "unknown_code"),
                               (ended["id"], "expired")):
        refused_untouched(api, lambda: api.client.post("/claims", headers=api.admin,
                                                       json={"voucher_id": voucher_id, "customer_id": "c"}),
                          422, reason)
    refused_untouched(api, lambda: api.client.post("/claims", headers=api.admin,
                                                   json={"voucher_id": "vch_none", "customer_id": "c"}),
                      404, "not_found")
    claim = api.claim()
    assert len(claim["short_code"].replace("-", "")) == 9 and claim["token"].count(".") == 2


# --- online redemption -------------------------------------------------------------------------------


def test_idempotency_key_is_required_and_well_formed(api):
    till = api.enroll()
    body = {"input": "CAFE50", "method": "printed"}
    for key in (None, "", "short", "x" * 65, "has space1", "semi;colon", "dots.are.no", "tab\tin-key"):
        headers = till.auth if key is None else {**till.auth, "Idempotency-Key": key}
        refused_untouched(api, lambda: api.client.post("/redemptions", headers=headers, json=body), 400,
                          "invalid_value")
    for key in ("a" * 8, "Z" * 64, "abc_DEF-123"):
        assert api.redeem(till, "CAFE50", "printed", key=key).status_code == 201


def test_a_redemption_is_accepted_once_and_replays_exactly(api):
    till, other = api.enroll("Caja 1"), api.enroll("Caja 2")
    claim = api.claim()
    key = new_key()
    first = api.redeem(till, claim["token"], key=key)
    assert first.status_code == 201
    body = first.json()
    assert body["accepted"] is True and body["verdict"]["accepted"] is True
    assert body["verdict"]["jti"] == claim["jti"] and body["verdict"]["voucher"]["id"] == api.demo_voucher(
        "personal")["id"]
    rows = api.counts()

    # the same token with a new key, at either till: already redeemed, with when and where
    for device, text in ((till, claim["token"]), (other, claim["token"]), (other, claim["short_code"].lower())):
        again = api.redeem(device, text, method="typed")
        refusal = assert_error(again, 409, "already_redeemed")
        used = refusal["verdict"]["used"]
        assert used["till"] == "Caja 1" and used["jti"] == claim["jti"] and used["store_id"] == api.store_id
        assert refusal["verdict"]["accepted"] is False
    assert api.counts()["attempts"] == rows["attempts"] + 3  # refusals are recorded (reports count them)
    assert api.counts()["events"] == rows["events"]  # … but tell no other till anything

    # the replayed key: the very same answer, and nothing new written; with another body, 422
    before = api.snapshot()
    replay = api.redeem(till, claim["token"], key=key)
    assert (replay.status_code, replay.content) == (201, first.content)
    assert_error(api.redeem(till, "CAFE50", key=key), 422, "idempotency_mismatch")
    assert api.snapshot() == before
    # another till replaying the key: refused, nothing written
    refused_untouched(api, lambda: api.redeem(other, claim["token"], key=key), 409, "conflict")


def test_printed_codes_and_methods(api):
    till = api.enroll()
    printed = api.ok(api.client.get("/printed-codes", headers=api.admin))["printed_codes"][0]
    for text, method, source in (("CAFE50", "printed", "printed_code"), ("cafe 50", "typed", "printed_code"),
                                 ("cafe-50", "printed", "printed_code"), (printed["token"], "camera", "static_token"),
                                 (printed["token"], "printed", "static_token")):
        answer = api.redeem(till, text, method)
        assert answer.status_code == 201, (text, answer.text)
        assert answer.json()["verdict"]["source"] == source and answer.json()["verdict"]["kind"] == "printed"
    claim = api.claim()
    for text in (claim["token"], claim["short_code"]):  # an app code is no printed code
        assert_error(api.redeem(till, text, "printed"), 422, "unknown_code")
    assert api.redeem(till, claim["short_code"], "typed").status_code == 201
    # The check symbol swapped for another one, never for itself (1 code in 32 ends in "0").
    typo = claim["short_code"][:-1] + ("1" if claim["short_code"][-1] == "0" else "0")
    for text, reason in (("NOSUCHCODE", "unknown_code"), ("¿qué?", "malformed"), ("   ", "malformed"),
                         ("a.b.c", "malformed"), (typo, "mistyped")):
        refusal = assert_error(api.redeem(till, text, "typed"), 422, reason)
        assert refusal["verdict"]["reason"] == reason


def test_revoked_and_unpublished_vouchers_are_refused_at_the_till(api):
    till = api.enroll()
    claim = api.claim()
    revoked_claim = api.claim(customer_id="cust-2")
    api.ok(api.client.post(f"/claims/{revoked_claim['jti']}/revoke", headers=api.admin))
    assert_error(api.redeem(till, revoked_claim["token"]), 422, "revoked")
    api.ok(api.client.post(f"/vouchers/{api.demo_voucher('personal')['id']}/unpublish", headers=api.admin))
    assert_error(api.redeem(till, claim["token"]), 422, "unpublished")
    api.ok(api.client.post(f"/vouchers/{api.demo_voucher('printed')['id']}/revoke", headers=api.admin))
    assert_error(api.redeem(till, "CAFE50", "printed"), 422, "revoked")


def test_a_stored_answer_can_be_looked_up(api):
    till, other = api.enroll("Caja 1"), api.enroll("Caja 2")
    key = new_key()
    first = api.redeem(till, "CAFE50", "printed", key=key)
    looked = api.ok(api.client.get(f"/redemptions/{key}", headers=till.auth))
    assert looked == {"status": 201, "answer": first.json()}
    refused_key = new_key()
    refused = api.redeem(till, "NOPE", "typed", key=refused_key)
    assert api.ok(api.client.get(f"/redemptions/{refused_key}", headers=till.auth)) == {
        "status": 422, "answer": refused.json()}
    assert_error(api.client.get(f"/redemptions/{new_key()}", headers=till.auth), 404, "not_found")
    assert_error(api.client.get(f"/redemptions/{key}", headers=other.auth), 409, "conflict")
    assert_error(api.client.get("/redemptions/short", headers=till.auth), 400, "invalid_value")
    synced = sync_entry(kind="printed", code="CAFE50")
    api.ok(api.client.post("/sync", headers=till.auth, json={"entries": [synced]}))
    assert_error(api.client.get(f"/redemptions/{synced['key']}", headers=till.auth), 409, "conflict")
    # … and a sync key cannot be reused for an online redemption
    refused_untouched(api, lambda: api.redeem(till, "CAFE50", "printed", key=synced["key"]), 409, "conflict")


# the injected failure is logged, as any 500 is
@pytest.mark.allow_log_warnings(r"^unhandled error for POST /api/v1/(redemptions|sync)$")
def test_a_failure_inside_the_write_leaves_nothing_behind(api):
    """The feed event is written with the attempt: if it fails, the attempt goes too."""
    till = api.enroll()
    key = new_key()
    api.execute("CREATE TRIGGER broken BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'disk on fire'); END;",
                "CREATE FUNCTION on_fire() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "RAISE EXCEPTION 'disk on fire'; END $$; "
                "CREATE TRIGGER broken BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION on_fire()")
    refused_untouched(api, lambda: api.redeem(till, "CAFE50", "printed", key=key), 500, "internal")
    refused_untouched(api, lambda: api.client.post("/sync", headers=till.auth, json={
        "entries": [sync_entry(accepted=False), sync_entry(kind="printed", code="CAFE50", input="CAFE50")]}), 500,
        "internal")
    api.execute("DROP TRIGGER broken", "DROP TRIGGER broken ON events")
    assert api.redeem(till, "CAFE50", "printed", key=key).status_code == 201


# --- sync ------------------------------------------------------------------------------------------


def test_sync_records_duplicates_and_conflicts(api):
    till, other = api.enroll("Caja 1"), api.enroll("Caja 2")
    claim = api.claim()
    voucher_id = api.demo_voucher("personal")["id"]
    at = time.time() - 30  # after the till was enrolled: the backend believes it
    first = sync_entry(jti=claim["jti"], voucher_id=voucher_id, at=at, input=claim["token"])
    refused = sync_entry(accepted=False, reason="expired", jti=claim["jti"], method="typed")
    answer = api.ok(api.client.post("/sync", headers=till.auth, json={"entries": [first, refused]}))
    assert [(r["key"], r["status"]) for r in answer["results"]] == [(first["key"], "recorded"),
                                                                     (refused["key"], "recorded")]
    assert api.ok(api.client.post("/sync", headers=till.auth, json={"entries": [first, refused]}))["results"] == [
        {"key": first["key"], "status": "duplicate"}, {"key": refused["key"], "status": "duplicate"}]

    # the other till redeemed the same jti offline: first wins, the second is kept as a conflict
    second = sync_entry(jti=claim["jti"], voucher_id=voucher_id, at=at + 5, input=claim["token"])
    winner = {"jti": claim["jti"], "at": at, "till": "Caja 1", "store_id": api.store_id}
    for _ in range(2):  # and says so again on a retry
        result = api.ok(api.client.post("/sync", headers=other.auth, json={"entries": [second]}))["results"]
        assert result == [{"key": second["key"], "status": "conflict", "winner": winner}]
    assert api.rows("SELECT status, conflict_with IS NOT NULL FROM attempts WHERE key = ?", (second["key"],)) == [
        ("conflict", 1)]
    # an online redemption of that jti is now refused, naming the winner
    assert assert_error(api.redeem(other, claim["token"]), 409, "already_redeemed")["verdict"]["used"] == winner
    # a key of another till is not taken
    stolen = api.ok(api.client.post("/sync", headers=other.auth, json={"entries": [first]}))["results"]
    assert stolen[0]["status"] == "rejected"
    # two accepted entries of one jti in one batch: the first wins
    fresh = api.claim(customer_id="cust-9")
    a, b = sync_entry(jti=fresh["jti"], input=fresh["token"]), sync_entry(jti=fresh["jti"], input=fresh["token"])
    statuses = [r["status"] for r in api.ok(api.client.post("/sync", headers=till.auth,
                                                            json={"entries": [a, b]}))["results"]]
    assert statuses == ["recorded", "conflict"]


def test_an_online_win_beats_a_later_offline_sync(api):
    till, other = api.enroll("Caja 1"), api.enroll("Caja 2")
    claim = api.claim()
    assert api.redeem(till, claim["token"]).status_code == 201
    late = sync_entry(jti=claim["jti"], input=claim["token"])
    result = api.ok(api.client.post("/sync", headers=other.auth, json={"entries": [late]}))["results"][0]
    assert result["status"] == "conflict" and result["winner"]["till"] == "Caja 1"


def test_sync_batches_are_bounded_and_keys_unique(api):
    till = api.enroll()
    too_many = [sync_entry(accepted=False, reason="malformed") for _ in range(SYNC_BATCH_MAX + 1)]
    refused_untouched(api, lambda: api.client.post("/sync", headers=till.auth, json={"entries": too_many}), 400,
                      "invalid_value")
    twice = sync_entry()
    refused_untouched(api, lambda: api.client.post("/sync", headers=till.auth, json={
        "entries": [twice, sync_entry(), dict(twice)]}), 400, "invalid_value")
    for bad, code in (({"key": "short"}, "invalid_value"), ({"key": "bad key!"}, "invalid_value"),
                      ({"decided": "later"}, "invalid_value"), ({"method": "smoke"}, "invalid_value"),
                      ({"kind": "static"}, "invalid_value"), ({"at": float("nan")}, "invalid_json")):
        entries = [sync_entry() for _ in range(7)] + [sync_entry(**bad)]  # a bad one at the end: nothing taken
        refused_untouched(api, lambda: api.client.post("/sync", headers=till.auth,
                                                       content=json.dumps({"entries": entries}).encode()),
                          400, code)
    full = [sync_entry(accepted=False, reason="malformed") for _ in range(SYNC_BATCH_MAX)]
    results = api.ok(api.client.post("/sync", headers=till.auth, json={"entries": full}))["results"]
    assert [r["status"] for r in results] == ["recorded"] * SYNC_BATCH_MAX
    assert api.ok(api.client.post("/sync", headers=till.auth, json={"entries": []}))["results"] == []


# --- feed -------------------------------------------------------------------------------------------


def test_the_feed_shows_other_tills_redemptions_not_ones_own(api):
    till, other = api.enroll("Caja 1"), api.enroll("Caja 2")
    start = api.ok(api.client.get("/feed", headers=till.auth))["cursor"]
    claim = api.claim()
    assert api.redeem(till, claim["token"]).status_code == 201
    api.ok(api.client.post("/sync", headers=till.auth, json={"entries": [sync_entry(kind="printed", code="CAFE50",
                                                                                    input="CAFE50")]}))
    own = api.ok(api.client.get("/feed", headers=till.auth, params={"after": start}))
    assert [e["type"] for e in own["events"]] == ["claim"]
    seen = api.ok(api.client.get("/feed", headers=other.auth, params={"after": start}))
    redemptions = [e["data"] for e in seen["events"] if e["type"] == "redemption"]
    assert [(r["jti"], r["till"], r["kind"]) for r in redemptions] == [(claim["jti"], "Caja 1", "personal"),
                                                                        (None, "Caja 1", "printed")]
    assert own["cursor"] == seen["cursor"]  # one's own events are skipped, not left behind
    revoked = api.claim(customer_id="cust-3")
    api.ok(api.client.post(f"/claims/{revoked['jti']}/revoke", headers=api.admin))
    after = api.ok(api.client.get("/feed", headers=till.auth, params={"after": seen["cursor"]}))["events"]
    assert [e["type"] for e in after] == ["claim", "revocation"] and after[1]["data"] == {"jti": revoked["jti"]}


def test_feed_paging_with_cursor_and_more(api):
    till = api.enroll()
    everything = api.ok(api.client.get("/feed", headers=till.auth))
    assert everything["more"] is False
    all_seqs = [e["seq"] for e in everything["events"]]
    assert len(all_seqs) >= 10 and all_seqs == sorted(set(all_seqs))
    for limit in (1, 3, 4):
        cursor, seqs, pages = 0, [], 0
        while True:
            page = api.ok(api.client.get("/feed", headers=till.auth, params={"after": cursor, "limit": limit}))
            assert len(page["events"]) <= limit and page["cursor"] >= cursor
            seqs += [e["seq"] for e in page["events"]]
            cursor, pages = page["cursor"], pages + 1
            if not page["more"]:
                break
        assert seqs == all_seqs and pages >= len(all_seqs) // limit
    end = api.ok(api.client.get("/feed", headers=till.auth, params={"after": everything["cursor"]}))
    assert end == {**end, "events": [], "more": False, "cursor": everything["cursor"]}
    assert len(api.ok(api.client.get("/feed", headers=till.auth, params={"limit": 0}))["events"]) == 1  # clamped
    assert api.ok(api.client.get("/feed", headers=till.auth, params={"after": 10**15}))["events"] == []
    for bad in ({"after": "-1"}, {"after": "x"}, {"limit": "1.5"}, {"limit": "９"}, {"after": "9" * 19}):
        assert_error(api.client.get("/feed", headers=till.auth, params=bad), 400, "invalid_value")


# --- no partial writes, across the board ------------------------------------------------------------


def test_no_failing_request_writes_anything(api):
    till = api.enroll()
    claim = api.claim()
    assert api.redeem(till, claim["token"]).status_code == 201
    c, admin = api.client, api.admin
    failing = [
        (lambda: c.post("/stores", headers=admin, json={"retailer_id": "ret_none", "name": "x"}), 404),
        (lambda: c.post("/stores", headers=admin, json={"retailer_id": api.retailer_id, "name": "x",
                                                        "timezone": "../../etc/passwd"}), 400),
        (lambda: c.post("/vouchers", headers=admin, json={
            "retailer_id": api.retailer_id, "kind": "personal", "texts": {"xx": {"title": "t"}},
            "discount": {"kind": "percent", "value": 5}}), 400),
        (lambda: c.post("/vouchers", headers=admin, json={
            "retailer_id": api.retailer_id, "kind": "personal", "texts": {"es": {"terms": "no title"}},
            "discount": {"kind": "percent", "value": 101}}), 400),
        (lambda: c.post("/vouchers", headers=admin, json={
            "retailer_id": api.retailer_id, "kind": "personal", "texts": {"es": {"title": "t"}},
            "discount": {"kind": "amount", "value": 5}, "valid_from": 10, "valid_until": 5}), 400),
        (lambda: c.post(f"/vouchers/{api.demo_voucher('personal')['id']}/unpublish", headers=admin), 200),
        (lambda: c.post(f"/vouchers/{api.demo_voucher('personal')['id']}/revoke", headers=admin), 200),
        (lambda: c.post(f"/vouchers/{api.demo_voucher('personal')['id']}/publish", headers=admin), 409),
        (lambda: c.post("/printed-codes", headers=admin, json={"voucher_id": api.demo_voucher("printed")["id"],
                                                               "code": "CAFE50"}), 409),
        (lambda: c.post("/printed-codes", headers=admin, json={"voucher_id": api.demo_voucher("personal")["id"],
                                                               "code": "NEW10"}), 400),
        (lambda: c.post("/staff", headers=admin, json={"retailer_id": api.retailer_id, "name": "x",
                                                       "role": "cashier", "pin": "12a4"}), 400),
        (lambda: c.post("/staff", headers=admin, json={"retailer_id": api.retailer_id, "name": "x",
                                                       "role": "root", "pin": "1234"}), 400),
        (lambda: c.post("/enrollment-codes", headers=admin, json={"store_id": api.store_id,
                                                                  "ttl_s": 91 * 24 * 3600}), 400),
        (lambda: c.post(f"/claims/{'j' * 20}/revoke", headers=admin), 404),
        (lambda: c.post("/redemptions", headers={**till.auth, "Idempotency-Key": new_key()},
                        json={"input": "CAFE50", "method": "carrier-pigeon"}), 400),
        (lambda: c.post("/sync", headers=till.auth, json={"entries": [sync_entry(), 5]}), 400),
    ]
    for request, status in failing:
        before = api.snapshot()
        response = request()
        assert response.status_code == status, response.text
        if status < 400:  # a step that sets up the next refusal
            continue
        assert set(response.json()) == {"error"}
        assert api.snapshot() == before, response.text


# --- property: nothing a client sends makes a 500 ------------------------------------------------------

def mostly(common, rare):
    """`common` four times in five, else `rare` (plain `|` weighs its branches alike)."""
    return st.integers(0, 4).flatmap(lambda i: rare if i == 4 else common)


# Strings with the awkward cases in them (NUL, lone surrogates, RTL marks, emoji), and numbers past
# what JSON peers and SQLite can hold: these found 500s once.
odd_text = st.text(st.characters(codec=None, categories=None) | st.sampled_from(
    ["\x00", "\ud800", "\udfff", "\u202e", "🧉", "é", "\\", '"']), max_size=20)
big_ints = st.integers(min_value=2**53 - 2, max_value=2**70) | st.integers(min_value=-(2**70), max_value=-(2**53))
numbers = st.integers() | big_ints | st.floats()
plain_text = st.text(max_size=20)
some_text = mostly(plain_text, odd_text)
json_values = st.recursive(
    st.none() | st.booleans() | numbers | odd_text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(odd_text, children, max_size=4),
    max_leaves=12,
)
# "@NAME" stands for a real value of the backend under test (a claim's token, the retailer's id …).
PLACEHOLDERS = ("@TOKEN", "@SHORT", "@STATIC", "@JTI", "@RETAILER", "@VOUCHER", "@PRINTED_VOUCHER", "@STAFF")
ids = st.sampled_from(PLACEHOLDERS) | odd_text | st.uuids().map(lambda u: u.hex)
inputs = (st.sampled_from(["CAFE50", "cafe 50", "@TOKEN", "@SHORT", "@STATIC", "K7QF-3M2X-T", "a.b.c",
                           "eyJhbGciOiJub25lIn0.e30.", "   "])
          | odd_text | st.text("ABCDEFGHJKMNPQRSTVWXYZ0123456789-. _=", max_size=40))
good_methods = st.sampled_from(["camera", "scanner", "typed", "printed", "image"])
methods = mostly(good_methods, odd_text)
keys = st.uuids().map(lambda u: u.hex)
optional_text = st.none() | odd_text | ids


@st.composite
def shaped(draw, required: dict, optional: dict):
    """An object with the endpoint's fields, mostly well typed; sometimes one field retyped,
    dropped, or an extra one added."""
    body = draw(st.fixed_dictionaries(required, optional=optional))
    mutation = draw(st.sampled_from(["none"] * 5 + ["retype", "drop", "extra"]))
    if mutation == "retype" and body:
        body[draw(st.sampled_from(sorted(body)))] = draw(json_values)
    elif mutation == "drop" and body:
        del body[draw(st.sampled_from(sorted(body)))]
    elif mutation == "extra":
        body[draw(odd_text)] = draw(json_values)
    return body


redemption_bodies = mostly(shaped(
    {"input": inputs, "method": methods},
    {"staff_id": st.none() | plain_text | odd_text, "at": st.none() | mostly(st.floats(0, 2e9), numbers)}), json_values)
sync_entries = shaped(
    {"key": mostly(keys, odd_text), "at": mostly(st.floats(0, 2e9), numbers), "accepted": st.booleans(),
     "method": methods, "decided": st.sampled_from(["online", "offline"]) | odd_text},
    {"reason": st.none() | st.sampled_from(["expired", "malformed"]) | odd_text,
     "kind": st.sampled_from([None, "personal", "printed"]) | odd_text, "voucher_id": optional_text,
     "jti": st.sampled_from(["@JTI", None]) | optional_text, "code": st.none() | inputs, "staff_id": optional_text})
sync_bodies = mostly(shaped({"entries": st.lists(mostly(sync_entries, json_values), max_size=5)}, {}), json_values)
good_texts = st.fixed_dictionaries({"es": st.fixed_dictionaries({"title": some_text}, optional={"terms": some_text})},
                                   optional={"gn": st.fixed_dictionaries({"title": some_text})})
texts = mostly(good_texts, st.dictionaries(st.sampled_from(["es", "gn", "en", "pt"]) | odd_text, st.dictionaries(
    st.sampled_from(["title", "terms"]) | odd_text, odd_text | json_values, max_size=3) | json_values, max_size=4))
discounts = shaped({"kind": st.sampled_from(["percent", "amount", "percent", "amount", "share"]),
                    "value": st.integers(-1, 101) | numbers},
                   {"currency": st.sampled_from(["PYG", "usd", "EURO"]) | odd_text})
optional_int = st.none() | numbers
voucher_bodies = mostly(shaped(
    {"retailer_id": mostly(st.just("@RETAILER"), ids), "kind": st.sampled_from(["personal", "printed", "static"]),
     "texts": texts,
     "discount": discounts},
    {"valid_from": optional_int, "valid_until": optional_int, "total_limit": optional_int,
     "store_day_limit": optional_int, "claim_ttl_s": optional_int}), json_values)
other_bodies = st.sampled_from([
    ("/devices/enroll", {"code": st.sampled_from(["@ENROLL"]) | inputs, "name": odd_text}, {}),
    ("/claims", {"voucher_id": ids, "customer_id": odd_text}, {}),
    ("/stores", {"retailer_id": ids, "name": odd_text},
     {"timezone": st.sampled_from(["America/Asuncion", "UTC", "..", "America", ""]) | odd_text}),
    ("/printed-codes", {"voucher_id": ids, "code": inputs}, {}),
    ("/enrollment-codes", {"store_id": ids}, {"ttl_s": numbers}),
    ("/retailers", {"name": odd_text}, {}),
]).flatmap(lambda case: st.tuples(st.just(case[0]), json_values | shaped(case[1], case[2])))


@pytest.fixture(scope="module")
def fuzz(module_api):
    api = module_api
    till = api.enroll("Fuzz")
    claim = api.claim()
    printed = api.ok(api.client.get("/printed-codes", headers=api.admin))["printed_codes"][0]
    values = {"@TOKEN": claim["token"], "@SHORT": claim["short_code"], "@JTI": claim["jti"],
              "@STATIC": printed["token"], "@RETAILER": api.retailer_id, "@VOUCHER": api.demo_voucher("personal")["id"],
              "@PRINTED_VOUCHER": api.demo_voucher("printed")["id"], "@STAFF": api.demo["staff"][0]["id"],
              "@ENROLL": api.demo["enrollment_codes"][0]}
    seen = collections.Counter()
    yield api, till, values, seen
    # the bodies must reach past the shape checks, or the property says little
    for path in {p for p, _, _ in seen} & {"redemptions", "sync", "vouchers"}:
        deep = sum(n for (p, status, code), n in seen.items()
                   if p == path and code not in ("invalid_json", "unknown_field", "wrong_type", "missing_field"))
        assert deep >= 20, f"only {deep} fuzzed {path} requests got past the shape checks: {seen}"


def _fill(body, values: dict):
    """The body with placeholders replaced by real values."""
    if isinstance(body, str):
        return values.get(body, body)
    if isinstance(body, list):
        return [_fill(item, values) for item in body]
    if isinstance(body, dict):
        return {key: _fill(value, values) for key, value in body.items()}
    return body


def _post(fuzz, path: str, body, headers: dict) -> None:
    api, _, values, seen = fuzz
    response = api.client.post(path, headers=headers, content=json.dumps(_fill(body, values)).encode())
    assert response.status_code < 500, response.text[:500]
    assert 200 <= response.status_code < 300 or 400 <= response.status_code < 500
    answer = strict_json(response.content)
    code = "ok"
    if response.status_code >= 400:
        code = answer["error"]["code"]
        assert isinstance(code, str) and isinstance(answer["error"]["message"], str)
    seen[(path.strip("/"), response.status_code, code)] += 1


_FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_FUZZ
@given(body=redemption_bodies, key=mostly(keys, st.text(max_size=70).filter(
    lambda k: k.isprintable() and k.isascii() and k == k.strip())))
def test_fuzz_redemptions_never_500(fuzz, body, key):
    _post(fuzz, "/redemptions", body, {**fuzz[1].auth, "Idempotency-Key": key})


@_FUZZ
@given(body=sync_bodies)
def test_fuzz_sync_never_500(fuzz, body):
    _post(fuzz, "/sync", body, fuzz[1].auth)


@_FUZZ
@given(body=voucher_bodies)
def test_fuzz_vouchers_never_500(fuzz, body):
    _post(fuzz, "/vouchers", body, fuzz[0].admin)


@pytest.mark.allow_log_warnings(r"^enrollment refused from ")
@settings(max_examples=100, deadline=None)
@given(case=other_bodies)
def test_fuzz_other_bodies_never_500(fuzz, case):
    path, body = case
    _post(fuzz, path, body, {} if path == "/devices/enroll" else fuzz[0].admin)


@settings(max_examples=60, deadline=None)
@given(after=odd_text.filter(lambda t: "\x00" not in t and not re.search("[\ud800-\udfff]", t)),
       limit=odd_text.filter(lambda t: "\x00" not in t and not re.search("[\ud800-\udfff]", t)))
def test_fuzz_feed_query_never_500(fuzz, after, limit):
    api, till, _, _ = fuzz
    response = api.client.get("/feed", headers=till.auth, params={"after": after, "limit": limit})
    assert response.status_code in (200, 400), response.text[:500]


# --- a real socket -----------------------------------------------------------------------------------


def _raw_http(url: str, request: bytes) -> tuple[int, dict]:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def test_over_a_real_loopback_port(api):
    server = EmbeddedServer(App(api.backend)).start()
    try:
        with httpx.Client(base_url=f"{server.url}{API}", timeout=5) as client:
            assert client.get("/health").json()["status"] == "ok"
            enrolled = client.post("/devices/enroll", json={"code": api.demo["enrollment_codes"][0],
                                                            "name": "Caja 🧉"})
            assert enrolled.status_code == 201
            till = bearer(enrolled.json()["device_token"])
            key = new_key()
            first = client.post("/redemptions", headers={**till, "Idempotency-Key": key},
                                json={"input": "CAFE50", "method": "printed"})
            assert first.status_code == 201
            replay = client.post("/redemptions", headers={**till, "Idempotency-Key": key},
                                 json={"input": "CAFE50", "method": "printed"})
            assert replay.content == first.content
            assert_error(client.get("/nope"), 404, "not_found")
            assert_error(client.post("/redemptions", headers=till, content=b"{"), 400, "invalid_value")

        before = api.snapshot()
        host = server.url.removeprefix("http://")
        token = enrolled.json()["device_token"].encode()
        # a Content-Length over the limit: answered at once, body unsent and unread
        status, body = _raw_http(server.url, b"POST " + API.encode() + b"/sync HTTP/1.1\r\nHost: " + host.encode()
                                 + b"\r\nAuthorization: Bearer " + token + b"\r\nContent-Type: application/json\r\n"
                                 + f"Content-Length: {MAX_BODY_BYTES + 1}\r\nConnection: close\r\n\r\n".encode()
                                 + b'{"entries": [')
        assert (status, body["error"]["code"]) == (413, "payload_too_large")
        status, body = _raw_http(server.url, b"POST " + API.encode() + b"/sync HTTP/1.1\r\nHost: " + host.encode()
                                 + b"\r\nAuthorization: Bearer " + token + b"\r\nContent-Length: 99999999999999999999"
                                 + b"\r\nConnection: close\r\n\r\n")
        assert (status, body["error"]["code"]) == (413, "payload_too_large")
        status, body = _raw_http(server.url, b"POST " + API.encode() + b"/redemptions HTTP/1.1\r\nHost: "
                                 + host.encode() + b"\r\nAuthorization: Bearer " + token
                                 + "\r\nIdempotency-Key: clé-12345\r\nContent-Length: 2".encode()
                                 + b"\r\nConnection: close\r\n\r\n{}")
        assert (status, body["error"]["code"]) == (400, "invalid_value")  # a non-ASCII key
        status, body = _raw_http(server.url, b"POST " + API.encode() + b"/sync HTTP/1.1\r\nHost: " + host.encode()
                                 + b"\r\nAuthorization: Bearer " + token + b"\r\nContent-Length: ten"
                                 + b"\r\nConnection: close\r\n\r\n{}")
        assert (status, body["error"]["code"]) == (400, "invalid_value")
        status, body = _raw_http(server.url, b"POST " + API.encode() + b"/sync HTTP/1.1\r\nHost: " + host.encode()
                                 + b"\r\nAuthorization: Bearer " + token + b"\r\nTransfer-Encoding: chunked"
                                 + b"\r\nConnection: close\r\n\r\n2\r\n{}\r\n0\r\n\r\n")
        assert (status, body["error"]["code"]) == (411, "length_required")
        assert api.snapshot() == before
    finally:
        server.stop()
