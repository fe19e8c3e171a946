"""The report's rules on hand-made rows: which repeated refusals are a fraud signal."""

from __future__ import annotations

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
