"""Rotating the signing key: published first, signing after a lead time, old keys verifying to their last token.

Issue 15 item 3 and its bad input "a key rotation while tills are offline for a
week": every test runs on both engines; the tills are real stores, synced
through the real app; two Backends over one database show a rotation reaching
another process without a restart.
"""

from __future__ import annotations

import json
import time

import httpx
import jwt
import pytest

from pos_app.core.domain import Method
from pos_app.store import TillStore
from pos_app.sync.client import BackendClient
from pos_app.sync.round import CATALOG_EVENTS, sync_once
from server_stub.__main__ import main
from server_stub.app import App
from server_stub.backend import Backend
from server_stub.errors import Busy, Conflict, Invalid
from server_stub.operations import keyring, signing_keys

WEEK = 7 * 24 * 3600


def _kid(token: str) -> str:
    return jwt.get_unverified_header(token)["kid"]


def _till(api, tmp_path, name: str):
    till = api.enroll(name)
    store = TillStore(tmp_path / f"{name}.sqlite3", asset_keys_dir=None)
    store.save_enrollment({"device_id": till.id, "device_token": till.token, "retailer_id": api.retailer_id,
                           "store_id": till.store_id, "name": name, "keys": api.backend.public_keys}, "http://t")
    return till, store


def _sync(api, till, store):
    with BackendClient("http://t", till.token, transport=httpx.WSGITransport(app=App(api.backend))) as client:
        return sync_once(store, client)


def _at(api, when: float):
    api.backend.clock = lambda: when


def test_a_rotation_publishes_at_once_signs_after_the_lead_and_the_old_key_verifies_on(api):
    old = api.backend.kid
    done = signing_keys.rotate(api.backend.ctx, api.backend.data)  # the default lead: a week
    new = done["kid"]
    assert new != old and done["signs_from"] == pytest.approx(done["published_at"] + WEEK)
    assert sorted(done["published"]) == sorted([old, new])
    till = api.enroll("Caja rotación")
    catalog = api.ok(api.client.get("/catalog", headers=till.auth))
    assert {k["kid"] for k in catalog["keys"]} == {old, new}  # every till may verify the new key before it signs
    events = api.ok(api.client.get("/feed", headers=till.auth, params={"after": 0}))["events"]
    keys_events = [e for e in events if e["type"] == "keys"]
    assert keys_events and {k["kid"] for k in keys_events[-1]["data"]["keys"]} == {old, new}
    assert "keys" in CATALOG_EVENTS  # a till that hears it downloads the whole catalog
    assert _kid(api.claim()["token"]) == old  # during the lead the old key still signs
    _at(api, done["signs_from"] + 1)
    claim = api.claim(customer_id="after-the-lead")
    assert _kid(claim["token"]) == new and api.backend.kid == new
    assert api.ok(api.redeem(till, claim["token"]), 201)["accepted"]
    listed = {k["kid"]: k for k in signing_keys.list_keys(api.backend.ctx, api.backend.data)}
    assert listed[old]["state"] == "retired" and listed[new]["state"] == "signing"
    assert listed[new]["private_key_here"] and listed[old]["verifies_until"] > done["signs_from"]
    # The retired key's tokens (a printed code's QR lives a year) keep verifying until their end.
    assert {k["kid"] for k in api.ok(api.client.get("/catalog", headers=till.auth))["keys"]} == {old, new}
    assert api.rows("SELECT action, target FROM audit_log WHERE action = 'key.rotate'") == [("key.rotate", new)]
    assert api.backend.data.keys_path.joinpath(f"{new}.pem").stat().st_mode & 0o777 == 0o600


def test_a_till_offline_for_a_week_is_safe_and_learns_the_new_key_when_it_syncs(api, tmp_path):
    now = time.time()
    till, store = _till(api, tmp_path, "Caja fuera")
    _sync(api, till, store)  # its last sync before it went offline, before the rotation
    old = api.backend.kid
    assert [k for (k,) in store.conn.execute("SELECT kid FROM keys")] == [old]
    # The rotation was a week and a bit ago; the till has not synced since.
    _at(api, now - WEEK - 600)
    new = signing_keys.rotate(api.backend.ctx, api.backend.data)["kid"]
    _at(api, now - 3 * 24 * 3600)  # within the lead: what it signed, the offline till verifies
    during = api.claim(customer_id="during-the-lead")
    assert _kid(during["token"]) == old
    verdict, _ = store.redeem_offline(during["token"], method=Method.CAMERA, now=now)
    assert verdict.accepted, verdict
    _at(api, now)  # past the lead: the new key signs; the till that never heard refuses it as an unknown key
    after = api.claim(customer_id="after-the-lead")
    assert _kid(after["token"]) == new
    verdict, _ = store.redeem_offline(after["token"], method=Method.CAMERA, now=now)
    assert not verdict.accepted and verdict.reason == "unknown_key"
    summary = _sync(api, till, store)  # it hears the keys event and downloads the catalog
    assert summary.error is None and summary.catalog
    assert {k for (k,) in store.conn.execute("SELECT kid FROM keys")} == {old, new}
    again = api.claim(customer_id="after-the-sync")
    verdict, _ = store.redeem_offline(again["token"], method=Method.CAMERA, now=now)
    assert verdict.accepted and verdict.jti == again["jti"], verdict
    # Nothing was lost: the offline acceptance of the old key's claim is the backend's too.
    assert api.rows("SELECT status FROM attempts WHERE jti = ?", (during["jti"],)) == [("accepted",)]
    store.close()


def test_a_till_applies_a_keys_event_from_the_feed_alone(api, tmp_path):
    till, store = _till(api, tmp_path, "Caja feed")
    _sync(api, till, store)
    new = signing_keys.rotate(api.backend.ctx, api.backend.data, 0)["kid"]
    events = api.ok(api.client.get("/feed", headers=till.auth,
                                   params={"after": store.feed_cursor}))
    store.apply_feed(events["events"], events["cursor"])  # the feed only, no catalog yet
    token = api.claim(customer_id="feed-only")["token"]
    assert _kid(token) == new and store.redeem_offline(token, method=Method.CAMERA)[0].accepted
    store.close()


def test_a_leaked_key_withdrawn_is_trusted_by_no_one_and_short_codes_still_work(api, tmp_path):
    till, store = _till(api, tmp_path, "Caja filtrada")
    before = api.claim(customer_id="before-the-leak")
    old = api.backend.kid
    done = signing_keys.rotate(api.backend.ctx, api.backend.data, 0, withdraw=True)
    assert done["signs_from"] == done["published_at"] and done["published"] == [done["kid"]]
    assert "refused" in done["consequence"]
    answer = api.ok(api.redeem(till, before["token"]), 422)
    assert answer["verdict"]["reason"] == "unknown_key"
    assert api.ok(api.redeem(till, before["short_code"], method="typed"), 201)["accepted"]
    _sync(api, till, store)
    assert [k for (k,) in store.conn.execute("SELECT kid FROM keys")] == [done["kid"]]
    assert store.trust_set().get(old) is None
    listed = {k["kid"]: k["state"] for k in signing_keys.list_keys(api.backend.ctx)}
    assert listed == {old: "withdrawn", done["kid"]: "signing"}
    store.close()


def test_the_old_key_verifies_until_its_last_token_ends_then_leaves_the_catalog(api):
    printed = api.ok(api.client.get("/printed-codes", headers=api.admin))["printed_codes"]
    claim = api.claim(customer_id="last-of-the-old")
    old = api.backend.kid
    done = signing_keys.rotate(api.backend.ctx, api.backend.data, 0)
    ends = next(c["verifies_until"] for c in done["changed"] if c["kid"] == old)
    token_ends = [jwt.decode(t, options={"verify_signature": False})["exp"]
                  for t in [claim["token"]] + [p["token"] for p in printed]]
    assert max(token_ends) < ends <= max(token_ends) + 61  # exact, with the clock's leeway
    till = api.enroll("Caja final")
    _at(api, ends - 1)
    assert old in {k["kid"] for k in api.ok(api.client.get("/catalog", headers=till.auth))["keys"]}
    _at(api, ends + 1)
    assert old not in {k["kid"] for k in api.ok(api.client.get("/catalog", headers=till.auth))["keys"]}
    # The backend itself still knows it a while, for an offline till's entries from before the end.
    assert api.backend.trust.get(old) is not None
    _at(api, ends + keyring.SYNC_GRACE_S + 1)
    assert api.backend.trust.get(old) is None


def test_a_planned_retirement_is_made_exact_at_the_next_rotation(api):
    first = api.backend.kid
    done = signing_keys.rotate(api.backend.ctx, api.backend.data, 60)
    bound = done["changed"][0]["verifies_until"]
    assert bound == pytest.approx(done["signs_from"] + signing_keys.LONGEST_TOKEN_S + 60)
    # Every printed voucher ends within a month: the first key's last token (a QR) ends with them.
    month = done["signs_from"] + 30 * 86400
    api.execute(f"UPDATE vouchers SET valid_until = {month} WHERE kind = 'printed'")
    _at(api, done["signs_from"] + 5)
    again = signing_keys.rotate(api.backend.ctx, api.backend.data, 60)
    tightened = next(c for c in again["changed"] if c["kid"] == first)
    claims_end = max((e for (e,) in api.rows("SELECT expires_at FROM claims")), default=0)
    assert tightened["verifies_until"] == pytest.approx(max(month, claims_end) + 60) and tightened["verifies_until"] < bound


def test_another_process_over_the_same_database_picks_up_a_rotation_without_restart(api):
    other = Backend(api.path)  # a second worker: its own connections, the same database
    try:
        old = other.kid
        assert old == api.backend.kid
        new = signing_keys.rotate(api.backend.ctx, api.backend.data, 0)["kid"]
        assert other.kid == old  # within its refresh it has not looked yet
        deadline = time.monotonic() + keyring.REFRESH_S + 3
        while other.kid != new and time.monotonic() < deadline:
            time.sleep(0.1)
        assert other.kid == new and other.trust.get(new) is not None
        assert _kid(other.create_claim(api.demo_voucher("personal")["id"], "other-worker")["token"]) == new
    finally:
        other.close()


def test_a_host_without_the_new_private_key_says_so(api):
    new = signing_keys.rotate(api.backend.ctx, api.backend.data, 0)["kid"]
    moved = api.backend.data.keys_path / f"{new}.pem"
    aside = moved.with_suffix(".aside")
    moved.rename(aside)  # another host, whose folder was not given the new key
    other = Backend(api.path)
    try:
        with pytest.raises(Busy) as refused:
            other.create_claim(api.demo_voucher("personal")["id"], "no-key-here")
        assert refused.value.code == "signing_key_missing" and new in refused.value.message
        listed = {k["kid"]: k for k in signing_keys.list_keys(other.ctx, other.data)}
        assert listed[new]["private_key_here"] is False
        aside.rename(moved)
        assert _kid(other.create_claim(api.demo_voucher("personal")["id"], "key-copied")["token"]) == new
    finally:
        other.close()


def test_bad_rotations_are_refused_and_leave_nothing(api):
    keys_before = sorted(p.name for p in api.backend.data.keys_path.iterdir())
    rows_before = api.rows("SELECT * FROM signing_keys")
    for lead in (-1, 1, float("nan"), 91 * 24 * 3600, True, "7d"):
        with pytest.raises(Invalid):
            signing_keys.rotate(api.backend.ctx, api.backend.data, lead)
    with pytest.raises(Invalid):
        signing_keys.rotate(api.backend.ctx, api.backend.data, WEEK, withdraw=True)
    assert api.rows("SELECT * FROM signing_keys") == rows_before
    pending = signing_keys.rotate(api.backend.ctx, api.backend.data)["kid"]
    with pytest.raises(Conflict) as refused:
        signing_keys.rotate(api.backend.ctx, api.backend.data)
    assert refused.value.code == "rotation_pending" and pending in refused.value.message
    assert sorted(p.name for p in api.backend.data.keys_path.iterdir()) == sorted(keys_before + [f"{pending}.pem"])
    # --now past a waiting key: the waiting one never signed, so it simply goes
    done = signing_keys.rotate(api.backend.ctx, api.backend.data, 0)
    states = {k["kid"]: k["state"] for k in signing_keys.list_keys(api.backend.ctx)}
    assert states[pending] == "withdrawn" and states[done["kid"]] == "signing"


def test_the_key_commands(api, capsys):
    data = ["--data", str(api.path)]
    assert main(["key", "rotate", "--lead", "2d", *data]) == 0
    done = json.loads(capsys.readouterr().out)
    assert done["signs_from"] == pytest.approx(done["published_at"] + 2 * 86400)
    assert main(["key", "list", *data]) == 0
    keys = json.loads(capsys.readouterr().out)["keys"]
    assert [k["state"] for k in keys] == ["signing", "next"]
    assert main(["key", "rotate", *data]) == 1
    assert "rotation_pending" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["key", "rotate", "--lead", "soon", *data])
    with pytest.raises(SystemExit):
        main(["key", "rotate", "--lead", "2d", "--now", *data])
    assert main(["key", "rotate", "--now", "--withdraw-old", *data]) == 0
    withdrawn = json.loads(capsys.readouterr().out)
    assert withdrawn["published"] == [withdrawn["kid"]]
    record = api.rows("SELECT actor_kind, detail FROM audit_log WHERE action = 'key.rotate' ORDER BY id")
    assert [kind for kind, _ in record] == ["shell", "shell"]
    assert all("BEGIN" not in detail for _, detail in record)  # never a key in the log
