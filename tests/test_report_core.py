"""The report's rules on hand-made rows: which repeated refusals are a fraud signal; disputes and voids'
proofs listed without changing what is counted."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from zoneinfo import ZoneInfo

from pos_app.core import report

D = date(2025, 3, 14)
TZ = "America/Asuncion"


def _at(hour: int, minute: int) -> float:
    return datetime(D.year, D.month, D.day, hour, minute, tzinfo=ZoneInfo(TZ)).timestamp()


def _refused(i: int, **fields) -> report.Row:
    return report.Row(key=f"k{i}", at=_at(10, i), status="refused", decided="online", method="typed",
                      till="Caja 1", **fields)


def _fraud(rows) -> dict:
    return report.build(rows, first=D, last=D, tz_name=TZ, vouchers={}, staff={})["fraud"]


def test_a_typed_or_app_code_refused_three_times_is_flagged():
    rows = [_refused(i, reason="unknown_code", code="ABCDEFGHJ") for i in range(3)]
    rows += [_refused(10 + i, reason="already_redeemed", kind="personal", jti="j1", voucher_id="v")
             for i in range(3)]
    fraud = _fraud(rows)
    assert [(e["jti"], e["code"], e["refusals"]) for e in fraud["repeated_refusals"]] \
        == [(None, "ABCDEFGHJ", 3), ("j1", None, 3)]
    assert fraud["flagged"] == 2


def test_a_booklet_code_refused_again_and_again_is_customers_not_fraud():
    rows = [_refused(i, reason="limit_reached", kind="printed", code="CAFE50", voucher_id="v") for i in range(6)]
    fraud = _fraud(rows)
    assert fraud["repeated_refusals"] == [] and fraud["flagged"] == 0


def test_two_refusals_are_not_yet_a_signal():
    assert _fraud([_refused(i, reason="expired", kind="personal", jti="j2") for i in range(2)]) \
        ["repeated_refusals"] == []


def _build(rows) -> dict:
    return report.build(rows, first=D, last=D, tz_name=TZ, vouchers={}, staff={}, scope={"store_id": "s1"})


def test_disputes_are_listed_oldest_first_and_counted_as_their_status_says():
    said = {"accepted": True, "reason": None, "kind": "personal", "voucher_id": "v", "jti": "j", "code": None,
            "staff_id": None}
    rows = [_refused(5, reason="revoked", dispute="till_accepted", till_said=said, till_at=_at(10, 5)),
            report.Row(key="late", at=_at(10, 1), status="accepted", decided="offline", method="camera",
                       till="Caja 1", time_flag="too_old", till_said=said, till_at=_at(9, 0)),
            _refused(7, reason="expired", dispute="till_refused", till_said={**said, "accepted": False}),
            _refused(8, reason="expired")]
    built = _build(rows)
    assert [(d["key"], d["dispute"], d["reason"], d["time_flag"], d["store_id"]) for d in built["disputes"]] == [
        ("late", None, None, "too_old", "s1"), ("k5", "till_accepted", "revoked", None, "s1"),
        ("k7", "till_refused", None, None, "s1")]
    assert built["count"] == 1 and built["refused"]["by_reason"] == {"expired": 2, "revoked": 1}
    assert built["disputes"][1]["till_said"] == said and built["disputes"][1]["local_time"].startswith("2025-03-14T10:05")


def test_disputes_are_bounded():
    rows = [_refused(i % 60, reason="revoked", dispute="unproven") for i in range(report.DISPUTES_MAX + 50)]
    rows = [row._replace(key=f"k{i}") for i, row in enumerate(rows)]
    assert len(_build(rows)["disputes"]) == report.DISPUTES_MAX


def test_a_voids_proof_and_verified_and_the_csv_columns():
    rows = [report.Row(key=f"v{i}", at=_at(11, i), status="accepted", decided="offline", method="camera",
                       till="Caja 1", voided=True, void_reason="r", void_at=_at(12, i), void_proof=proof)
            for i, proof in enumerate(report.VOID_PROOFS + ("forged",))]
    rows.append(_refused(30, reason="revoked", dispute="till_accepted"))
    items = _build(rows)["voids"]["items"]
    assert [(i["proof"], i["verified"]) for i in items] == [
        ("verified", True), ("unverified", False), ("at_backend", None), ("before_proofs", None), ("pending", None),
        (None, None)]
    lines = list(csv.DictReader(io.StringIO(report.to_csv(rows, first=D, last=D, tz_name=TZ, vouchers={}, staff={}))))
    assert [(line["status"], line["void_proof"], line["dispute"]) for line in lines] == [
        ("refused", "", "till_accepted"), ("voided", "verified", ""), ("voided", "unverified", ""), ("voided", "at_backend", ""),
        ("voided", "before_proofs", ""), ("voided", "pending", ""), ("voided", "", "")]  # no word it does not know
