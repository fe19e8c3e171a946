"""Voids: a manager voids a redemption at the till (synced through the outbox) or at the backend
(heard of through the feed); the redemption itself never changes, its code stays used, and the till's
and the backend's reports agree on it. Also the retailer-wide report over two stores in two zones.

Real SQLite files, the real backend app in process (report_fixtures.World), one fake clock."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import date, datetime, time as dtime, timedelta
from zoneinfo import ZoneInfo

import pytest

from pos_app.core import pins
from pos_app.core.domain import Method
from pos_app.core.voids import MAX_REASON, VoidError
from pos_app.store import TillStore
from pos_app.store.report import day_csv, day_report
from report_fixtures import Till, World, local

D = date(2025, 3, 14)
TILL_ONLY = ("processing_ms_p50", "processing_ms_p95", "sync_success_rate")
COFFEE_PYG = 12000


@pytest.fixture
def world(tmp_path, backend_database):
    world = World(tmp_path, local(D, 8), backend_database)
    yield world
    world.close()


def manager(world) -> str:
    return world.staff("manager")["id"]


def backend_report(world, till, **params) -> dict:
    answer = world.http.get("/reports/daily", headers=world.manager_headers(till),
                            params={"date": D.isoformat(), **params})
    assert answer.status_code == 200, answer.text
    return answer.json()


def comparable(report: dict) -> dict:
    """What the till's report and the backend's share: not the backend's own findings (disputes, whether a
    void proved its manager), nor the till's own figures."""
    voids = {**report["voids"], "items": [{k: v for k, v in item.items() if k != "verified"}
                                          for item in report["voids"]["items"]]}
    shared = {k: v for k, v in report.items() if k != "disputes"}
    return {**shared, "scope": None, "voids": voids,
            "kpis": {k: v for k, v in report["kpis"].items() if k not in TILL_ONLY}}


def csv_rows(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def backend_voids(world) -> list[tuple]:
    return world.backend.read().execute(
        "SELECT v.key, a.key, v.reason, v.staff_id, v.at, v.device_id FROM voids v "
        "JOIN attempts a ON a.id = v.attempt_id ORDER BY v.id").fetchall()


def accepted(outcome, decided: str) -> None:
    assert outcome.verdict.accepted and outcome.decided == decided, outcome.to_json()


# --- at the till, synced -------------------------------------------------------------------------


def test_void_of_an_offline_redemption_travels_after_it_and_both_reports_agree(world):
    till = world.till("Caja 1")
    ana = world.staff("cashier")["id"]
    token = world.claim(world.coffee, "c1")["token"]
    accepted(till.redeem(local(D, 10), token, Method.CAMERA, staff=ana, online=False), "offline")
    accepted(till.redeem(local(D, 10, 5), world.claim(world.coffee, "c2")["token"], Method.CAMERA, staff=ana),
             "online")
    key = till.key_at(local(D, 10))
    before = day_report(till.store, D)
    assert before["count"] == 2 and before["discount_total"]["amount"] == 2 * COFFEE_PYG
    original = till.store.attempts()

    void = till.store.void(key, reason="  Cliente devolvió el café 🧉  ", staff_id=manager(world), now=local(D, 11))
    assert void == {**void, "redemption_key": key, "reason": "Cliente devolvió el café 🧉",
                    "staff_id": manager(world), "at": local(D, 11), "origin": "local", "state": "queued",
                    "synced_at": None}
    assert till.store.attempts() == original  # the attempt row is never touched
    assert [e.get("type") for e in till.store.outbox_batch()] == [None, "void"]  # the redemption goes first

    after = day_report(till.store, D)
    assert after["count"] == 1 and after["discount_total"]["amount"] == COFFEE_PYG
    assert after["by_cashier"][0]["count"] == 1 and sum(after["by_hour"]) == 1
    assert after["voids"]["count"] == 1
    item = after["voids"]["items"][0]
    assert (item["key"], item["void_reason"], item["void_staff_id"], item["void_at"]) == (
        key, "Cliente devolvió el café 🧉", manager(world), local(D, 11))
    line = next(r for r in csv_rows(day_csv(till.store, D)) if r["key"] == key)
    assert line["status"] == "voided" and line["discount"] == ""

    world.clock.t = local(D, 12)
    summary = till.sync()
    assert summary.recorded == 2 and summary.parked == 0 and till.store.outbox_size() == 0
    assert till.store.voids()[0]["state"] == "synced" and till.store.voids()[0]["synced_at"] == local(D, 12)
    assert backend_voids(world) == [(void["id"], key, "Cliente devolvió el café 🧉", manager(world), local(D, 11),
                                     till.store.device_id)]
    backend = backend_report(world, till)
    assert backend["count"] == 1 and backend["voids"]["count"] == 1
    assert comparable(backend) == comparable(day_report(till.store, D))
    csv_answer = world.http.get("/reports/daily", headers=world.manager_headers(till),
                                params={"date": D.isoformat(), "format": "csv"})
    assert csv_answer.content == day_csv(till.store, D).encode("utf-8")
    assert till.store.attempts() == [{**a, "synced_at": a["synced_at"] or local(D, 12)} for a in original]

    # The code stays used: here, and online.
    again = till.redeem(local(D, 13), token, Method.CAMERA)
    assert again.verdict.reason == "already_redeemed"
    status, body = till.client.redeem("k" * 16, input=token, method=Method.CAMERA, staff_id=None, at=local(D, 13))
    assert status == 409 and body["verdict"]["reason"] == "already_redeemed"


def test_void_of_an_online_redemption_and_what_other_tills_hear(world):
    one, two = world.till("Caja 1"), world.till("Caja 2")
    token = world.claim(world.coffee, "c1")["token"]
    accepted(one.redeem(local(D, 9), token, Method.CAMERA), "online")
    accepted(one.redeem(local(D, 9, 1), "CAFE50", Method.PRINTED), "online")
    assert backend_report(world, one)["count"] == 2
    one.store.void(one.key_at(local(D, 9)), reason="escaneado dos veces", staff_id=manager(world), now=local(D, 9, 30))
    world.clock.t = local(D, 9, 31)
    assert one.sync().recorded == 1
    report = backend_report(world, one)
    assert report["count"] == 1 and report["voids"]["count"] == 1
    assert report["by_voucher"]["personal"] == [] and report["by_voucher"]["printed"][0]["count"] == 1
    assert comparable(report) == comparable(day_report(one.store, D))
    # Caja 2 hears of the redemption and of its void; the code stays used there too.
    summary = two.sync()
    assert summary.feed_events >= 2
    assert two.store.voids() == []  # not one of its own redemptions: nothing for its report
    assert two.redeem(local(D, 10), token, Method.CAMERA, online=False).verdict.reason == "already_redeemed"


def test_a_void_survives_a_restart_and_is_synced_after(world):
    till = world.till("Caja 1")
    accepted(till.redeem(local(D, 10), world.claim(world.coffee, "c1")["token"], Method.SCANNER, online=False),
             "offline")
    key = till.key_at(local(D, 10))
    void = till.store.void(key, reason="venta anulada", staff_id=manager(world), now=local(D, 10, 1))
    path = till.store.path
    till.store.close()
    till.store = TillStore(path)  # the till restarts
    assert till.store.voids() == [void]
    assert day_report(till.store, D)["voids"]["count"] == 1
    world.clock.t = local(D, 10, 2)
    assert till.sync().recorded == 2
    assert [row[1] for row in backend_voids(world)] == [key]
    assert till.store.voids()[0]["state"] == "synced"


def test_a_second_void_is_already_voided_and_a_replayed_entry_a_duplicate(world):
    till = world.till("Caja 1")
    accepted(till.redeem(local(D, 10), "CAFE50", Method.PRINTED), "online")
    key = till.key_at(local(D, 10))
    till.store.void(key, reason="primera", staff_id=manager(world), now=local(D, 10, 1))
    with pytest.raises(VoidError) as caught:
        till.store.void(key, reason="segunda", staff_id=manager(world), now=local(D, 10, 2))
    assert caught.value.code == "already_voided"
    entry = till.store.outbox_batch()
    assert len(entry) == 1
    till.sync()
    # The till sends the same entry again (its confirmation was lost): one void only.
    assert till.client.sync(entry)["results"] == [{"key": entry[0]["key"], "status": "duplicate", "verified": False}]
    assert len(backend_voids(world)) == 1
    # The same key from another till is not its to send.
    other = world.till("Caja 2")
    assert other.client.sync(entry)["results"][0]["status"] == "rejected"


def test_refused_unknown_pending_and_malformed_keys(world):
    till = world.till("Caja 1")
    till.redeem(local(D, 10), "no es un código", Method.TYPED)
    refused = till.key_at(local(D, 10))
    pending = till.store.begin_online("CAFE50", method=Method.PRINTED, now=local(D, 10, 1))
    cases = [(refused, "not_accepted"), (pending, "not_accepted"), ("f" * 32, "not_found"), ("", "not_found"),
             (None, "invalid_value"), (5, "invalid_value")]
    queued = till.store.outbox_size()  # the refusal, decided here without a round trip
    for key, code in cases:
        with pytest.raises(VoidError) as caught:
            till.store.void(key, reason="x", staff_id=manager(world))
        assert caught.value.code == code and caught.value.message, key
    assert till.store.voids() == [] and till.store.outbox_size() == queued


def test_a_cashier_or_a_stranger_may_not_void(world):
    till = world.till("Caja 1")
    accepted(till.redeem(local(D, 10), "CAFE50", Method.PRINTED), "online")
    key = till.key_at(local(D, 10))
    for staff_id in (world.staff("cashier")["id"], "stf_nobody", None, 7):
        with pytest.raises(VoidError) as caught:
            till.store.void(key, reason="x", staff_id=staff_id)
        assert caught.value.code == "forbidden"
    till.store.void(key, reason="by the admin", staff_id=world.staff("admin")["id"])
    assert len(till.store.voids()) == 1


@pytest.mark.parametrize("reason", [
    "x" * 10_000, "x" * (MAX_REASON + 1), "", "   \t ", "a\x00b", "dos\nlíneas", "\x1b[31mrojo", "a\u2028b",
    5, None, ["x"], {"reason": "x"}, b"bytes",
])
@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)  # the till refuses: no backend engine is asked
def test_hostile_reasons_are_refused_at_the_till(world, reason):
    till = world.till("Caja 1")
    accepted(till.redeem(local(D, 10), "CAFE50", Method.PRINTED), "online")
    with pytest.raises(VoidError) as caught:
        till.store.void(till.key_at(local(D, 10)), reason=reason, staff_id=manager(world))
    assert caught.value.code == "invalid_value"
    assert till.store.voids() == [] and till.store.outbox_size() == 0


@pytest.mark.parametrize("reason", ["🧉👨‍👩‍👧 devolución", "x" * MAX_REASON, "  Ñandutí: mal escaneado  ", "«café» — ‹sí›"])
def test_fine_reasons_are_kept_stripped(world, reason):
    till = world.till("Caja 1")
    accepted(till.redeem(local(D, 10), "CAFE50", Method.PRINTED), "online")
    void = till.store.void(till.key_at(local(D, 10)), reason=reason, staff_id=manager(world))
    assert void["reason"] == reason.strip()
    assert till.sync().recorded == 1
    assert backend_voids(world)[0][2] == reason.strip()


# --- conflicts, unknown keys, parking --------------------------------------------------------------


@pytest.mark.allow_log_warnings(r"^sync result 'rejected' for '\w+' left in the outbox$")
def test_a_conflict_loser_cannot_be_voided_here_or_at_the_backend(world):
    one, two = world.till("Caja 1"), world.till("Caja 2")
    x, y = world.claim(world.coffee, "cx")["token"], world.claim(world.coffee, "cy")["token"]
    accepted(one.redeem(local(D, 9), x, Method.CAMERA), "online")
    accepted(one.redeem(local(D, 9, 1), y, Method.CAMERA), "online")
    accepted(two.redeem(local(D, 10), x, Method.CAMERA, online=False), "offline")  # Caja 2 has not heard yet
    accepted(two.redeem(local(D, 10, 1), y, Method.CAMERA, online=False), "offline")
    lost_x, lost_y = two.key_at(local(D, 10)), two.key_at(local(D, 10, 1))
    # y: voided while Caja 2 still thinks it accepted it; the backend refuses the void after the conflict.
    two.store.void(lost_y, reason="error", staff_id=manager(world), now=local(D, 10, 2))
    world.clock.t = local(D, 10, 3)
    summary = two.sync()
    assert summary.conflicts == 2 and summary.parked == 1
    parked = two.store.parked()
    assert [(p["payload"]["redemption_key"], p["parked_reason"]) for p in parked] == [(lost_y, "not_accepted")]
    assert two.store.voids()[0]["state"] == "parked" and two.store.voids()[0]["parked_reason"] == "not_accepted"
    # x: known as a conflict here, refused at once.
    with pytest.raises(VoidError) as caught:
        two.store.void(lost_x, reason="error", staff_id=manager(world))
    assert caught.value.code == "not_accepted"
    answer = world.http.post(f"/redemptions/{lost_x}/void", headers=world.manager_headers(two),
                             json={"reason": "error"})
    assert answer.status_code == 422 and answer.json()["error"]["code"] == "not_accepted"
    # Caja 2's report: two conflicts, no void counted, the CSV says conflict.
    mine = day_report(two.store, D)
    assert mine["count"] == 0 and mine["conflicts"]["count"] == 2 and mine["voids"]["count"] == 0
    assert {r["status"] for r in csv_rows(day_csv(two.store, D))} == {"conflict"}
    assert backend_voids(world) == []


@pytest.mark.allow_log_warnings(r"^sync result 'rejected' for '\w+' left in the outbox$")
def test_a_void_of_a_key_the_backend_does_not_know_is_parked_then_goes_after_its_redemption(world):
    till = world.till("Caja 1")
    accepted(till.redeem(local(D, 10), "CAFE50", Method.PRINTED, online=False), "offline")
    key = till.key_at(local(D, 10))
    till.store.outbox_park(key, "held by a test")  # the redemption's own entry is set aside
    till.store.void(key, reason="anulada", staff_id=manager(world), now=local(D, 10, 1))
    world.clock.t = local(D, 10, 2)
    summary = till.sync()
    assert summary.parked == 1
    assert {p["parked_reason"] for p in till.store.parked()} == {"held by a test", "not_found"}
    assert till.store.outbox_unpark() == 2
    summary = till.sync()
    assert summary.recorded == 2 and till.store.outbox_size() == 0 and not till.store.parked()
    assert [row[1] for row in backend_voids(world)] == [key]
    assert backend_report(world, till)["voids"]["count"] == 1


def test_the_backend_refuses_void_entries_the_rules_refuse(world):
    one, two = world.till("Caja 1"), world.till("Caja 2")
    accepted(one.redeem(local(D, 10), "CAFE50", Method.PRINTED), "online")
    theirs = one.key_at(local(D, 10))
    base = {"type": "void", "at": local(D, 11), "redemption_key": theirs, "void_reason": "x",
            "staff_id": manager(world)}
    cases = [
        ({}, "not_found", two),  # another till's redemption
        ({"redemption_key": "u" * 32}, "not_found", one),
        ({"staff_id": world.staff("cashier")["id"]}, "forbidden", one),
        ({"void_reason": "\x07"}, "invalid_value", one),
        ({"void_reason": " "}, "invalid_value", one),
    ]
    for change, code, till in cases:
        entry = {**base, **change, "key": f"void-{code}-{len(change)}-{till.name[-1]}"}
        assert till.client.sync([entry])["results"] == [{"key": entry["key"], "status": "rejected", "reason": code}]
    assert backend_voids(world) == []


# --- the manager's proof (issue 14, finding 3) ------------------------------------------------------


def proof_salt(world, staff_id: str) -> str | None:
    return world.backend.read().execute("SELECT proof_salt FROM staff WHERE id = ?", (staff_id,)).fetchone()[0]


def void_entry(world, redemption_key: str, *, pin: str | None, reason: str = "  mal escaneado  ",
               salt: str | None = None, proven_reason: str | None = None, proven_key: str | None = None) -> dict:
    """A /sync void entry naming the demo manager; with `pin`, the proof a till makes where that PIN was typed."""
    boss = world.staff("manager")["id"]
    entry = {"type": "void", "key": uuid.uuid4().hex, "at": local(D, 10, 30), "redemption_key": redemption_key,
             "void_reason": reason, "staff_id": boss}
    if pin is not None:
        key = pins.proof_key(pin, salt or proof_salt(world, boss))
        entry["staff_proof"] = pins.void_proof(key, void_key=entry["key"], redemption_key=proven_key or redemption_key,
                                               staff_id=boss, at=entry["at"],
                                               reason=(proven_reason or reason).strip())
    return entry


def voided_redemptions(world, count: int) -> tuple[Till, Till, list[str]]:
    one, two = world.till("Caja 1"), world.till("Caja 2")
    for i in range(count):
        accepted(one.redeem(local(D, 10, i), "CAFE50", Method.PRINTED), "online")
    return one, two, [one.key_at(local(D, 10, i)) for i in range(count)]


def verified_everywhere(world, one: Till, two: Till) -> dict[str, object]:
    """Each voided redemption's `verified`, as the report says it; the feed (to another till) says the same."""
    report = backend_report(world, one)
    shown = {item["key"]: item["verified"] for item in report["voids"]["items"]}
    events = world.http.get("/feed", headers={"Authorization": f"Bearer {two.token}"}).json()["events"]
    heard = {e["data"]["redemption_key"]: e["data"]["verified"] for e in events if e["type"] == "void"}
    assert heard == shown
    stored = dict(world.backend.read().execute(
        "SELECT a.key, v.verified FROM voids v JOIN attempts a ON a.id = v.attempt_id").fetchall())
    assert {k: None if v is None else bool(v) for k, v in stored.items()} == shown
    return shown


def test_a_void_naming_the_manager_without_proof_is_recorded_as_unverified(world):
    one, two, [key] = voided_redemptions(world, 1)
    entry = void_entry(world, key, pin=None)
    assert one.client.sync([entry])["results"] == [{"key": entry["key"], "status": "recorded", "verified": False}]
    assert verified_everywhere(world, one, two) == {key: False}
    assert backend_report(world, one)["voids"]["items"][0]["void_staff_id"] == world.staff("manager")["id"]


def test_a_void_proven_with_the_managers_pin_is_verified(world):
    one, two, [key] = voided_redemptions(world, 1)
    entry = void_entry(world, key, pin=world.staff("manager")["pin"])
    assert one.client.sync([entry])["results"] == [{"key": entry["key"], "status": "recorded", "verified": True}]
    assert verified_everywhere(world, one, two) == {key: True}
    # Sent again (the answer was lost): a duplicate, still the one verified void, and it says so again.
    assert one.client.sync([entry])["results"] == [{"key": entry["key"], "status": "duplicate", "verified": True}]


def test_the_tills_own_void_with_the_pin_typed_there_is_verified_and_without_it_not(world):
    """The till (TillStore.void with the logged-in manager's PIN) and the backend agree on the proof."""
    one, two, keys = voided_redemptions(world, 2)
    boss = world.staff("manager")
    one.store.void(keys[0], reason="  mal escaneado  ", staff_id=boss["id"], now=local(D, 10, 30), pin=boss["pin"])
    one.store.void(keys[1], reason="sin PIN", staff_id=boss["id"], now=local(D, 10, 31))
    world.clock.t = local(D, 10, 32)
    assert one.sync().recorded == 2
    assert verified_everywhere(world, one, two) == {keys[0]: True, keys[1]: False}


def test_proofs_that_do_not_check_leave_the_void_unverified(world):
    one, two, keys = voided_redemptions(world, 5)
    boss = world.staff("manager")
    entries = [
        void_entry(world, keys[0], pin="000000"),  # a wrong PIN
        void_entry(world, keys[1], pin=boss["pin"], proven_reason="otra cosa"),  # made for another reason
        void_entry(world, keys[2], pin=boss["pin"], proven_key=keys[3]),  # made for another redemption
        # a salt the till made up: the till holds the hash, never the proof key
        void_entry(world, keys[3], pin=boss["pin"], salt=pins.new_proof_salt()),
        {**void_entry(world, keys[4], pin=None), "staff_proof": "0" * 64},
    ]
    results = one.client.sync(entries)["results"]
    assert [(r["status"], r["verified"]) for r in results] == [("recorded", False)] * 5
    assert verified_everywhere(world, one, two) == dict.fromkeys(keys, False)


def test_staff_made_before_proofs_void_unverified_until_they_change_their_pin(world):
    one, two, keys = voided_redemptions(world, 2)
    boss = world.staff("manager")
    salt = proof_salt(world, boss["id"])
    world.backend.storage.submit(lambda db: db.execute(
        "UPDATE staff SET proof_salt = NULL, proof_key = NULL WHERE id = ?", (boss["id"],)))
    first = void_entry(world, keys[0], pin=boss["pin"], salt=salt)
    assert one.client.sync([first])["results"][0]["verified"] is False
    headers = world.manager_headers(one)
    answer = world.http.post("/staff/me/pin", headers=headers, json={"pin": boss["pin"]})  # the same PIN, anew
    assert answer.status_code == 200, answer.text
    second = void_entry(world, keys[1], pin=boss["pin"], salt=answer.json()["proof_salt"])
    assert one.client.sync([second])["results"][0]["verified"] is True
    assert verified_everywhere(world, one, two) == {keys[0]: False, keys[1]: True}


def test_a_void_at_the_backend_is_by_a_caller_checked_in_person(world):
    one, two, keys = voided_redemptions(world, 2)
    by_manager = world.http.post(f"/redemptions/{keys[0]}/void", headers=world.manager_headers(one),
                                 json={"reason": "devolución"})
    by_admin = world.http.post(f"/redemptions/{keys[1]}/void", headers=world.admin_headers(), json={"reason": "x"})
    assert by_manager.json()["verified"] is None and by_admin.json()["verified"] is None
    assert verified_everywhere(world, one, two) == {keys[0]: None, keys[1]: None}


def test_a_void_entry_with_a_malformed_proof_is_refused_whole(world):
    one, _, [key] = voided_redemptions(world, 1)
    sync = lambda entry: world.http.post("/sync", headers={"Authorization": f"Bearer {one.token}"},  # noqa: E731
                                         json={"entries": [entry]})
    for proof in (5, None, "f" * 65, ["x"]):
        assert sync({**void_entry(world, key, pin=None), "staff_proof": proof}).status_code == 400
    redemption = {"key": uuid.uuid4().hex, "at": local(D, 11), "accepted": False, "reason": "malformed",
                  "method": "typed", "decided": "offline", "staff_proof": "0" * 64}
    assert sync(redemption).json()["error"]["code"] == "unknown_field"
    assert backend_voids(world) == []


# --- at the backend ------------------------------------------------------------------------------


def test_a_manager_voids_at_the_backend_and_the_till_hears_of_it(world):
    till = world.till("Caja 1")
    accepted(till.redeem(local(D, 9), world.claim(world.coffee, "c1")["token"], Method.CAMERA), "online")
    accepted(till.redeem(local(D, 9, 5), world.claim(world.coffee, "c2")["token"], Method.CAMERA,
                         online=False), "offline")
    world.clock.t = local(D, 9, 6)
    till.sync()
    online, offline = till.key_at(local(D, 9)), till.key_at(local(D, 9, 5))
    world.clock.t = local(D, 15)
    answer = world.http.post(f"/redemptions/{online}/void", headers=world.manager_headers(till),
                             json={"reason": "  devolución  "})
    assert answer.status_code == 201, answer.text
    void = answer.json()
    assert void == {**void, "redemption_key": online, "reason": "devolución", "staff_id": manager(world),
                    "at": local(D, 15), "till": None}
    answer = world.http.post(f"/redemptions/{offline}/void", headers=world.admin_headers(),
                             json={"reason": "por el admin"})
    assert answer.status_code == 201 and answer.json()["staff_id"] is None
    again = world.http.post(f"/redemptions/{online}/void", headers=world.admin_headers(), json={"reason": "x"})
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_voided"
    missing = world.http.post(f"/redemptions/{'m' * 32}/void", headers=world.admin_headers(), json={"reason": "x"})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"

    backend = backend_report(world, till)
    assert backend["count"] == 0 and backend["voids"]["count"] == 2
    assert day_report(till.store, D)["voids"]["count"] == 0  # not heard yet
    till.sync()
    assert {v["redemption_key"]: v["origin"] for v in till.store.voids()} == {online: "feed", offline: "feed"}
    assert comparable(backend) == comparable(day_report(till.store, D))
    # Voiding here now says what the backend said.
    with pytest.raises(VoidError) as caught:
        till.store.void(online, reason="x", staff_id=manager(world))
    assert caught.value.code == "already_voided"


@pytest.mark.parametrize("body, status, code", [
    ({"reason": "x" * 10_000}, 400, "invalid_value"),
    ({"reason": "x" * 201}, 400, "invalid_value"),
    ({"reason": "tab\there"}, 400, "invalid_value"),
    ({"reason": "   "}, 400, "invalid_value"),
    ({"reason": 5}, 400, "wrong_type"),
    ({"reason": None}, 400, "wrong_type"),
    ({"reason": ["x"]}, 400, "wrong_type"),
    ({"reason": {"x": 1}}, 400, "wrong_type"),
    ({}, 400, "missing_field"),
    ({"reason": "x", "staff_id": "stf_x"}, 400, "unknown_field"),
    ([], 400, "wrong_type"),
])
def test_hostile_bodies_at_the_backend(world, body, status, code):
    till = world.till("Caja 1")
    accepted(till.redeem(local(D, 9), "CAFE50", Method.PRINTED), "online")
    answer = world.http.post(f"/redemptions/{till.key_at(local(D, 9))}/void", headers=world.manager_headers(till),
                             json=body)
    assert answer.status_code == status and answer.json()["error"]["code"] == code, answer.text
    assert backend_voids(world) == []


def test_who_may_void_at_the_backend(world):
    till = world.till("Caja 1")
    accepted(till.redeem(local(D, 9), "CAFE50", Method.PRINTED), "online")
    key = till.key_at(local(D, 9))
    post = lambda headers: world.http.post(f"/redemptions/{key}/void", headers=headers,  # noqa: E731
                                           json={"reason": "x"})
    assert post(world.manager_headers(till, "cashier")).status_code == 403
    assert post({"Authorization": f"Bearer {till.token}"}).status_code == 401
    assert post({}).status_code == 401
    # A manager of another store (at that store's till) may not; another retailer's admin sees no such redemption.
    other = second_store(world, "America/Asuncion")
    assert post(other.headers).status_code == 403
    assert world.http.post("/redemptions/short/void", headers=world.admin_headers(), json={"reason": "x"}) \
        .status_code == 400
    assert backend_voids(world) == []
    # Head office (a manager of no single store) may, from any of the retailer's tills.
    head = world.backend.create_staff(world.info["retailer_id"], "Head office", "manager", "777777")
    assert post({"Authorization": f"Bearer {other.till.token}", "X-Pika-Staff": head["id"],
                 "X-Pika-Pin": "777777"}).status_code == 201
    assert [v[3] for v in backend_voids(world)] == [head["id"]]
    assert post(world.manager_headers(till)).json()["error"]["code"] == "already_voided"


# --- the retailer-wide report -----------------------------------------------------------------------


class SecondStore:
    def __init__(self, world: World, timezone: str):
        backend, retailer = world.backend, world.info["retailer_id"]
        self.store = backend.create_store(retailer, "Sucursal La Paz", timezone)
        self.manager = backend.create_staff(retailer, "Diego", "manager", "555555", self.store["id"])
        self.till = Till(world, "Caja 1", backend.create_enrollment_code(self.store["id"])["code"], folder="lapaz")
        world.tills.append(self.till)
        self.headers = {"Authorization": f"Bearer {self.till.token}", "X-Pika-Staff": self.manager["id"],
                        "X-Pika-Pin": "555555"}


def second_store(world: World, timezone: str) -> SecondStore:
    return SecondStore(world, timezone)


def test_a_retailer_report_over_two_stores_in_two_zones(world):
    lapaz_tz = ZoneInfo("America/La_Paz")  # UTC−4, an hour behind Asunción

    def lapaz(day: date, hh: int, mm: int = 0) -> float:
        return datetime.combine(day, dtime(hh, mm), lapaz_tz).timestamp()

    asu = world.till("Caja 1")
    other = second_store(world, "America/La_Paz")
    lp = other.till

    def coffee(at: float, customer: str) -> str:
        world.clock.t = at  # a claim is valid from when it is made
        return world.claim(world.coffee, customer)["token"]

    # Asunción: three coffees (one voided), one refusal, a printed code; one coffee the day before.
    before = local(D - timedelta(days=1), 23)
    accepted(asu.redeem(before, coffee(before, "a-1"), Method.CAMERA), "online")
    for i, hh in enumerate((9, 12, 18)):
        accepted(asu.redeem(local(D, hh), coffee(local(D, hh), f"a{i}"), Method.CAMERA), "online")
    accepted(asu.redeem(local(D, 13), "CAFE50", Method.PRINTED), "online")
    asu.redeem(local(D, 14), "basura", Method.TYPED)
    asu.store.void(asu.key_at(local(D, 12)), reason="anulada", staff_id=manager(world), now=local(D, 12, 5))
    # La Paz: a coffee at 8:00, one at 23:30 (00:30 of the next day in Asunción: still its D),
    # and one at 00:30 of the next day there (23:30 of D in Asunción: not its D).
    for at, customer, online in ((lapaz(D, 8), "l1", True), (lapaz(D, 23, 30), "l2", False),
                                 (lapaz(D + timedelta(days=1), 0, 30), "l3", True)):
        accepted(lp.redeem(at, coffee(at, customer), Method.SCANNER, online=online),
                 "online" if online else "offline")
    world.clock.t = lapaz(D + timedelta(days=1), 1)
    asu.sync()
    lp.sync()

    answer = world.http.get("/reports/daily", headers=world.admin_headers(),
                            params={"date": D.isoformat(), "retailer": world.info["retailer_id"]})
    assert answer.status_code == 200, answer.text
    whole = answer.json()
    assert whole["count"] == 2 + 1 + 2  # Asunción: 2 coffees + 1 printed; La Paz: 2 coffees
    assert whole["discount_total"] == {"amount": 4 * COFFEE_PYG, "currency": "PYG"}
    assert whole["discount_unpriced"] == 1 and whole["refused"]["count"] == 1 and whole["voids"]["count"] == 1
    assert whole["attempts"] == 5 + 2  # the refusal is an attempt too
    assert whole["decided"] == {"online": 4, "offline": 1}
    assert whole["timezone"] is None
    assert whole["scope"] == {"source": "backend", "store_id": None, "store_name": None, "till": None,
                              "retailer_id": world.info["retailer_id"], "retailer_name": "Café Pika",
                              "stores": sorted([{"id": world.info["store_id"], "name": "Café Pika — Asunción Centro",
                                                 "timezone": "America/Asuncion"},
                                                {"id": other.store["id"], "name": "Sucursal La Paz",
                                                 "timezone": "America/La_Paz"}], key=lambda s: s["name"])}
    # Local hours, each store's own: 8 and 23 are La Paz's, 9, 13 and 18 Asunción's.
    assert [h for h, n in enumerate(whole["by_hour"]) if n] == [8, 9, 13, 18, 23]
    assert {t["till"]: t["count"] for t in whole["by_till"]} == {
        "Café Pika — Asunción Centro / Caja 1": 3, "Sucursal La Paz / Caja 1": 2}
    assert whole["by_store"] == [
        {"store_id": world.info["store_id"], "name": "Café Pika — Asunción Centro", "count": 3,
         "discount": 2 * COFFEE_PYG, "refused": 1, "conflicts": 0, "voids": 1, "offline": 0},
        {"store_id": other.store["id"], "name": "Sucursal La Paz", "count": 2,
         "discount": 2 * COFFEE_PYG, "refused": 0, "conflicts": 0, "voids": 0, "offline": 1}]
    # It is the sum of the two stores' own reports.
    stores = [world.http.get("/reports/daily", headers=world.admin_headers(),
                             params={"date": D.isoformat(), "store": s}).json()
              for s in (world.info["store_id"], other.store["id"])]
    assert [s["count"] for s in stores] == [3, 2] and sum(s["count"] for s in stores) == whole["count"]
    assert [s["by_store"] for s in stores] == [[], []]  # one store's report: its tills are the breakdown
    lines = csv_rows(world.http.get("/reports/daily", headers=world.admin_headers(),
                                    params={"date": D.isoformat(), "retailer": world.info["retailer_id"],
                                            "format": "csv"}).text)
    assert len(lines) == whole["attempts"]
    late = next(r for r in lines if r["till"] == "Sucursal La Paz / Caja 1" and r["time"] == "23:30:00")
    assert late["date"] == D.isoformat() and late["utc"] == "2025-03-15T03:30:00Z"
    assert sum(r["status"] == "voided" for r in lines) == 1


def test_one_zone_retailer_reports_in_it(world):
    asu = world.till("Caja 1")
    second_store(world, "America/Asuncion")
    accepted(asu.redeem(local(D, 9), "CAFE50", Method.PRINTED), "online")
    whole = world.http.get("/reports/daily", headers=world.admin_headers(),
                           params={"date": D.isoformat(), "retailer": world.info["retailer_id"]}).json()
    assert whole["timezone"] == "America/Asuncion" and whole["count"] == 1
    assert len(whole["scope"]["stores"]) == 2
    # The second store redeemed nothing: it is listed all the same, as a head office wants to know.
    assert [(s["name"], s["count"], s["refused"]) for s in whole["by_store"]] == [
        ("Café Pika — Asunción Centro", 1, 0), ("Sucursal La Paz", 0, 0)]


def test_who_may_see_a_retailer_report(world):
    asu = world.till("Caja 1")
    retailer = world.info["retailer_id"]
    head = world.backend.create_staff(retailer, "Head office", "manager", "777777")  # no store: retailer-wide
    clerk = world.backend.create_staff(retailer, "Roving cashier", "cashier", "8888")
    as_head = {"Authorization": f"Bearer {asu.token}", "X-Pika-Staff": head["id"], "X-Pika-Pin": "777777"}
    as_clerk = {"Authorization": f"Bearer {asu.token}", "X-Pika-Staff": clerk["id"], "X-Pika-Pin": "8888"}
    foreign = world.backend.create_retailer("Otra")
    get = lambda headers, **params: world.http.get(  # noqa: E731
        "/reports/daily", headers=headers, params={"date": D.isoformat(), **params})

    def refused(answer, status, code):
        assert answer.status_code == status and answer.json()["error"]["code"] == code, answer.text

    assert get(world.admin_headers(), retailer=retailer).status_code == 200
    assert get(as_head, retailer=retailer).json()["scope"]["retailer_id"] == retailer
    refused(get(world.manager_headers(asu), retailer=retailer), 403, "forbidden")  # a store's manager
    refused(get(as_clerk, retailer=retailer), 403, "forbidden")  # a cashier
    refused(get(as_head, retailer=foreign["id"]), 400, "invalid_value")  # another retailer's: unknown to them
    assert get(world.admin_headers(), retailer=foreign["id"]).json()["count"] == 0  # no stores, no rows
    refused(get(world.admin_headers(), retailer="nope1234"), 400, "invalid_value")
    refused(get(world.admin_headers(), retailer="a b"), 400, "invalid_value")
    refused(get(world.admin_headers(), retailer="x" * 65), 400, "invalid_value")
    refused(get(world.admin_headers(), retailer=retailer, store=world.info["store_id"]), 400, "invalid_value")
    refused(get(as_head, retailer=retailer, store=world.info["store_id"]), 400, "invalid_value")
    refused(get({"Authorization": f"Bearer {asu.token}"}, retailer=retailer), 401, "unauthorized")


def test_the_original_row_at_the_backend_is_unchanged(world):
    till = world.till("Caja 1")
    accepted(till.redeem(local(D, 9), "CAFE50", Method.PRINTED), "online")
    key = till.key_at(local(D, 9))
    read = lambda: world.backend.read().execute("SELECT * FROM attempts WHERE key = ?", (key,)).fetchall()  # noqa
    before = read()
    assert world.http.post(f"/redemptions/{key}/void", headers=world.manager_headers(till),
                           json={"reason": "x"}).status_code == 201
    assert read() == before
    with pytest.raises(world.backend.storage.IntegrityError):  # one void per redemption, the database says so
        world.backend.storage.submit(lambda db: db.execute(
            "INSERT INTO voids (key, attempt_id, retailer_id, store_id, reason, at, received_at) "
            "SELECT 'again-key', id, retailer_id, store_id, 'x', 0, 0 FROM attempts WHERE key = ?", (key,)))


def test_a_retailer_report_judges_each_stores_day_limit_and_flags_the_real_total_overshoot(world):
    """Two stores each at a voucher's daily limit of 2 are not past it (the old report summed them: 4 > 2);
    a voucher whose total of 3 was passed offline, by tills that could not know of each other, is."""
    backend, retailer = world.backend, world.info["retailer_id"]

    def printed(code: str, **limits) -> str:
        voucher = backend.create_voucher({"retailer_id": retailer, "kind": "printed", **limits,
                                          "texts": {"es": {"title": f"Impreso {code}"}},
                                          "discount": {"kind": "amount", "value": 5000, "currency": "PYG"}})
        backend.change_voucher(voucher["id"], "publish")
        backend.create_printed_code(voucher["id"], code)
        return voucher["id"]

    daily, total = printed("DIARIO", store_day_limit=2), printed("TOTAL3", total_limit=3)
    asu, asu2 = world.till("Caja 1"), world.till("Caja 2")
    lp = second_store(world, "America/Asuncion").till
    for till in (asu, asu2, lp):
        till.sync()  # both know the vouchers
    for i, till in enumerate((asu, lp)):
        for n in range(2):
            accepted(till.redeem(local(D, 9 + i, n), "DIARIO", Method.PRINTED), "online")
            # Offline, each till sees only its own 2 of the 3: together they give 4.
            accepted(till.redeem(local(D, 11 + i, n), "TOTAL3", Method.PRINTED, online=False), "offline")
    world.clock.t = local(D, 20)
    assert asu.sync().over_limit == 0 and lp.sync().over_limit == 1

    params = {"date": D.isoformat(), "retailer": retailer}
    whole = world.http.get("/reports/daily", headers=world.admin_headers(), params=params).json()
    fraud = whole["fraud"]
    assert sorted((e["store_id"], e["uses"], e["flagged"]) for e in fraud["printed_overuse"]
                  if e["voucher_id"] == daily) == sorted([(world.info["store_id"], 2, False),
                                                          (lp.store.store_id, 2, False)])
    [over] = fraud["printed_over_total"]
    assert (over["voucher_id"], over["uses_over"], over["total_limit"], over["flagged"]) == (total, 1, 3, True)
    assert over["tills"] == ["Sucursal La Paz / Caja 1"] and over["first_at"] == local(D, 12, 1)
    assert fraud["flagged"] == 1
    lines = csv_rows(world.http.get("/reports/daily", headers=world.admin_headers(),
                                    params={**params, "format": "csv"}).text)
    assert [(r["till"], r["time"]) for r in lines if r["over_limit"] == "total_limit"] == [
        ("Sucursal La Paz / Caja 1", "12:01:00")]
    assert not any(r["over_limit"] == "store_day_limit" for r in lines)
    # The till that went past it says so in its own report and CSV too.
    mine = day_report(lp.store, D)
    assert [(e["voucher_id"], e["uses_over"]) for e in mine["fraud"]["printed_over_total"]] == [(total, 1)]
    assert [r["time"] for r in csv_rows(day_csv(lp.store, D)) if r["over_limit"] == "total_limit"] == ["12:01:00"]
    # One store past its own day limit (its other till, offline, had not heard of the 2) is flagged,
    # in the JSON and the past use in the CSV.
    accepted(asu2.redeem(local(D, 15), "DIARIO", Method.PRINTED, online=False), "offline")
    world.clock.t = local(D, 21)
    assert asu2.sync().over_limit == 1
    whole = world.http.get("/reports/daily", headers=world.admin_headers(), params=params).json()
    assert [(e["store_id"], e["uses"], e["flagged"]) for e in whole["fraud"]["printed_overuse"]
            if e["flagged"]] == [(world.info["store_id"], 3, True)]
    lines = csv_rows(world.http.get("/reports/daily", headers=world.admin_headers(),
                                    params={**params, "format": "csv"}).text)
    assert [(r["till"], r["time"]) for r in lines if r["over_limit"] == "store_day_limit"] == [
        ("Café Pika — Asunción Centro / Caja 2", "15:00:00")]
    assert [r["time"] for r in csv_rows(day_csv(asu2.store, D)) if r["over_limit"] == "store_day_limit"] == [
        "15:00:00"]  # as the backend told Caja 2, which alone saw 1 use
