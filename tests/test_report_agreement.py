"""The till's report and the backend's agree for the same data: one till, three days of generated
redemptions (online and offline, refused, near midnight, synced late, some voided at the till or at the
backend), in a July when Asunción was still at UTC−4 — so a report that assumed UTC−3 would put the late
ones on the wrong day. Some are disputes (a claim revoked before the till redeemed it offline), some voids
prove their manager and some do not.

What only one side knows is left out of the comparison: the till alone measures processing times and its
sync rounds; the backend alone corrects an attempt's time by the till's clock skew, or bounds a time it
cannot believe (`time_flag`; this till's clock is right), and knows a void's proof before the till has the
sync answer (everything here is synced). Disputes, time flags and voids' proofs reach the till in the sync
answer, so both sides tell them alike."""

from __future__ import annotations

import random
from datetime import date, timedelta

import pytest

from pos_app.core.domain import Method
from pos_app.store.report import day_csv, day_report
from report_fixtures import World, local

FIRST = date(2024, 7, 9)
DAYS = [FIRST + timedelta(days=i) for i in range(3)]
# Only the till measures these; the backend says null.
TILL_ONLY = ("processing_ms_p50", "processing_ms_p95", "sync_success_rate")


@pytest.fixture(scope="module")
def solo(tmp_path_factory, module_backend_database):
    world = World(tmp_path_factory.mktemp("report-agree"), local(FIRST, 20), module_backend_database)
    till = world.till("Caja 1")
    staff = [world.staff("cashier")["id"], world.staff("manager")["id"], None]
    rng = random.Random(6)
    used: list[str] = []
    voided: list[str] = []

    def claim(voucher):
        return world.claim(voucher, f"c{rng.random()}")

    def one(at, *, online):
        world.clock.t = at
        pick = rng.random()
        who = rng.choice(staff)
        if pick < 0.45:
            token = claim(world.coffee)["token"]
            used.append(token)
            return till.redeem(at, token, rng.choice([Method.CAMERA, Method.SCANNER, Method.IMAGE]), staff=who,
                               online=online)
        if pick < 0.6:
            return till.redeem(at, claim(world.chipa)["short_code"], Method.TYPED, staff=who, online=True)
        if pick < 0.8:
            return till.redeem(at, "CAFE50", Method.PRINTED, staff=who, online=online)
        if pick < 0.9 and used:
            return till.redeem(at, rng.choice(used), Method.CAMERA, staff=who, online=online)
        return till.redeem(at, "CAFE-5O?", Method.TYPED, staff=who, online=online)

    # Near midnight and offline, synced only hours later: 23:30 on the 10th is 03:30 UTC on the 11th.
    edges = [local(DAYS[0], 23, 59, 59), local(DAYS[1], 0, 0, 0), local(DAYS[1], 23, 30)]
    t = local(DAYS[0], 21)
    for i in range(140):
        t += rng.uniform(10, 40) * 60
        while edges and edges[0] <= t:
            at = edges.pop(0)
            world.clock.t = at
            outcome = till.redeem(at, claim(world.coffee)["token"], Method.SCANNER, online=False)
            assert outcome.verdict.accepted and outcome.decided == "offline"
        if i % 25 == 12:  # a claim revoked before an offline redemption the till's catalog did not know of
            revoked = claim(world.coffee)
            answer = world.http.post(f"/claims/{revoked['jti']}/revoke", headers=world.admin_headers())
            assert answer.status_code == 200, answer.text
            assert till.redeem(t + 5, revoked["token"], Method.CAMERA, staff=staff[0], online=False).verdict.accepted
            t += 10
        one(t, online=rng.random() < 0.6)
        if i % 10 == 9:  # a manager voids a recent redemption: at the till, or at the backend once it has it
            at_backend = i % 20 == 19
            candidates = [a["key"] for a in till.store.attempts(t - 6 * 3600, t + 1)
                          if a["status"] == "accepted" and a["key"] not in voided
                          and (a["synced_at"] is not None or not at_backend)]
            if candidates:
                world.clock.t = t + 30
                key = candidates[-1]
                voided.append(key)
                if at_backend:
                    answer = world.http.post(f"/redemptions/{key}/void", headers=world.manager_headers(till),
                                             json={"reason": f"anulada {i}"})
                    assert answer.status_code == 201, answer.text
                else:
                    # Every other one with the manager's PIN (a verified void), the others without (unverified).
                    till.store.void(key, reason=f"devolución {i} 🧉", staff_id=staff[1], now=world.clock.t,
                                    pin=world.staff("manager")["pin"] if i % 40 == 9 else None)
        if i % 15 == 14:
            world.clock.t = t + 60
            till.sync()
    assert not edges
    world.clock.t = t + 3600
    till.sync()
    assert till.store.outbox_size() == 0 and not till.store.parked()
    assert len(voided) >= 10 and {v["redemption_key"] for v in till.store.voids()} == set(voided)
    # Disputes, and voids of each proof, so the comparison covers them.
    report = day_report(till.store, DAYS[0], DAYS[-1])
    assert {d["dispute"] for d in report["disputes"]} == {"till_accepted"} and len(report["disputes"]) >= 5
    assert {v["proof"] for v in report["voids"]["items"]} == {"verified", "unverified", "at_backend"}
    yield world, till
    world.close()


def _strip(report: dict) -> dict:
    """Without what the till alone knows (scope, processing times, sync rounds): see the module's docstring."""
    return {**report, "scope": None, "kpis": {k: v for k, v in report["kpis"].items() if k not in TILL_ONLY}}


@pytest.mark.parametrize("first, last", [(d, d) for d in DAYS] + [(DAYS[0], DAYS[-1])])
def test_till_and_backend_agree(solo, first, last):
    world, till = solo
    params = {"date": first.isoformat()}
    if last != first:
        params["to"] = last.isoformat()
    answer = world.http.get("/reports/daily", headers=world.manager_headers(till), params=params)
    assert answer.status_code == 200, answer.text
    backend = answer.json()
    mine = day_report(till.store, first, last)
    assert _strip(mine) == _strip(backend)
    assert backend["kpis"]["processing_ms_p50"] is None and mine["kpis"]["processing_ms_p50"] is not None
    csv_answer = world.http.get("/reports/daily", headers=world.manager_headers(till),
                                params={**params, "format": "csv"})
    assert csv_answer.content == day_csv(till.store, first, last).encode("utf-8")


def test_the_data_is_not_trivial_and_late_ones_count_when_they_happened(solo):
    world, till = solo
    whole = day_report(till.store, DAYS[0], DAYS[-1])
    assert whole["count"] > 40 and whole["refused"]["count"] > 5 and whole["decided"]["offline"] > 10
    assert whole["voids"]["count"] >= 10 and {v["origin"] for v in till.store.voids()} == {"local", "feed"}
    assert all(item["void_reason"] and item["void_staff_id"] for item in whole["voids"]["items"])
    assert set(whole["refused"]["by_reason"]) >= {"already_redeemed", "malformed"}
    assert all(n > 0 for n in whole["by_method"].values())
    tenth = [line.split(",")[:3] for line in day_csv(till.store, DAYS[1], DAYS[1]).splitlines()[1:]]
    assert tenth[0] == ["2024-07-10", "00:00:00", "2024-07-10T04:00:00Z"]
    assert ["2024-07-10", "23:30:00", "2024-07-11T03:30:00Z"] in tenth
    assert day_csv(till.store, DAYS[0], DAYS[0]).splitlines()[-1].split(",")[:2] == ["2024-07-09", "23:59:59"]
    eleventh = [line.split(",")[2] for line in day_csv(till.store, DAYS[2], DAYS[2]).splitlines()[1:]]
    assert "2024-07-11T03:30:00Z" not in eleventh
