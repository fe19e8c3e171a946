"""No poison (issue 14, finding 1): every event the backend writes is one its tills can apply, and a
till that still meets one it cannot (an older backend, a bug) parks it and moves on.

The findings were made with real processes: the backend here is the real app served on a loopback
port, the tills are `python -m pos_app enroll` / `sync` in child processes, and the poison is planted
with SQL in the backend's events table, since the fixed backend refuses to write it.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from pos_app.cli.data_folder import STORE_NAME
from pos_app.core import wire
from pos_app.core.migrate import apply, open_database
from pos_app.gui.sync_panel import SyncPanel
from pos_app.store import TillStore
from pos_app.sync.client import BackendClient
from pos_app.sync.round import sync_once
from pos_app.sync.status import SyncStatus, store_status
from pos_app.words import i18n
from server_stub.operations.common import UnfitEvent, add_event
from server_stub.serving import EmbeddedServer
from server_stub.storage.schema import MIGRATIONS

ROOT = Path(__file__).resolve().parent.parent
POISON_NULL_VOUCHER = {"jti": "jti-poison", "voucher_id": None, "kind": "personal", "code": None,
                       "store_id": None, "till": "Caja 9", "at": 1_760_000_000.0}


def till_cmd(*args: str, expect: int | None = 0) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "pos_app", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=90)
    if expect is not None:
        assert proc.returncode == expect, f"{args}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def last_json(proc: subprocess.CompletedProcess) -> dict:
    return json.loads(proc.stdout.strip().splitlines()[-1])


def plant(api, type_: str, data: dict) -> int:
    """An event written past the operations' checks (add_event), as an older or buggy backend would have."""
    return api.backend.storage.submit(lambda db: db.execute(
        "INSERT INTO events (retailer_id, type, origin_device, data, at) VALUES (?, ?, NULL, ?, ?) RETURNING seq",
        (api.retailer_id, type_, json.dumps(data), time.time())).fetchone()[0])


def new_code(api) -> str:
    return api.ok(api.client.post("/enrollment-codes", headers=api.admin, json={"store_id": api.store_id}), 201)["code"]


def enroll(api, url: str, data: Path, name: str, expect: int | None = 0) -> subprocess.CompletedProcess:
    return till_cmd("enroll", "--data", str(data), "--server", url, "--code", new_code(api), "--name", name,
                    expect=expect)


def staff(api, role: str) -> dict:
    return next(s for s in api.demo["staff"] if s["role"] == role)


class BreakablePaths:
    """The real app, but chosen paths answer 200 with garbage: not the thing under test."""

    def __init__(self, app, *paths: str):
        self.app = app
        self.broken = set(paths)

    def __call__(self, environ, start_response):
        if any(environ["PATH_INFO"].endswith(path) for path in self.broken):
            start_response("200 OK", [("Content-Type", "application/json")])
            return [b'{"retailer": "garbage", "events": 5}']
        return self.app(environ, start_response)


@pytest.fixture
def served(api):
    """The `api` backend on a loopback port, with paths a test may break."""
    app = BreakablePaths(api.app)
    server = EmbeddedServer(app).start()
    yield api, server.url, app
    server.stop()


# --- a till meets poison over HTTP ---------------------------------------------------------------


def test_another_till_parks_poison_moves_on_and_refreshes_its_catalog(served, tmp_path):
    api, url, _ = served
    till = tmp_path / "till"
    enroll(api, url, till, "Caja 1")
    printed = api.demo_voucher("printed")
    # A redemption `at: 1e300` (answered 201 by the old backend): the old till crashed with OverflowError.
    far = plant(api, "redemption", {"jti": None, "voucher_id": printed["id"], "kind": "printed",
                                    "code": printed["code"], "store_id": api.store_id, "till": "Caja 9", "at": 1e300})
    first = till_cmd("sync", "--data", str(till))
    summary = last_json(first)
    assert summary["error"] is None and summary["feed_parked"] == 1
    assert "Traceback" not in first.stderr and "OverflowError" not in first.stderr

    null = plant(api, "redemption", POISON_NULL_VOUCHER)
    claim = api.claim()
    api.ok(api.client.post(f"/claims/{claim['jti']}/revoke", headers=api.admin))  # an event after the poison
    later = api.voucher("printed")  # and a change to the catalog
    done = till_cmd("sync", "--data", str(till))
    summary = last_json(done)
    # A clean round: exit 0, and the summary counts what was set aside.
    assert summary["error"] is None and summary["feed_parked"] == 1 and summary["catalog"] is True
    assert "Traceback" not in done.stderr

    with TillStore(till / STORE_NAME) as store:
        parked = dict(store.conn.execute("SELECT seq, reason FROM feed_parked"))
        assert set(parked) == {far, null}
        assert "voucher_id" in parked[null] and "at must be a time" in parked[far]
        cursor = store.feed_cursor
        assert cursor > null
        assert store.revoked(claim["jti"])  # the event after the poison was applied
        assert store.voucher(later["id"]) is not None  # the catalog came after the feed
        figures = store_status(store)
        assert figures.feed_parked == 2 and "voucher_id" in figures.feed_parked_reason
    log_text = (till / "till.log").read_text()
    assert log_text.count("could not be applied and was parked") == 2  # once per event

    # Once parked, never again: the next round parks nothing new, the cursor holds.
    again = last_json(till_cmd("sync", "--data", str(till)))
    assert again["feed_parked"] == 0 and again["error"] is None
    assert (till / "till.log").read_text().count("could not be applied and was parked") == 2


def test_a_till_enrolled_after_the_poison_gets_its_catalog_and_staff_log_in(served, tmp_path):
    api, url, _ = served
    plant(api, "redemption", POISON_NULL_VOUCHER)
    plant(api, "redemption", {**POISON_NULL_VOUCHER, "voucher_id": api.demo_voucher("personal")["id"],
                              "at": float("inf")})
    till = tmp_path / "late"
    enrolled = last_json(enroll(api, url, till, "Caja 2"))
    assert enrolled["sync"]["catalog"] is True and enrolled["sync"]["feed_parked"] == 2
    cashier = staff(api, "cashier")
    with TillStore(till / STORE_NAME) as store:
        assert store.check_staff_pin(cashier["id"], cashier["pin"])["id"] == cashier["id"]


def test_enroll_fails_loudly_when_the_first_catalog_does_not_arrive(served, tmp_path):
    api, url, app = served
    app.broken.add("/catalog")
    till = tmp_path / "till"
    proc = enroll(api, url, till, "Caja 3", expect=None)
    assert proc.returncode == 1
    assert "first catalog did not arrive" in proc.stderr and "pos_app sync" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert last_json(proc)["sync"]["catalog"] is False
    # The till stays enrolled without a catalog: the next sync downloads it whole.
    app.broken.clear()
    assert last_json(till_cmd("sync", "--data", str(till)))["catalog"] is True
    cashier = staff(api, "cashier")
    with TillStore(till / STORE_NAME) as store:
        assert store.check_staff_pin(cashier["id"], cashier["pin"]) is not None


# --- the round: the catalog whether the feed succeeded or not ------------------------------------


def test_a_broken_feed_does_not_keep_the_till_on_an_old_catalog(api, tmp_path):
    app = BreakablePaths(api.app)
    transport = httpx.WSGITransport(app=app)
    with BackendClient("http://t", transport=transport) as anonymous:
        answer = anonymous.enroll(new_code(api), "Caja 4")
    with TillStore(tmp_path / "till.sqlite3") as store:
        store.save_enrollment(answer, "http://t")
        with BackendClient("http://t", answer["device_token"], transport=transport) as client:
            assert sync_once(store, client).error is None
            later = api.voucher("printed")
            app.broken.add("/feed")
            summary = sync_once(store, client)
        assert summary.error and "feed" in summary.error  # the round still ends with the feed's error
        assert summary.catalog is True and store.voucher(later["id"]) is not None


# --- the till's store ------------------------------------------------------------------------------


@pytest.mark.allow_log_warnings(r"could not be applied and was parked")
def test_a_page_with_bad_events_parks_each_and_applies_the_rest(tmp_path, caplog):
    events = [
        {"seq": 1, "type": "revocation", "data": {"jti": "j-1"}},
        {"seq": 2, "type": "redemption", "data": POISON_NULL_VOUCHER},
        {"seq": 3, "type": "revocation", "data": {"jti": "j-\ud800"}},  # not storable
        {"seq": 4, "type": "claim", "data": {"code_digest": "0" * 32, "jti": "j-4", "voucher_id": "v",
                                            "expires_at": 10**400}},
        {"seq": 5, "type": "revocation", "data": {"jti": "j-5"}},
    ]
    with TillStore(tmp_path / "till.sqlite3") as store:
        with caplog.at_level(logging.WARNING):
            assert store.apply_feed(events, 5) == 3
            assert store.apply_feed(events, 5) == 0  # the same page again: nothing new, no new warning
        assert store.feed_cursor == 5
        assert store.revoked("j-1") and store.revoked("j-5")
        rows = store.conn.execute("SELECT seq, type, reason, data FROM feed_parked ORDER BY seq").fetchall()
        assert [(seq, kind) for seq, kind, _, _ in rows] == [(2, "redemption"), (3, "revocation"), (4, "claim")]
        assert json.loads(rows[0][3]) == POISON_NULL_VOUCHER
        assert "\\ud800" in rows[1][3]  # kept, escaped
    parked = [r for r in caplog.records if "parked" in r.getMessage()]
    assert len(parked) == 3 and all(r.levelno == logging.WARNING for r in parked)


def test_a_malformed_page_is_refused_whole(tmp_path):
    with TillStore(tmp_path / "till.sqlite3") as store:
        for events, cursor in (([{"type": "revocation", "data": {"jti": "j"}}], 3),
                               ([{"seq": 1, "type": "revocation", "data": {"jti": "j"}}], 2**80), ("x", 1)):
            with pytest.raises(ValueError):
                store.apply_feed(events, cursor)
        assert store.feed_cursor == 0 and not store.revoked("j")


# --- the contract, shared by the till and the backend ---------------------------------------------


@pytest.mark.parametrize("kind, data", [
    ("redemption", POISON_NULL_VOUCHER),
    ("redemption", {**POISON_NULL_VOUCHER, "voucher_id": "v", "at": 1e300}),
    ("redemption", {**POISON_NULL_VOUCHER, "voucher_id": "v", "at": float("nan")}),
    ("redemption", {**POISON_NULL_VOUCHER, "voucher_id": "v", "at": 10**400}),
    ("redemption", {**POISON_NULL_VOUCHER, "voucher_id": "v\x00"}),
    ("redemption", {**POISON_NULL_VOUCHER, "voucher_id": "v", "till": "x" * (wire.MAX_TEXT + 1)}),
    ("void", {"id": "v1", "redemption_key": "k", "reason": "x", "at": -1.0}),
    ("claim", {"code_digest": "0" * 32, "jti": "j", "voucher_id": "v", "expires_at": float("inf")}),
    ("revocation", {"jti": "\udfff"}),
    ("voucher", {"id": "v", "retailer_id": "r", "status": "published", "kind": "printed",
                 "discount": {"kind": "percent", "value": 2**60}}),
    ("voucher", {"id": "v", "retailer_id": "r", "status": "published", "kind": "printed",
                 "discount": {"kind": "percent", "value": 10}, "valid_until": 10**15}),
    ("voucher", {"id": "v", "retailer_id": "r", "status": "published", "kind": "printed",
                 "discount": {"kind": "percent", "value": 10}, "texts": {"es": {"title": "\x00"}}}),
    ("hologram", {"anything": True}),  # no till knows it: the backend must not write it
])
def test_the_contract_refuses_what_a_till_could_not_apply(kind, data):
    with pytest.raises(ValueError):
        wire.check_event(kind, data)


def test_add_event_refuses_an_unfit_event_and_writes_nothing(api):
    before = api.snapshot()

    def write(db):
        db.execute("UPDATE retailers SET name = 'changed' WHERE id = ?", (api.retailer_id,))
        add_event(api.backend.ctx, db, api.retailer_id, "redemption", POISON_NULL_VOUCHER)

    with pytest.raises(UnfitEvent, match="voucher_id"):
        api.backend.storage.submit(write)
    assert api.snapshot() == before
    add_event_ok = lambda db: add_event(api.backend.ctx, db, api.retailer_id, "revocation", {"jti": "j"})  # noqa: E731
    api.backend.storage.submit(add_event_ok)
    assert api.counts()["events"] == len(before["events"]) + 1


def test_times_set_past_the_bounds_before_them_are_brought_inside(tmp_path):
    """A voucher ending in the year 5138, made before the bounds, would cost every till its catalog."""
    db = open_database(str(tmp_path / "old.sqlite3"))
    try:
        apply(db, MIGRATIONS[:4])
        db["retailers"].insert({"id": "r", "name": "R", "created_at": 1.0})
        for vid, valid_from, valid_until in (("far", 1, 10**11), ("odd", -5, None), ("fine", 10, 2_000_000_000)):
            db["vouchers"].insert({"id": vid, "retailer_id": "r", "kind": "printed", "status": "published",
                                   "discount_kind": "percent", "discount_value": 5, "currency": "PYG", "texts": "{}",
                                   "valid_from": valid_from, "valid_until": valid_until,
                                   "created_at": 1.0, "updated_at": 1.0})
        apply(db, MIGRATIONS)
        rows = dict((vid, (a, b)) for vid, a, b in db.execute("SELECT id, valid_from, valid_until FROM vouchers"))
    finally:
        db.conn.close()
    assert rows == {"far": (1, int(wire.LATEST_TIME)), "odd": (0, None), "fine": (10, 2_000_000_000)}


def test_the_redemption_events_the_trigger_writes_fit_the_contract(api):
    till = api.enroll("Caja 5")
    claim = api.claim()
    assert api.redeem(till, claim["token"]).status_code == 201
    assert api.redeem(till, api.printed_code, method="printed").status_code == 201
    rows = api.rows("SELECT seq, type, data FROM events WHERE type = 'redemption'")
    assert len(rows) == 2
    for seq, kind, data in rows:
        assert wire.parse_event({"seq": seq, "type": kind, "data": json.loads(data)})[1] == "redemption"


# --- the sync panel ---------------------------------------------------------------------------------


@pytest.mark.allow_log_warnings(r"could not be applied and was parked")
def test_the_sync_panel_shows_the_feed_events_set_aside(qtbot, tmp_path):
    i18n.set_language("en")
    try:
        with TillStore(tmp_path / "till.sqlite3") as store:
            store.apply_feed([{"seq": 7, "type": "redemption", "data": POISON_NULL_VOUCHER},
                              {"seq": 8, "type": "revocation", "data": {"jti": 5}}], 8)
            figures = store_status(store)
        panel = SyncPanel()
        qtbot.addWidget(panel)
        panel.show_status(SyncStatus().updated_by(figures))
        text = panel.rows["feed_parked"][1].text()
        assert text.startswith("2 feed events could not be applied: ")
        assert "jti must be a non-empty text" in text  # the last one's reason
        panel.show_status(SyncStatus())
        assert panel.rows["feed_parked"][1].text() == "none"
    finally:
        i18n.set_language(i18n.DEFAULT_LANGUAGE)
