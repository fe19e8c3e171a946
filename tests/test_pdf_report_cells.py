"""How the day report writes a value in a cell (pos_app/pdf/report_cells.py), on the JSON's odd values: a field
missing, of the wrong type or hostile gives a dash or the value cleaned, never an exception that stops the PDF."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from pos_app.pdf import report_cells as cell
from pos_app.words.i18n import using

ASUNCION = ZoneInfo("America/Asuncion")


def plain(text: str) -> str:
    """babel's no-break spaces as plain ones (which spaces CLDR puts where moves with its version)."""
    return text.replace("\u00a0", " ").replace("\u202f", " ")
AT = datetime(2025, 3, 14, 9, 5, tzinfo=ASUNCION).timestamp()


def test_counts_shares_and_money_of_odd_values():
    with using("es"):
        assert cell.count(1234) == "1.234" and cell.count(True) == "0" and cell.count("7") == "0"
        assert plain(cell.share(0.25)) == "25%" and cell.share("x") == cell.share(None) != cell.share(0)
        assert plain(cell.money(12000, "PYG")) == "Gs. 12.000"
        assert cell.money("doce\x00mil", "PYG") == "doce mil"  # not a number: shown cleaned
        assert plain(cell.discount({"kind": "amount", "value": 7000})) == "Gs. 7.000"
        assert cell.discount({"kind": "amount"}) == cell.discount(None) == cell.discount({"value": "x"}) == "—"


def test_codes_and_a_jti_in_a_cell():
    assert cell.code({"code": "KAAY"}) == "KAAY"
    assert cell.code({"jti": "0123456789abcdef"}) == "01234567…"
    assert cell.code({"jti": "short"}) == "short" and cell.code({}) == "—"
    with using("en"):
        assert cell.codes({"MBA": 2, "KAAY": 5, "odd": "x"}) == "KAAY × 5, MBA × 2, odd × 0"
    assert cell.codes({}) == cell.codes(None) == "—"
    with using("es"):
        assert cell.day("2025-03-14").startswith("14 mar") and cell.day("2025-03-14").endswith("2025")
    assert cell.day("not a day\x07") == "not a day"


def test_the_context_tells_moments_and_names():
    report = {"date": "2025-03-14", "timezone": "America/Asuncion",
              "by_cashier": [{"staff_id": "s1", "name": "Ana Benítez"}],
              "by_voucher": {"personal": [{"voucher_id": "v1", "title": "Café"}], "printed": []}}
    with using("en"):
        ctx = cell.Context(report)
        assert plain(ctx.when(AT)) == "9:05 AM" and ctx.when(None) == ctx.when(float("nan")) == ctx.when(True) == "—"
        assert ctx.person("s1") == "Ana Benítez" and ctx.person("s9") == "s9"
        assert ctx.person(None) == "No cashier logged in"
        assert ctx.voucher("v1") == "Café" and ctx.voucher("v9") == "v9" and ctx.voucher(None) == "—"
        assert cell.Context({"date": "2025-03-14", "timezone": "Mars/Olympus"}).tz == "UTC"  # unknown here
        several = cell.Context({"from": "2025-03-14", "to": "2025-03-20", "timezone": None})  # zones differ
        assert plain(several.when(AT)) == "3/14/25, 12:05 PM UTC"
        assert plain(ctx.item_when({"local_time": "2025-03-14T09:05:00-03:00", "at": 0})) == "9:05 AM"
        assert plain(several.item_when({"local_time": "2025-03-14T09:05:00-03:00"})) == "3/14/25, 9:05 AM"
