"""Reconciliation (server_stub/operations/reconcile.py): each kind of drift injected for real, on both engines —
found with its code, scope and subject; found again, not twice; its condition removed, gone but still open;
resolved through the API (audited), closed; the same drift again, a new finding. And the lease.

Drift comes the way it would: printed uses over a limit through offline syncs, a till's own report of its
outbox and parked entries, disputes a sync raised. What another part writes (a till's log records and heads,
operations/till_logs.py) is written into the same columns as that endpoint would; a day passing is a time
moved back in a row.
"""

from __future__ import annotations

import json
import time

import pytest

from pos_app.core import till_log
from pos_app.core.verdict import local_day
from server_stub.errors import Conflict
from server_stub.operations import reconcile
from api_fixtures import Api, new_key

DAY = 86400.0


def sync(api: Api, till, entries=(), report=None) -> dict:
    body = {"entries": list(entries), **({"till": report} if report is not None else {})}
    return api.ok(api.client.post("/sync", headers=till.auth, json=body))


def printed_entry(code: str, voucher_id: str, at: float | None = None) -> dict:
    return {"key": new_key(), "at": at or time.time() - 5, "accepted": True, "reason": None, "kind": "printed",
            "voucher_id": voucher_id, "jti": None, "code": code, "method": "printed", "staff_id": None,
            "decided": "offline", "input": code}


def findings_of(api: Api, code: str, state: str = "all") -> list[dict]:
    return api.ok(api.client.get("/findings", headers=api.admin, params={"code": code, "state": state}))["findings"]


def run(api: Api) -> dict:
    return reconcile.run(api.backend.ctx)


class Drift:
    """One kind of drift: made, taken away, made again (a new occurrence), and the finding's expected scope."""

    code = ""

    def __init__(self, api: Api):
        self.api = api
        self.till = api.enroll("Caja 1")

    def subject(self) -> str:
        return self.till.id

    def store(self) -> str | None:
        return self.api.store_id

    def device(self) -> str | None:
        return self.till.id


class PrintedDay(Drift):
    code = reconcile.PRINTED_STORE_DAY_OVER

    def __init__(self, api):
        super().__init__(api)
        self.voucher = api.voucher("printed", store_day_limit=2)
        api.ok(api.client.post("/printed-codes", headers=api.admin, json={"voucher_id": self.voucher["id"],
                                                                          "code": "DIA2"}), 201)
        self.day = local_day(time.time() - 5, "America/Asuncion")

    def make(self):
        results = sync(self.api, self.till, [printed_entry("DIA2", self.voucher["id"]) for _ in range(3)])["results"]
        assert [r["status"] for r in results] == ["recorded"] * 3 and "over_limit" in results[2]

    def remove(self):
        self.api.execute(f"UPDATE vouchers SET store_day_limit = 10 WHERE id = '{self.voucher['id']}'")

    def again(self):
        self.api.execute(f"UPDATE vouchers SET store_day_limit = 2 WHERE id = '{self.voucher['id']}'")
        sync(self.api, self.till, [printed_entry("DIA2", self.voucher["id"])])

    def subject(self):
        return f"{self.voucher['id']}/{self.api.store_id}/{self.day}"

    def device(self):
        return None


class PrintedTotal(PrintedDay):
    code = reconcile.PRINTED_TOTAL_OVER

    def __init__(self, api):
        Drift.__init__(self, api)
        self.voucher = api.voucher("printed", total_limit=2)
        api.ok(api.client.post("/printed-codes", headers=api.admin, json={"voucher_id": self.voucher["id"],
                                                                          "code": "TOTAL2"}), 201)

    def make(self):
        sync(self.api, self.till, [printed_entry("TOTAL2", self.voucher["id"]) for _ in range(3)])

    def remove(self):
        self.api.execute(f"UPDATE vouchers SET total_limit = 10 WHERE id = '{self.voucher['id']}'")

    def again(self):
        self.api.execute(f"UPDATE vouchers SET total_limit = 2 WHERE id = '{self.voucher['id']}'")
        sync(self.api, self.till, [printed_entry("TOTAL2", self.voucher["id"])])

    def subject(self):
        return self.voucher["id"]

    def store(self):
        return None


class Outbox(Drift):
    code = reconcile.OUTBOX_STUCK

    def make(self, days: float = 2):
        sync(self.api, self.till, report={"outbox": 4, "outbox_oldest_at": time.time() - days * DAY})

    def remove(self):
        sync(self.api, self.till, report={"outbox": 0, "outbox_oldest_at": None})

    def again(self):
        self.make(days=1.5)


class Parked(Drift):
    code = reconcile.PARKED_OLD

    def make(self, days: float = 3):
        sync(self.api, self.till, report={"parked": 2, "parked_oldest_at": time.time() - days * DAY})

    def remove(self):
        sync(self.api, self.till, report={"parked": 0, "parked_oldest_at": None})

    def again(self):
        self.make(days=2)


class LogBehind(Drift):
    """The till claimed (and signed) a head at seq 5 two hours ago; the backend verified up to 3."""

    code = reconcile.LOG_BEHIND

    def _columns(self, verified: int, claimed: int, ago_s: float):
        self.api.execute(f"UPDATE devices SET log_seq = {verified}, log_claimed_seq = {claimed}, "
                         f"log_claimed_at = {time.time() - ago_s} WHERE id = '{self.till.id}'")

    def make(self):
        self._columns(3, 5, 2 * 3600)

    def remove(self):
        self._columns(5, 5, 2 * 3600)

    def again(self):
        self._columns(5, 9, 3 * 3600)


class LogUnsynced(Drift):
    """A record of the till's log, received two days ago, whose attempt never arrived; then it arrives."""

    code = reconcile.LOG_UNSYNCED

    def __init__(self, api):
        super().__init__(api)
        self.seq, self.prev = 0, till_log.GENESIS
        self.entries = []

    def _record(self, received_ago_s: float):
        entry = printed_entry("CAFE50", self.api.demo_voucher("printed")["id"], at=time.time() - received_ago_s - 60)
        body = till_log.attempt_body(key=entry["key"], at=entry["at"], status="accepted", reason=None, kind="printed",
                                     voucher_id=entry["voucher_id"], jti=None, code="CAFE50", method="printed",
                                     staff_id=None, decided="offline", day="2025-01-01", store_id=self.api.store_id,
                                     till="Caja 1", input_text="CAFE50")
        self.seq += 1
        self.prev = till_log.link(self.prev, body)
        received = time.time() - received_ago_s
        self.api.execute(
            "INSERT INTO till_log (device_id, seq, kind, key, body, hash, received_at) VALUES "
            f"('{self.till.id}', {self.seq}, 'attempt', '{entry['key']}', '{body}', '{self.prev}', {received}); "
            f"UPDATE devices SET log_seq = {self.seq}, log_head = '{self.prev}', log_claimed_seq = {self.seq}, "
            f"log_claimed_at = {received} WHERE id = '{self.till.id}'")
        self.entries.append(entry)

    def make(self):
        self._record(2 * DAY)
        self._record(600)  # received ten minutes ago: not yet a finding

    def remove(self):
        sync(self.api, self.till, self.entries)

    def again(self):
        self.entries = []
        self._record(1.5 * DAY)


class Silent(Drift):
    """Caja 2 not heard from for 30 hours while Caja 1 syncs."""

    code = reconcile.TILL_SILENT

    def __init__(self, api):
        super().__init__(api)
        self.quiet = api.enroll("Caja 2")

    def _quiet_since(self, hours: float):
        self.api.execute(f"UPDATE devices SET last_seen_at = {time.time() - hours * 3600}, "
                         f"enrolled_at = {time.time() - 40 * DAY} WHERE id = '{self.quiet.id}'")

    def make(self):
        sync(self.api, self.till)
        self._quiet_since(30)

    def remove(self):
        sync(self.api, self.quiet)

    def again(self):
        self._quiet_since(26)

    def subject(self):
        return self.quiet.id

    def device(self):
        return self.quiet.id


class Dispute(Drift):
    """The till accepted offline what the backend refuses (till_accepted), received over a day ago."""

    code = reconcile.DISPUTE_OPEN

    def __init__(self, api):
        super().__init__(api)
        self.at = time.time() - 30
        self.day = local_day(self.at, "America/Asuncion")

    def make(self):
        entry = {"key": new_key(), "at": self.at, "accepted": True, "reason": None, "kind": None,
                 "voucher_id": None, "jti": None, "code": None, "method": "typed", "staff_id": None,
                 "decided": "offline", "input": "NOT-A-CODE-AT-ALL"}
        result = sync(self.api, self.till, [entry])["results"][0]
        assert result["dispute"] == "till_accepted", result
        self.api.execute(f"UPDATE attempts SET received_at = received_at - {1.5 * DAY} WHERE key = '{entry['key']}'")

    remove = None  # a dispute stays what it was: it is closed by a person's resolution

    def again(self):
        self.make()

    def subject(self):
        return f"{self.till.id}/{self.day}"


DRIFTS = [PrintedDay, PrintedTotal, Outbox, Parked, LogBehind, LogUnsynced, Silent, Dispute]


@pytest.mark.parametrize("kind", DRIFTS, ids=[d.code for d in DRIFTS])
def test_each_drift_is_found_seen_again_gone_resolved_and_found_anew(api, kind):
    drift = kind(api)
    assert run(api)["by_code"][drift.code] == 0 and findings_of(api, drift.code) == []
    drift.make()
    answer = run(api)
    assert answer["by_code"][drift.code] == 1 and answer["opened"] == 1, answer
    [found] = findings_of(api, drift.code)
    assert (found["subject"], found["retailer_id"], found["store_id"], found["device_id"], found["state"]) == \
        (drift.subject(), api.retailer_id, drift.store(), drift.device(), "open")
    assert found["detail"]["evidence"] is not None

    again = run(api)  # found again: seen, not a second finding
    assert (again["opened"], again["seen"], again["gone"]) == (0, 1, 0)
    [seen] = findings_of(api, drift.code)
    assert seen["id"] == found["id"] and seen["seen_at"] > found["seen_at"]

    if drift.remove is not None:
        drift.remove()
        assert run(api)["gone"] == 1
        [gone] = findings_of(api, drift.code)
        assert gone["state"] == "gone" and gone["gone_at"] is not None and gone["resolved_at"] is None
        assert run(api)["gone"] == 0  # marked once

    note = "Revisado con el encargado — ñandutí 🧉"
    closed = api.ok(api.client.post(f"/findings/{found['id']}/resolve", headers=api.admin, json={"note": note}))
    assert closed["state"] == "resolved" and closed["resolution"] == note and closed["resolved_by"]
    audited = api.rows("SELECT target, detail FROM audit_log WHERE action = 'finding.resolve'")
    assert [(t, json.loads(d)["note"]) for t, d in audited] == [(str(found["id"]), note)]
    assert findings_of(api, drift.code, "open") == []
    assert run(api)["opened"] == 0  # resolved as it is: not raised again

    drift.again()
    assert run(api)["opened"] == 1
    newer = findings_of(api, drift.code, "open")
    assert [f["subject"] for f in newer] == [drift.subject()] and newer[0]["id"] != found["id"]
    assert len(findings_of(api, drift.code)) == 2


def test_a_store_day_under_its_limit_and_other_days_are_not_found(api):
    till = api.enroll()
    api.execute(f"UPDATE devices SET enrolled_at = {time.time() - 10 * DAY} WHERE id = '{till.id}'")  # days of entries
    voucher = api.voucher("printed", store_day_limit=2)
    api.ok(api.client.post("/printed-codes", headers=api.admin, json={"voucher_id": voucher["id"], "code": "PAR2"}),
           201)
    # two a day over four days: six uses in all, no day over
    sync(api, till, [printed_entry("PAR2", voucher["id"], at=time.time() - d * DAY - 60 * i)
                     for d in range(4) for i in range(2)])
    assert run(api)["by_code"][reconcile.PRINTED_STORE_DAY_OVER] == 0
    sync(api, till, [printed_entry("PAR2", voucher["id"], at=time.time() - 2 * DAY - 30)])  # the day before yesterday
    run(api)
    [found] = findings_of(api, reconcile.PRINTED_STORE_DAY_OVER)
    assert found["subject"].endswith(local_day(time.time() - 2 * DAY - 30, "America/Asuncion"))
    assert (found["detail"]["uses"], found["detail"]["limit"]) == (3, 2)


def test_a_store_with_one_till_is_not_silent_and_a_revoked_till_is_never(api):
    lone = api.enroll("Caja sola")
    api.execute(f"UPDATE devices SET last_seen_at = {time.time() - 3 * DAY} WHERE id = '{lone.id}'")
    assert run(api)["by_code"][reconcile.TILL_SILENT] == 0  # no other till of its store synced either
    other = api.enroll("Caja 2")
    sync(api, other)
    assert run(api)["by_code"][reconcile.TILL_SILENT] == 1
    api.ok(api.client.post(f"/devices/{lone.id}/revoke", headers=api.admin, json={"reason": "robada"}))
    assert run(api)["by_code"][reconcile.TILL_SILENT] == 0


def test_the_till_report_keeps_parked_entries_and_refuses_bad_ones(api):
    till = api.enroll()
    oldest = time.time() - 3600
    sync(api, till, report={"parked": 3, "parked_oldest_at": oldest})
    assert api.rows(f"SELECT parked_size, parked_oldest_at FROM devices WHERE id = '{till.id}'") == [(3, oldest)]
    before = api.snapshot()
    for report in ({"parked": -1}, {"parked": "3"}, {"parked": True}, {"parked": 10**10}, {"parked_oldest_at": -5},
                   {"parked_oldest_at": 1e300}, {"parked_oldest_at": "ayer"}, {"parked": 1, "extra": 2}):
        response = api.client.post("/sync", headers=till.auth, json={"entries": [], "till": report})
        assert response.status_code == 400, report
        assert response.json()["error"]["code"] in ("invalid_value", "wrong_type", "unknown_field")
    assert api.snapshot() == before


def test_one_run_at_a_time_the_lease(api):
    ctx = api.backend.ctx
    assert reconcile.take_lease(ctx, "other-process")
    assert not reconcile.take_lease(ctx, "a-third")
    with pytest.raises(Conflict) as refused:
        reconcile.run(ctx)
    assert refused.value.code == "reconcile_running"
    response = api.client.post("/reconcile", headers=api.admin)
    assert response.status_code == 409 and response.json()["error"]["code"] == "reconcile_running"
    reconcile.release_lease(ctx, "other-process")
    assert run(api)["opened"] == 0
    # a crashed holder's lease lapses
    assert reconcile.take_lease(ctx, "crashed", ttl_s=0.05)
    time.sleep(0.1)
    assert run(api)["opened"] == 0


def test_the_night_is_claimed_once(api):
    ctx = api.backend.ctx
    assert reconcile.claim_night(ctx, "2030-01-01T03:00:00")
    assert not reconcile.claim_night(ctx, "2030-01-01T03:00:00")
    assert not reconcile.claim_night(ctx, "2029-12-31T03:00:00")
    assert reconcile.claim_night(ctx, "2030-01-02T03:00:00")


def test_the_command_runs_it(api, capsys):
    from server_stub.__main__ import main

    Outbox(api).make()
    api.backend.close()
    assert main(["reconcile", "--data", str(api.path)]) == 0
    assert json.loads(capsys.readouterr().out)["by_code"][reconcile.OUTBOX_STUCK] == 1
    assert main(["reconcile", "--data", str(api.path), "--retailer", "ret_nope"]) == 1
    assert "not_found" in capsys.readouterr().err
    api.backend = type(api.backend)(api.path)


def test_a_log_record_naming_another_tills_attempt_is_still_unsynced(api):
    # A till that read a peer's record off the LAN gives its own hidden redemption that record's key: the
    # backend holds an attempt under that key, but not from this till.
    drift = LogUnsynced(api)
    drift.make()
    peer = api.enroll("Caja 2")
    sync(api, peer, drift.entries)
    assert api.rows("SELECT count(*) FROM attempts WHERE key = ? AND device_id = ?",
                    (drift.entries[0]["key"], peer.id))[0][0] == 1
    run(api)
    found = findings_of(api, reconcile.LOG_UNSYNCED, "open")
    assert [f["subject"] for f in found] == [drift.till.id] and found[0]["gone_at"] is None
    assert [n["key"] for n in found[0]["detail"]["named"]] == [drift.entries[0]["key"]]
