"""The sync status records (pos_app/sync/status.py): what they print, how the window merges them."""

from dataclasses import FrozenInstanceError

import pytest

from pos_app.store import TillStore
from pos_app.sync.status import FIGURE_NAMES, StoreFigures, SyncStatus, store_status

ENGINE_KEYS = ["state", "online", "running", "runs", "next_retry_at", "last_round", "error"]


@pytest.fixture
def store(tmp_path):
    with TillStore(tmp_path / "till.sqlite3") as store:
        yield store


def test_store_figures_print_the_store_keys_then_the_verdicts(store):
    figures = store_status(store)
    printed = figures.to_json()
    assert list(printed) == list(store.sync_figures()) + ["max_clock_skew_s", "clock_skew_flagged", "parked_entries"]
    assert list(printed) == list(FIGURE_NAMES)
    assert printed["outbox"] == 0 and printed["parked_entries"] == [] and printed["clock_skew_flagged"] is False
    assert printed["max_clock_skew_s"] == 120


def test_the_skew_is_flagged_past_the_setting(store):
    store.set("clock_skew_s", 61.0)
    assert store_status(store).clock_skew_flagged is False
    store.set("max_clock_skew_s", 60)
    assert store_status(store).clock_skew_flagged is True


def test_conflict_entries_print_only_when_read(store):
    figures = store_status(store)
    assert "conflict_entries" not in figures.to_json()
    listed = StoreFigures(**{**figures.to_json(), "conflict_entries": [{"voucher": "x"}]})
    assert list(listed.to_json())[-1] == "conflict_entries"


def test_engine_status_prints_its_own_keys_around_the_figures(store):
    figures = store_status(store)
    assert list(SyncStatus(state="stopped", running=False, runs=0).to_json()) == ENGINE_KEYS
    after_round = SyncStatus(state="online", online=True, running=True, runs=1, figures=figures, backoff_failures=0)
    assert list(after_round.to_json()) == ENGINE_KEYS + list(FIGURE_NAMES) + ["backoff_failures"]
    unreadable = SyncStatus(state="offline", runs=1, error_reading_store="disk I/O error", backoff_failures=1)
    assert list(unreadable.to_json()) == ENGINE_KEYS + ["error_reading_store", "backoff_failures"]


def test_figures_read_off_the_status_and_are_none_before_any(store):
    status = SyncStatus(state="online", figures=store_status(store))
    assert status.outbox == 0 and status.parked_entries == [] and status.conflict_entries is None
    empty = SyncStatus()
    assert empty.outbox is None and empty.last_sync is None and empty.clock_skew_flagged is None
    with pytest.raises(AttributeError):
        empty.no_such_figure  # noqa: B018
    with pytest.raises(FrozenInstanceError):
        empty.online = True


def test_the_store_speaking_keeps_only_whether_the_backend_answered(store):
    engine = SyncStatus(state="error", online=True, running=True, runs=3, error="refused", backoff_failures=2)
    shown = engine.updated_by(store_status(store))
    assert shown.online is True and shown.outbox == 0
    assert (shown.state, shown.error, shown.runs, shown.backoff_failures) == (None, None, None, None)


def test_the_engine_speaking_keeps_the_conflicts_listed(store):
    listed = [{"voucher": "Café", "at": 1.0}]
    window = SyncStatus().updated_by(StoreFigures(**{**store_status(store).to_json(), "conflict_entries": listed}))
    news = SyncStatus(state="online", online=False, runs=1, figures=store_status(store))
    shown = window.updated_by(news)
    assert shown.state == "online" and shown.online is False and shown.conflict_entries == listed
    # Even an engine status without figures (its store could not be opened) keeps them.
    broken = window.updated_by(SyncStatus(state="error", running=False, error="till store: gone"))
    assert broken.conflict_entries == listed and broken.outbox is None and broken.error == "till store: gone"


def test_with_figures_changes_one_and_leaves_unread_ones_none(store):
    assert SyncStatus().with_figures(last_error="boom").last_error == "boom"
    assert SyncStatus().with_figures(last_error="boom").outbox is None
    status = SyncStatus(online=True, figures=store_status(store)).with_figures(last_error="boom")
    assert status.last_error == "boom" and status.outbox == 0 and status.online is True
