"""Tokens signed with the backend's own key but hostile inside (issue 14, finding 8): every one is a verdict.

Each case is judged twice, where it was found: by `decide()` against a real
till store (SQLite lookups, where a lone surrogate used to raise), and by the
real backend over HTTP (where it used to answer 500). A property test signs
arbitrary JSON-ish claims and asks the same of both.
"""

from __future__ import annotations

import json
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api_fixtures import new_key
from pos_app.core import tokens
from pos_app.core.domain import Reason, Verdict
from pos_app.core.verdict import decide
from pos_app.store import TillStore

ISSUER = "pika"

# --- a real till store, its catalog signed by the tests' key -----------------------------------------------


def _voucher(jws, vid: str, kind: str) -> dict:
    return {"id": vid, "retailer_id": jws.retailer, "kind": kind, "status": "published",
            "discount": {"kind": "percent", "value": 10, "currency": "PYG"}, "texts": {"es": {"title": vid}},
            "valid_from": None, "valid_until": None, "total_limit": None, "store_day_limit": None,
            "retailer_name": "Café"}


@pytest.fixture
def till(tmp_path, jws, signing_key):
    key = {"kid": jws.kid, "pem": tokens.public_pem(signing_key.public_key())}
    with TillStore(tmp_path / "till.db", device_name="Caja", asset_keys_dir=None) as store:
        store.save_enrollment({"device_id": "dev-1", "device_token": "t", "retailer_id": jws.retailer,
                               "store_id": jws.store, "keys": [key], "issuer": ISSUER}, "http://backend.test")
        store.apply_catalog({
            "retailer": {"id": jws.retailer, "name": "Café"}, "issuer": ISSUER,
            "store": {"id": jws.store, "name": "Centro", "timezone": "America/Asuncion"}, "keys": [key],
            "vouchers": [_voucher(jws, "v-app", "personal"), _voucher(jws, "v-print", "printed")],
            "printed_codes": [{"code": "COFFEE10", "voucher_id": "v-print"}],
            "claims": [], "staff": [], "revoked": [], "server_time": jws.now})
        yield store


def judged(till, jws, token: str) -> Verdict:
    verdict = decide(token, till, till.context(now=jws.now))
    assert isinstance(verdict, Verdict)
    return verdict


def deep(jws, claims: dict, lists: int, key=None, kid=None) -> str:
    """A token whose claims also hold `x`: a number inside `lists` nested lists. Written as text: json.dumps
    itself gives up near a thousand levels."""
    payload = json.dumps(claims, separators=(",", ":"))[:-1] + ',"x":' + "[" * lists + "1" + "]" * lists + "}"
    header = jws.header() if kid is None else jws.header(kid=kid)
    return jws.sign_parts(jws.b64url_json(header), jws.b64url(payload.encode()), key)


SURROGATE = "\ud800"  # json.dumps writes it as the escape \ud800, as a hostile signer would
PERSONAL_TEXTS = ("jti", "vid", "sub", "iss", "aud")


# --- at the till: decide() ----------------------------------------------------------------------------------


def test_honest_tokens_are_accepted_by_the_fixture_till(till, jws):
    assert judged(till, jws, jws.personal()).accepted
    assert judged(till, jws, jws.static()).accepted


@pytest.mark.parametrize("claim", PERSONAL_TEXTS)
@pytest.mark.parametrize("text", [SURROGATE, "jti-" + SURROGATE, "\udfff", "a\x00b", "tab\there"])
def test_unstorable_text_in_a_personal_claim_is_malformed(till, jws, claim, text):
    verdict = judged(till, jws, jws.personal(**{claim: text}))
    assert (verdict.accepted, verdict.reason) == (False, Reason.MALFORMED)


@pytest.mark.parametrize("code", [SURROGATE, "COFFEE" + SURROGATE, "coffee10", "CO FFEE", "X1", "Ñ123", "A" * 25])
def test_a_static_token_whose_code_is_no_printed_code_is_malformed(till, jws, code):
    verdict = judged(till, jws, jws.static(code=code))
    assert (verdict.accepted, verdict.reason) == (False, Reason.MALFORMED)
    assert verdict.code is None  # nothing of it reaches a record


def test_a_hostile_static_token_is_recorded_as_refused_at_the_till(till, jws):
    verdict, attempt = till.redeem_offline(jws.static(code="COFFEE" + SURROGATE), method="camera", now=jws.now)
    assert (verdict.accepted, verdict.reason) == (False, Reason.MALFORMED)
    assert till.conn.execute("SELECT status, reason FROM attempts WHERE id = ?", (attempt,)).fetchone() \
        == ("refused", Reason.MALFORMED)


@pytest.mark.parametrize("lists", [tokens.MAX_CLAIMS_DEPTH, 50, 500, 998, 999, 1000, 1200, 1300])
def test_claims_nested_deep_are_malformed(till, jws, lists):
    token = deep(jws, jws.personal_claims(), lists)
    assert len(token) <= tokens.MAX_TOKEN_LENGTH  # the nesting is what is judged, not the length
    verdict = judged(till, jws, token)
    assert (verdict.accepted, verdict.reason) == (False, Reason.MALFORMED)


def test_a_little_structure_in_an_extra_claim_is_fine(till, jws):
    assert judged(till, jws, deep(jws, jws.personal_claims(), tokens.MAX_CLAIMS_DEPTH - 1)).accepted


@pytest.mark.parametrize("change", [
    {"exp": 1.76e9 + 600.0}, {"exp": 10**30}, {"iat": -1}, {"nbf": 10**400}, {"exp": True},
    {"exp": [1]}, {"jti": ["a"]}, {"vid": {"id": "v-app"}}, {"aud": ["ret-1"]}, {"sub": 7}, {"iss": None},
    {"exp": 2**63}, {"kind": ["static"]}, {"iat": 1e308}, {"nbf": False},
], ids=repr)
def test_odd_claim_types_are_malformed(till, jws, change):
    verdict = judged(till, jws, jws.encode(jws.personal_claims(**change)))
    assert (verdict.accepted, verdict.reason) == (False, Reason.MALFORMED)


# --- any claims at all: a property ---------------------------------------------------------------------------

_odd_text = st.one_of(
    st.text(max_size=12),
    st.sampled_from([SURROGATE, "\udfff", "a\x00", "v-app", "v-print", "COFFEE10", ISSUER, "ret-1", "static", ""]),
    st.text(alphabet=st.sampled_from("ab\ud800\x00\n Ñ🧉"), max_size=6),
)
_json_ish = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-2**70, max_value=2**70)
    | st.sampled_from([10**30, 10**400, 1_760_000_600, 2**53, -1]) | st.floats(allow_nan=False, allow_infinity=False)
    | _odd_text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_odd_text, children, max_size=3),
    max_leaves=12,
)
_claim_names = st.sampled_from(["iss", "aud", "sub", "vid", "jti", "iat", "nbf", "exp", "kind", "code", "x"])
_kinds = st.sampled_from(["personal", "static"])
# Half the examples change one claim to one hostile value, so the rest of the token stays honest and
# the value reaches the rules and lookups past the checks; the others change a few claims to anything.
_hostile_value = st.sampled_from([SURROGATE, "v-" + SURROGATE, "\udfff", "a\x00", "\n", 10**30, 2**63, -5, 1.5e9,
                                  True, None, [], {}, ["static"], [[[[[[[[[1]]]]]]]]]])
_hostile_text = st.dictionaries(st.sampled_from(PERSONAL_TEXTS + ("code",)),
                                st.sampled_from([SURROGATE, "v-" + SURROGATE, "\udfff", "a\x00"]), min_size=1, max_size=1)
_changes = st.one_of(_hostile_text, st.dictionaries(_claim_names, _hostile_value, min_size=1, max_size=1),
                     st.dictionaries(_claim_names, _json_ish, max_size=4))
_drops = st.sets(_claim_names, max_size=2)


def _changed(base: dict, changes: dict, drop: set) -> dict:
    return {**{k: v for k, v in base.items() if k not in drop}, **changes}


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=_kinds, changes=_changes, drop=_drops)
def test_any_signed_claims_get_a_verdict_at_the_till(till, jws, kind, changes, drop):
    base = jws.static_claims() if kind == "static" else jws.personal_claims()
    verdict = judged(till, jws, jws.encode(_changed(base, changes, drop)))
    assert verdict.accepted or verdict.reason in Reason.ALL
    json.dumps(verdict.to_json(), ensure_ascii=False).encode("utf-8")  # storable and answerable as it is


# --- at the backend: POST /redemptions -------------------------------------------------------------------------


def _backend_claims(api, kind: str = "personal", **changes) -> dict:
    """Honest claims for the backend's demo retailer, changed as given."""
    now = int(api.backend.clock())
    if kind == "static":
        claims = {"iss": api.backend.config["issuer"], "aud": api.retailer_id, "kind": "static",
                  "code": api.printed_code, "vid": api.demo_voucher("printed")["id"], "iat": now, "exp": now + 3600}
    else:
        claims = {"iss": api.backend.config["issuer"], "aud": api.retailer_id, "sub": "cust-1",
                  "vid": api.demo_voucher("personal")["id"], "jti": new_key(), "iat": now, "nbf": now,
                  "exp": now + 3600}
    claims.update(changes)
    return claims


def _signed(api, jws, claims: dict) -> str:
    """Signed with the backend's own key: the hostile payload is all that is wrong."""
    return jws.encode(claims, jws.header(kid=api.backend.kid), key=api.backend.signing_key)


def _redeem(api, device, token: str):
    response = api.redeem(device, token)
    assert response.status_code in (201, 409, 422), response.text[:300]
    return response


def _refusal(response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


@pytest.fixture
def device(api):
    return api.enroll()


def test_an_honest_backend_token_is_accepted(api, jws, device):
    assert _redeem(api, device, _signed(api, jws, _backend_claims(api))).status_code == 201


@pytest.mark.parametrize("claim", PERSONAL_TEXTS)
def test_a_surrogate_in_a_personal_claim_is_422_malformed_not_500(api, jws, device, claim):
    response = _redeem(api, device, _signed(api, jws, _backend_claims(api, **{claim: SURROGATE})))
    assert _refusal(response) == (422, "malformed")


def test_a_surrogate_in_a_static_code_is_refused_and_nothing_accepted(api, jws, device):
    accepted = "SELECT count(*) FROM attempts WHERE status = 'accepted'"
    before = api.rows(accepted)
    response = _redeem(api, device, _signed(api, jws, _backend_claims(api, "static", code="CAFE" + SURROGATE)))
    assert _refusal(response) == (422, "malformed")
    assert api.rows(accepted) == before
    assert api.client.get("/feed", headers=api.enroll("Caja 2").auth).status_code == 200


def test_claims_nested_1200_deep_are_422_malformed(api, jws, device):
    token = deep(jws, _backend_claims(api), 1200, key=api.backend.signing_key, kid=api.backend.kid)
    assert _refusal(_redeem(api, device, token)) == (422, "malformed")


@pytest.fixture(scope="module")
def hostile_device(module_api):
    return module_api.enroll("Caja hostil")


@settings(max_examples=80, deadline=None)
@given(kind=_kinds, changes=_changes, drop=_drops)
def test_any_signed_claims_get_201_409_or_422_from_the_backend(module_api, jws, hostile_device, kind, changes, drop):
    _redeem(module_api, hostile_device, _signed(module_api, jws, _changed(_backend_claims(module_api, kind), changes,
                                                                           drop)))


# --- the issuer, at the till and at the backend -------------------------------------------------------------------


def test_the_till_keeps_its_backends_issuer_and_refuses_another(till, jws):
    assert till.context(now=jws.now).issuer == ISSUER
    verdict = judged(till, jws, jws.personal(iss="pika-staging"))
    assert (verdict.accepted, verdict.reason) == (False, Reason.BAD_SIGNATURE)
    assert judged(till, jws, jws.static(iss="other")).reason == Reason.BAD_SIGNATURE


def test_a_till_whose_backend_named_no_issuer_checks_none(tmp_path, jws, signing_key):
    key = {"kid": jws.kid, "pem": tokens.public_pem(signing_key.public_key())}
    with TillStore(tmp_path / "old.db", device_name="Caja", asset_keys_dir=None) as store:
        store.save_enrollment({"device_id": "dev-1", "device_token": "t", "retailer_id": jws.retailer,
                               "store_id": jws.store, "keys": [key]}, "http://backend.test")  # an older backend
        store.apply_catalog(_catalog_of(jws, key))
        assert store.context(now=jws.now).issuer == ""
        assert judged(store, jws, jws.personal(iss="pika-staging")).accepted
        store.apply_catalog({**_catalog_of(jws, key), "issuer": ISSUER})  # the backend was upgraded
        assert judged(store, jws, jws.personal(iss="pika-staging")).reason == Reason.BAD_SIGNATURE


def _catalog_of(jws, key) -> dict:
    """A catalog as a backend older than the issuer check sends it."""
    return {"retailer": {"id": jws.retailer, "name": "Café"}, "keys": [key],
            "store": {"id": jws.store, "name": "Centro", "timezone": "America/Asuncion"},
            "vouchers": [_voucher(jws, "v-app", "personal")], "printed_codes": [], "claims": [], "staff": [],
            "revoked": [], "server_time": jws.now}


def test_enrollment_and_catalog_name_the_backends_issuer(api, device):
    catalog = api.ok(api.client.get("/catalog", headers=device.auth))
    assert catalog["issuer"] == api.backend.config["issuer"]
    code = api.ok(api.client.post("/enrollment-codes", headers=api.admin, json={"store_id": api.store_id}), 201)
    enrolled = api.ok(api.client.post("/devices/enroll", json={"code": code["code"], "name": "Caja 3"}), 201)
    assert enrolled["issuer"] == api.backend.config["issuer"]


def test_the_backend_refuses_a_token_of_another_issuer_signed_with_its_own_key(api, jws, device):
    for kind in ("personal", "static"):
        response = _redeem(api, device, _signed(api, jws, _backend_claims(api, kind, iss="pika-staging")))
        assert _refusal(response) == (422, "bad_signature")


# --- lifetimes: what the backend issues, and what it accepts ---------------------------------------------------------


def _claims_of(token: str, jws) -> dict:
    return json.loads(jws.b64url_decode(token.split(".")[1]))


def test_a_claims_token_lives_its_ttl_at_most_the_policy_and_never_past_the_voucher(api, jws):
    now = int(api.backend.clock())
    forever = api.voucher(claim_ttl_s=2**53 - 1)
    claims = _claims_of(api.claim(forever["id"])["token"], jws)
    assert claims["exp"] - claims["iat"] == tokens.MAX_PERSONAL_LIFETIME_S
    short = api.voucher(claim_ttl_s=600, valid_until=now + 10 * 86_400)
    claims = _claims_of(api.claim(short["id"])["token"], jws)
    assert claims["exp"] - claims["iat"] == 600
    ending = api.voucher(claim_ttl_s=30 * 86_400, valid_until=now + 3600)
    assert _claims_of(api.claim(ending["id"])["token"], jws)["exp"] == now + 3600


def test_a_printed_codes_token_lives_to_its_voucher_end_at_most_a_year(api, jws):
    now = int(api.backend.clock())
    for valid_until, most in ((None, now + 366 * 86_400), (now + 3 * 365 * 86_400, now + 366 * 86_400),
                              (now + 5 * 86_400, now + 5 * 86_400)):
        voucher = api.voucher("printed", valid_until=valid_until)
        code = "LT" + uuid.uuid4().hex[:8].upper()  # ten characters: never a short code's shape (nine)
        made = api.ok(api.client.post("/printed-codes", headers=api.admin,
                                      json={"voucher_id": voucher["id"], "code": code}), 201)
        claims = _claims_of(made["token"], jws)
        assert claims["iat"] <= claims["exp"] <= most + 2
        assert claims["exp"] - claims["iat"] <= tokens.MAX_STATIC_LIFETIME_S
        if valid_until is not None and valid_until < now + 366 * 86_400:
            assert claims["exp"] == valid_until


def test_the_backend_refuses_a_token_claiming_years_of_life(api, jws, device):
    now = int(api.backend.clock())
    for kind in ("personal", "static"):
        token = _signed(api, jws, _backend_claims(api, kind, exp=now + 3 * 365 * 86_400))
        assert _refusal(_redeem(api, device, token)) == (422, "malformed")


# --- the same tokens in a till's outbox: POST /sync judges them again -------------------------------------------


def test_hostile_tokens_synced_as_accepted_are_refused_and_mark_nothing_used(api, jws, device):
    hostile = [_signed(api, jws, _backend_claims(api, jti=SURROGATE)),
               _signed(api, jws, _backend_claims(api, "static", code="CAFE" + SURROGATE)),
               _signed(api, jws, _backend_claims(api, iss="pika-staging")),
               deep(jws, _backend_claims(api), 1200, key=api.backend.signing_key, kid=api.backend.kid)]
    entries = [{"key": new_key(), "at": api.backend.clock() - 5, "accepted": True, "reason": None,
                "kind": "personal", "voucher_id": None, "jti": None, "code": None, "method": "camera",
                "staff_id": None, "decided": "offline", "input": token} for token in hostile]
    answer = api.ok(api.client.post("/sync", headers=device.auth, json={"entries": entries}))
    assert [r["status"] for r in answer["results"]] == ["recorded"] * len(hostile)
    assert all(r.get("dispute") for r in answer["results"])  # the till said accepted; the backend did not
    keys = [e["key"] for e in entries]
    marks = ", ".join("?" * len(keys))
    assert api.rows(f"SELECT count(*) FROM attempts WHERE key IN ({marks}) AND status = 'accepted'", keys) == [(0,)]
    assert api.client.get("/feed", headers=api.enroll("Caja 2").auth).status_code == 200
