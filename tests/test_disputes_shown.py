"""Disputes and unproven voids reach the manager, at the till and at the backend, on screen and on paper.

A real flow on one settable clock: a claim is revoked at the backend, then a till that has not synced since
redeems it offline (the till gives the discount; the backend, judging the entry itself, refuses it:
`till_accepted`). The till voids one redemption with the manager's PIN and one without; a manager voids a
third at the backend. After a sync the till's attempt holds the backend's judgement, and the till's report
view, both programs' JSON, PDF (read back with pdftotext) and CSV show the dispute and each void's proof.
"""

from __future__ import annotations

import csv
import io
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

from pos_app.cli.commands import STORE_NAME
from pos_app.core.domain import Method
from pos_app.pdf.day_report import render
from pos_app.store import TillStore
from pos_app.store.report import day_csv, day_report
from pos_app.words import i18n
from report_fixtures import World, local

D = date(2025, 3, 14)


@dataclass
class Day:
    store: Path  # the till's store file, closed
    world: World
    till_token: str
    disputed: str  # the key of the revoked claim's offline redemption
    without_pin: str  # keys of voided redemptions: at the till without a PIN, with it, at the backend
    with_pin: str
    at_backend: str
    manager: dict
    backend_pdf: bytes
    backend_csv: str
    backend_json: dict


@pytest.fixture(scope="module")
def day(tmp_path_factory, module_backend_database):
    world = World(tmp_path_factory.mktemp("disputes"), local(D, 8), module_backend_database)
    till = world.till("Caja 1")
    cashier, manager = world.staff("cashier"), world.staff("manager")

    revoked = world.claim(world.coffee, "revoked-one")
    world.clock.t = local(D, 9)
    answer = world.http.post(f"/claims/{revoked['jti']}/revoke", headers=world.admin_headers())
    assert answer.status_code == 200, answer.text
    outcome = till.redeem(local(D, 10), revoked["token"], Method.CAMERA, staff=cashier["id"], online=False)
    assert outcome.verdict.accepted and outcome.decided == "offline"  # its catalog did not know yet
    disputed = till.key_at(local(D, 10))

    keys = []
    for hour in (11, 12, 13):
        token = world.claim(world.coffee, f"c{hour}")["token"]
        assert till.redeem(local(D, hour), token, Method.CAMERA, staff=cashier["id"]).verdict.accepted
        keys.append(till.key_at(local(D, hour)))
    without_pin, with_pin, at_backend = keys
    till.store.void(without_pin, reason="el cliente se arrepintió", staff_id=manager["id"], now=local(D, 14))
    till.store.void(with_pin, reason="cupón equivocado", staff_id=manager["id"], now=local(D, 14, 1),
                    pin=manager["pin"])
    world.clock.t = local(D, 14, 2)
    answer = world.http.post(f"/redemptions/{at_backend}/void", headers=world.manager_headers(till),
                             json={"reason": "venta anulada"})
    assert answer.status_code == 201, answer.text
    world.clock.t = local(D, 18)
    till.sync()
    assert till.store.outbox_size() == 0 and not till.store.parked()

    params = {"date": D.isoformat()}
    get = lambda **more: world.http.get("/reports/daily", headers=world.manager_headers(till), params={**params, **more})
    backend_json, backend_csv, backend_pdf = get().json(), get(format="csv").text, get(format="pdf", lang="en").content
    path = till.data / STORE_NAME
    token = till.token
    till.close()
    world.tills.remove(till)
    yield Day(path, world, token, disputed, without_pin, with_pin, at_backend, manager, backend_pdf, backend_csv,
              backend_json)
    world.close()


def _pdf_text(tmp_path: Path, pdf: bytes) -> str:
    path = tmp_path / "report.pdf"
    path.write_bytes(pdf)
    text = subprocess.run(["pdftotext", "-layout", "-enc", "UTF-8", str(path), "-"], capture_output=True, text=True,
                          check=True).stdout
    return " ".join(text.split())


def _csv_rows(text: str) -> dict[str, dict]:
    return {row["key"]: row for row in csv.DictReader(io.StringIO(text))}


def test_the_till_keeps_the_backends_judgement_on_the_attempt(day):
    with sqlite3.connect(day.store) as db:
        row = db.execute("SELECT status, accepted, reason, dispute, backend_reason, synced_at FROM attempts"
                         " WHERE key = ?", (day.disputed,)).fetchone()
        proofs = dict(db.execute("SELECT redemption_key, verified FROM voids"))
    # Refused now, as the backend counts it; `accepted` still says the till gave the discount.
    assert row[:5] == ("refused", 1, None, "till_accepted", "revoked") and row[5] is not None
    assert proofs == {day.without_pin: 0, day.with_pin: 1, day.at_backend: None}


def test_both_reports_list_the_dispute_and_each_voids_proof_alike(day):
    with TillStore(day.store) as store:
        mine = day_report(store, D)
    for report in (mine, day.backend_json):
        [dispute] = report["disputes"]
        assert dispute["key"] == day.disputed and dispute["dispute"] == "till_accepted"
        assert dispute["reason"] == "revoked" and dispute["till_said"]["accepted"] is True
        assert {v["key"]: (v["proof"], v["verified"]) for v in report["voids"]["items"]} == {
            day.without_pin: ("unverified", False), day.with_pin: ("verified", True),
            day.at_backend: ("at_backend", None)}
        assert report["count"] == 0 and report["refused"]["by_reason"] == {"revoked": 1}
    assert mine["disputes"] == day.backend_json["disputes"]
    assert mine["voids"] == day.backend_json["voids"]


def test_both_csvs_name_the_dispute_and_the_proofs(day):
    with TillStore(day.store) as store:
        mine = day_csv(store, D)
    assert mine == day.backend_csv
    rows = _csv_rows(mine)
    assert (rows[day.disputed]["status"], rows[day.disputed]["reason"], rows[day.disputed]["dispute"]) == (
        "refused", "revoked", "till_accepted")
    assert {key: rows[key]["void_proof"] for key in (day.without_pin, day.with_pin, day.at_backend)} == {
        day.without_pin: "unverified", day.with_pin: "verified", day.at_backend: "at_backend"}
    assert all(rows[key]["void_proof"] == "" for key in rows if key not in (day.without_pin, day.with_pin,
                                                                            day.at_backend))


@pytest.mark.parametrize("side", ["till", "backend"])
def test_both_pdfs_show_the_dispute_and_mark_the_unproven_void(day, tmp_path, side):
    if side == "till":
        with TillStore(day.store) as store:
            pdf = render(day_report(store, D, language="en"), language="en")
    else:
        pdf = day.backend_pdf
    text = _pdf_text(tmp_path, pdf)
    assert "Disputes: the backend judged otherwise" in text
    assert "Gave the discount" in text and "Refuses it: Voucher revoked" in text
    assert "not proven: no PIN proof from the till" in text
    assert "proven by the manager's PIN" in text and "made at the backend, in person" in text
    assert "No disputes" not in text


def test_a_day_without_disputes_says_so_on_paper(day, tmp_path):
    with TillStore(day.store) as store:
        quiet = day_report(store, date(2025, 3, 15), language="en")
    assert _pdf_text(tmp_path, render(quiet, language="en")).count("No disputes: the backend agreed with every till")


def test_the_tills_report_view_shows_the_dispute_and_the_proofs(qtbot, day, tmp_path):
    from pos_app.gui.app import make_application
    from pos_app.gui.main_window import TillWindow

    make_application()
    path = tmp_path / "till.sqlite3"
    shutil.copy(day.store, path)
    noon = local(D, 19)
    window = TillWindow(path, sounds=False, background_sync=False, clock=lambda: noon)
    qtbot.addWidget(window)
    try:
        window.show()
        qtbot.waitUntil(lambda: bool(window.info), timeout=5000)
        window.set_language("en")
        window.log_in_as({k: day.manager[k] for k in ("id", "name", "role")})
        view = window.open_report()
        qtbot.waitUntil(lambda: view.report is not None and view.state.text() == "", timeout=10000)
        model = view.disputes
        assert model.rowCount() == 1
        cells = [model.index(0, c).data() for c in range(model.columnCount())]
        assert cells[3:] == ["Gave the discount", "Refuses it: Voucher revoked"]
        assert cells[2].startswith("Free coffee")  # the voucher the till named
        proofs = {view.voids.record(r)["key"]: view.voids.index(r, view.voids.columnCount() - 1).data()
                  for r in range(view.voids.rowCount())}
        assert proofs == {day.without_pin: "not proven: no PIN proof from the till",
                          day.with_pin: "proven by the manager's PIN",
                          day.at_backend: "made at the backend, in person"}
        status = {view.attempts.record(r)[0]: view.attempts.index(r, view.attempts.columnCount() - 1).data()
                  for r in range(view.attempts.rowCount())}
        assert status[day.disputed] == "Given here, refused by the backend: Voucher revoked"
        view.close()
    finally:
        window.shutdown()
        i18n.set_language(i18n.DEFAULT_LANGUAGE)


def test_a_sync_answer_with_words_the_till_does_not_know_keeps_none_of_them(tmp_path):
    store = TillStore(tmp_path / "till.sqlite3")
    try:
        store.conn.execute("INSERT INTO attempts (id, key, at, method, state, status, accepted) VALUES"
                           " ('a', 'k1', 1.0, 'camera', 'done', 'accepted', 1)")
        store.outbox_confirm([{"key": "k1", "status": "recorded", "dispute": "<b>ACCEPTED</b>",
                               "reason": "=HYPERLINK(1)", "time_flag": "yesterday"}], now=2.0)
        row = store.conn.execute("SELECT status, dispute, backend_reason, time_flag, synced_at FROM attempts").fetchone()
        assert row == ("accepted", None, None, None, 2.0)
        store.outbox_confirm([{"key": "k1", "status": "recorded", "dispute": "till_accepted",
                               "reason": "=HYPERLINK(1)", "time_flag": "future"}], now=3.0)
        row = store.conn.execute("SELECT status, dispute, backend_reason, time_flag FROM attempts").fetchone()
        assert row == ("refused", "till_accepted", None, "future")  # an unknown reason is not kept
    finally:
        store.close()


def test_a_duplicate_answer_brings_the_judgement_a_lost_answer_had(tmp_path):
    """The till sent an entry, lost the answer, sent it again: the backend's duplicate carries the judgement."""
    store = TillStore(tmp_path / "till.sqlite3")
    try:
        store.conn.execute("INSERT INTO attempts (id, key, at, method, state, status, accepted) VALUES"
                           " ('a', 'k1', 1.0, 'camera', 'done', 'accepted', 1)")
        store.outbox_confirm([{"key": "k1", "status": "duplicate", "dispute": "till_accepted",
                               "reason": "bad_signature"}], now=2.0)
        row = store.conn.execute("SELECT status, dispute, backend_reason, synced_at FROM attempts").fetchone()
        assert row == ("refused", "till_accepted", "bad_signature", 2.0)
    finally:
        store.close()
