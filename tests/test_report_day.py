"""The day report over a known day at two tills and the backend: exact numbers, near midnight,
offline redemptions synced the next day, a conflict, fraud signals; the CLI's JSON and CSV."""

from __future__ import annotations

import csv
import io
import json
from contextlib import nullcontext
from datetime import date, timedelta

import pytest

from pos_app.cli.commands import EXIT_USAGE, main
from pos_app.core import report
from pos_app.core.domain import Method
from pos_app.store.report import day_csv, day_report
from report_fixtures import World, local

D = date(2025, 3, 14)  # a Friday; Asunción is at UTC−3 all year since October 2024
BEFORE, AFTER = D - timedelta(days=1), D + timedelta(days=1)


@pytest.fixture(scope="module")
def day(tmp_path_factory, module_backend_database):
    """Two tills of one store through a day; what each step was is in the comments."""
    world = World(tmp_path_factory.mktemp("report-day"), local(BEFORE, 20), module_backend_database)
    ana, bruno = world.staff("cashier")["id"], world.staff("manager")["id"]
    # A printed campaign with a tight daily limit, known to both tills before the day starts.
    pan = world.backend.create_voucher({"retailer_id": world.info["retailer_id"], "kind": "printed",
                                        "texts": {"es": {"title": "Pan dulce"}, "gn": {"title": "Mbujape he'ẽ"}},
                                        "discount": {"kind": "amount", "value": 5000, "currency": "PYG"},
                                        "store_day_limit": 2})
    world.backend.change_voucher(pan["id"], "publish")
    world.backend.create_printed_code(pan["id"], "PAN2")
    one, two = world.till("Caja 1"), world.till("Caja 2")

    def coffee(customer):
        return world.claim(world.coffee, customer)

    def ok(outcome, decided):
        assert outcome.verdict.accepted and outcome.decided == decided, outcome.to_json()

    ok(one.redeem(local(BEFORE, 23, 59, 30), coffee("c0")["token"], Method.CAMERA, staff=ana), "online")
    ok(one.redeem(local(D, 0, 0, 10), coffee("c1")["token"], Method.CAMERA, staff=ana), "online")
    ok(one.redeem(local(D, 9, 15), world.claim(world.chipa, "c2")["short_code"], Method.TYPED, staff=ana), "online")
    ok(one.redeem(local(D, 12, 0), "CAFE50", Method.PRINTED, staff=ana), "online")
    garbage = one.redeem(local(D, 12, 1), "no es un código", Method.TYPED, staff=ana)
    assert garbage.verdict.reason == "malformed"
    x = coffee("cx")
    ok(one.redeem(local(D, 14, 0), x["token"], Method.CAMERA, staff=ana), "online")
    # Caja 2 has not heard of it (no sync since): it accepts the same token offline.
    ok(two.redeem(local(D, 15, 0), x["token"], Method.CAMERA, online=False), "offline")
    for minute in (0, 1, 2):  # someone tries the used code again and again
        assert one.redeem(local(D, 16, minute), x["token"], Method.CAMERA, staff=ana).verdict.reason \
            == "already_redeemed"
    for i in range(12):  # twelve booklet coupons in 55 seconds at one till
        ok(one.redeem(local(D, 18, 0, 5 * i), "CAFE50", Method.PRINTED, staff=ana), "online")
    ok(two.redeem(local(D, 19, 0), "PAN2", Method.PRINTED, online=False), "offline")
    ok(two.redeem(local(D, 19, 0, 30), "PAN2", Method.PRINTED, online=False), "offline")
    ok(one.redeem(local(D, 19, 5), "PAN2", Method.PRINTED, staff=ana), "online")  # the backend counts 0 so far
    ok(one.redeem(local(D, 23, 59, 50), coffee("c3")["token"], Method.SCANNER, staff=bruno, online=False), "offline")
    ok(one.redeem(local(AFTER, 0, 0, 5), coffee("c4")["token"], Method.CAMERA, staff=ana), "online")
    # The next morning both tills sync: the offline redemptions reach the backend a day late.
    world.clock.t = local(AFTER, 10)
    one.sync()
    summary = two.sync()
    assert summary.recorded >= 2
    assert [c["winner"]["till"] for c in two.store.conflicts()] == ["Caja 1"]
    world.pan = pan["id"]
    world.x = x
    yield world, one, two
    world.close()


def _backend(world, headers, **params) -> dict:
    response = world.http.get("/reports/daily", headers=headers, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_backend_day_report_counts_what_happened_that_local_day(day):
    world, one, _ = day
    r = _backend(world, world.manager_headers(one), date=D.isoformat())
    assert r["from"] == r["to"] == r["date"] == "2025-03-14" and r["timezone"] == "America/Asuncion"
    assert r["scope"] == {"source": "backend", "store_id": world.info["store_id"],
                          "store_name": "Café Pika — Asunción Centro", "till": None}
    # 2 coffees at Caja 1 + the one offline just before midnight, chipa, 13 CAFE50, 3 PAN2.
    assert r["count"] == 20
    assert r["discount_total"] == {"amount": 3 * 12000 + 3 * 5000, "currency": "PYG"}
    assert r["discount_unpriced"] == 14 and r["discount_other_currencies"] == {}
    assert r["attempts"] == 25
    assert r["by_hour"] == [1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 1, 0, 0, 0, 12, 3, 0, 0, 0, 1]
    assert r["by_method"] == {"camera": 2, "scanner": 1, "typed": 1, "printed": 16, "image": 0}
    assert r["decided"] == {"online": 17, "offline": 3}
    personal = {e["voucher_id"]: (e["count"], e["discount_total"]) for e in r["by_voucher"]["personal"]}
    assert personal == {world.coffee: (3, 36000), world.chipa: (1, 0)}
    printed = {e["voucher_id"]: (e["count"], e["codes"], e["discount_total"]) for e in r["by_voucher"]["printed"]}
    assert printed == {world.cafe50: (13, {"CAFE50": 13}, 0), world.pan: (3, {"PAN2": 3}, 15000)}
    assert [e["title"] for e in r["by_voucher"]["printed"]] == ["Café chico a mitad de precio", "Pan dulce"]
    cashiers = {e["name"]: (e["count"], e["refused"], e["discount"]) for e in r["by_cashier"]}
    assert cashiers == {"Ana Benítez": (17, 4, 12000 * 2 + 5000), "Bruno Ayala": (1, 0, 12000), "": (2, 0, 10000)}
    assert [(t["till"], t["count"], t["refused"], t["conflicts"], t["offline"]) for t in r["by_till"]] \
        == [("Caja 1", 18, 4, 0, 1), ("Caja 2", 2, 0, 1, 2)]
    assert r["refused"] == {"count": 4, "by_reason": {"already_redeemed": 3, "malformed": 1}}
    [conflict] = r["conflicts"]["items"]
    assert r["conflicts"]["count"] == 1
    assert conflict["till"] == "Caja 2" and conflict["jti"] == world.x["jti"]
    assert conflict["local_time"] == "2025-03-14T15:00:00-03:00"
    assert conflict["winner"] == {"jti": world.x["jti"], "at": local(D, 14), "till": "Caja 1",
                                  "store_id": world.info["store_id"]}
    assert r["voids"] == {"count": 0, "items": []}
    fraud = r["fraud"]
    assert [(v["till"], v["peak_per_minute"], v["flagged"]) for v in fraud["velocity"]] \
        == [("Caja 1", 12, True), ("Caja 2", 2, False)]
    assert fraud["velocity"][0]["peak_at"] == local(D, 18)
    [repeated] = fraud["repeated_refusals"]
    assert (repeated["jti"], repeated["refusals"], repeated["reasons"], repeated["tills"]) \
        == (world.x["jti"], 3, {"already_redeemed": 3}, ["Caja 1"])
    assert fraud["printed_overuse"] == [{"voucher_id": world.pan, "store_id": None, "date": "2025-03-14", "uses": 3,
                                         "store_day_limit": 2, "flagged": True}]
    assert fraud["flagged"] == 3
    kpis = r["kpis"]
    assert kpis["offline_share"] == round(8 / 25, 4) and kpis["camera_share"] == 0.1
    assert kpis["typed_share"] == 0.05 and kpis["conflict_rate"] == round(1 / 21, 4)
    assert kpis["refusal_rate"] == 0.16
    assert kpis["processing_ms_p50"] is None and kpis["sync_success_rate"] is None  # only tills measure these
    assert r["by_day"] == [{"date": "2025-03-14", "count": 20, "discount": 51000, "refused": 4, "conflicts": 1,
                            "offline": 8}]


def test_the_days_around_and_a_range(day):
    world, one, _ = day
    headers = world.manager_headers(one)
    assert _backend(world, headers, date=BEFORE.isoformat())["count"] == 1  # 23:59:30 the evening before
    assert _backend(world, headers, date=AFTER.isoformat())["count"] == 1  # 00:00:05 the morning after
    r = _backend(world, headers, date=BEFORE.isoformat(), to=AFTER.isoformat())
    assert (r["from"], r["to"], r["date"], r["count"]) == ("2025-03-13", "2025-03-15", None, 22)
    assert [(d["date"], d["count"], d["discount"]) for d in r["by_day"]] \
        == [("2025-03-13", 1, 12000), ("2025-03-14", 20, 51000), ("2025-03-15", 1, 12000)]
    assert r["discount_total"]["amount"] == 75000
    assert _backend(world, headers, date="2025-03-16")["count"] == 0


def test_each_till_reports_its_own_attempts(day):
    world, one, two = day
    mine = day_report(one.store, D)
    assert mine["scope"]["till"] == "Caja 1" and mine["scope"]["source"] == "till"
    assert (mine["count"], mine["attempts"], mine["conflicts"]["count"]) == (18, 22, 0)
    assert mine["discount_total"]["amount"] == 12000 * 3 + 5000
    assert mine["kpis"]["sync_success_rate"] == 1.0
    assert mine["kpis"]["processing_ms_p50"] is not None
    theirs = day_report(two.store, D)
    assert (theirs["count"], theirs["conflicts"]["count"], theirs["attempts"]) == (2, 1, 3)
    assert theirs["conflicts"]["items"][0]["winner"]["till"] == "Caja 1"
    # Two PAN2 uses reach the limit of two at this till: shown, not flagged (the backend saw three).
    assert theirs["fraud"]["printed_overuse"][0]["uses"] == 2
    assert theirs["fraud"]["printed_overuse"][0]["flagged"] is False
    backend = _backend(world, world.manager_headers(two), date=D.isoformat())
    assert backend["conflicts"]["items"] == theirs["conflicts"]["items"]


def test_cli_json_and_csv(day, tmp_path, capsys):
    _, one, _ = day
    assert main(["report", "--data", str(one.data), "--date", "2025-03-14"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == day_report(one.store, D)
    out = tmp_path / "día.csv"
    assert main(["report", "--data", str(one.data), "--date", "2025-03-14", "--format", "csv",
                 "--out", str(out)]) == 0
    data = out.read_bytes()
    assert data.count(b"\r\n") == 23 and data.startswith(b"date,time,utc,till,")
    lines = list(csv.DictReader(io.StringIO(data.decode("utf-8"), newline="")))
    assert [tuple(line) for line in lines[:1]] == [report.CSV_FIELDS]
    assert len(lines) == 22
    first = lines[0]
    assert (first["date"], first["time"], first["utc"], first["till"], first["staff"], first["method"],
            first["decided"], first["status"], first["discount"], first["currency"]) \
        == ("2025-03-14", "00:00:10", "2025-03-14T03:00:10Z", "Caja 1", "Ana Benítez", "camera", "online",
            "accepted", "12000", "PYG")
    assert [line["status"] for line in lines].count("refused") == 4
    last = lines[-1]
    assert (last["time"], last["method"], last["decided"], last["staff"]) == ("23:59:50", "scanner", "offline",
                                                                             "Bruno Ayala")
    assert data == day_csv(one.store, D).encode("utf-8")


@pytest.mark.parametrize("args", [
    ["--date", "2025-02-30"], ["--date", "14/03/2025"], ["--date", "2025-03-14", "--to", "2025-03-13"],
    ["--date", "2025-01-01", "--to", "2025-12-31"], ["--date", "2025-03-14", "--format", "xml"],
])
def test_cli_refuses_bad_days_and_formats(day, args, capsys):
    _, one, _ = day
    # argparse itself refuses an unknown format (SystemExit 2); the rest are the command's usage errors.
    with pytest.raises(SystemExit) if "xml" in args else nullcontext():
        assert main(["report", "--data", str(one.data), *args]) == EXIT_USAGE
    assert "error" in capsys.readouterr().err
