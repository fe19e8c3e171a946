"""What the window reads on its store's thread, made without a window: its start-up record, its backend
client, and the report screen's computation, over a real enrolled till."""

from __future__ import annotations

import dataclasses
import gc
import subprocess
import sys
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from pos_app.core.domain import Method
from pos_app.gui.report import models
from pos_app.gui.report.compute import ComputedReport, Context, compute
from pos_app.gui.till_info import TillInfo, backend_client, load_info
from pos_app.store import TillStore
from pos_app.store.report import day_report
from pos_app.sync.client import BackendClient
from pos_app.sync.redeem import redeem


def test_what_the_store_thread_makes_needs_no_qt():
    """Made on the store's thread and tested without a window: a fresh interpreter with Qt unimportable."""
    script = ("import sys; sys.modules['PySide6'] = sys.modules['shiboken6'] = None; "
              "import pos_app.gui.till_info, pos_app.gui.report.compute, pos_app.scan.gate")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


@pytest.fixture
def store(till_env):
    with TillStore(till_env.store_path) as store:
        yield store


def test_the_till_info_is_a_frozen_record_of_the_store(store, till_env):
    store.set("language", "gn")
    store.set("velocity_limit", 7)  # not a preference: not the window's to show
    info = load_info(store)
    assert isinstance(info, TillInfo)
    assert (info.device_name, info.server_url) == ("Caja 1", "http://till-test")
    assert info.device_token == store.device_token and info.device_token
    assert info.timezone == store.store_timezone == "America/Asuncion"
    assert info.settings == {"language": "gn"}
    assert sorted(s["id"] for s in info.staff) == sorted(s["id"] for s in till_env.staff.values())
    assert info.status.outbox == 0 and info.status.conflict_entries == []
    assert info.backend() == {"server_url": "http://till-test", "device_token": store.device_token}
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.device_name = "Caja 9"


def test_a_till_without_a_backend_has_no_client(tmp_path, store):
    with TillStore(tmp_path / "fresh.sqlite3") as fresh:
        info = load_info(fresh)
        assert (info.server_url, info.device_token) == ("", "")
        assert backend_client(fresh) is None and backend_client(info.backend()) is None
    client = backend_client(store)
    try:
        assert isinstance(client, BackendClient)
    finally:
        client.close()
    with backend_client(load_info(store).backend()) as off_thread:  # the booklet's, made on the GUI thread
        assert isinstance(off_thread, BackendClient)


def test_the_report_computed_for_the_screen_is_the_stores_report(store, till_env):
    staff = till_env.staff["cashier"]["id"]
    outcomes = [redeem(store, till_env.claim(n % 2, customer=f"c{n}")["token"], method=Method.CAMERA,
                       staff_id=staff) for n in range(3)]
    assert all(o.verdict.accepted for o in outcomes)
    today = datetime.fromtimestamp(time.time(), ZoneInfo(store.store_timezone)).date()
    gc.disable()  # the collector stays as the caller had it
    try:
        result = compute(store, today, today, "es")
        assert not gc.isenabled()
    finally:
        gc.enable()
    result_again = compute(store, today, today, "es")
    assert gc.isenabled()
    assert isinstance(result, ComputedReport) and result.language == "es"
    assert result.report == day_report(store, today, today, language="es") == result_again.report
    assert result.report["count"] == 3 and len(result.rows) == 3
    assert all(type(row) is tuple for row in result.rows)  # plain tuples: the collector leaves them be
    assert [row[models.STAFF_ID] for row in result.rows] == [staff] * 3
    times = [row[models.AT] for row in result.rows]
    assert times == sorted(times)
    assert isinstance(result.context, Context) and result.context.timezone == "America/Asuncion"
    assert result.context.staff[staff] == till_env.staff["cashier"]["name"]
    assert {row[models.VOUCHER_ID] for row in result.rows} <= set(result.context.titles)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.language = "en"
