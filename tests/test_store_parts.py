"""The parts the till's store and sync were split into, on their own: the store's
file and settings (store/base.py), the wire shapes (store/wire.py) and a sync
round's summary (sync/round.py)."""

from __future__ import annotations

import json
import sqlite3

import pytest

from pos_app.core import tokens
from pos_app.core import wire
from pos_app.store.base import StoreBase
from pos_app.sync.round import SyncSummary


def _voucher(voucher_id: str = "v1", **changes) -> dict:
    return {"id": voucher_id, "retailer_id": "r1", "kind": "personal", "status": "published",
            "discount": {"kind": "percent", "value": 10, "currency": "PYG"},
            "texts": {"es": {"title": "Café"}}, **changes}


def _catalog(**changes) -> dict:
    key = tokens.generate_private_key().public_key()
    return {"retailer": {"id": "r1", "name": "Pika"}, "store": {"id": "s1", "name": "Centro",
                                                               "timezone": "America/Asuncion"},
            "keys": [{"kid": tokens.key_id(key), "pem": tokens.public_pem(key)}], "vouchers": [_voucher()],
            "printed_codes": [{"code": "cafe-50", "voucher_id": "v1"}],
            "claims": [{"code_digest": "0123456789abcdef0123456789abcdef", "jti": "j1", "voucher_id": "v1", "expires_at": 2e9}],
            "staff": [], "revoked": ["j0"], "server_time": 1.7e9, **changes}


# --- the store's file and its settings -------------------------------------------------


def test_a_failed_transaction_leaves_neither_file_nor_cache_changed(tmp_path):
    with StoreBase(tmp_path / "till.sqlite3") as store:
        store.set("camera", "0")
        with pytest.raises(RuntimeError), store.transaction():
            store.write_setting("camera", "1")
            raise RuntimeError("a failure half-way")
        assert store.get("camera") == "0" and store.stored("camera") == {"camera": "0"}


def test_a_written_setting_is_cached_only_when_kept_or_reloaded(tmp_path):
    with StoreBase(tmp_path / "till.sqlite3") as store:
        with store.transaction():
            store.write_setting("feed_cursor", 7)
            store.write_setting("server_url", "http://backend")
        assert store.feed_cursor == 0 and store.stored("feed_cursor") == {"feed_cursor": 7}
        store.keep_setting("feed_cursor", 7)
        assert store.feed_cursor == 7 and store.server_url == ""
        store.reload_settings()
        assert store.server_url == "http://backend"
    with StoreBase(tmp_path / "till.sqlite3", device_name="till-a") as again:  # as a restart reads them
        assert again.feed_cursor == 7 and again.device_name == "till-a"


def test_the_parts_reach_whatever_connection_the_store_has_now(tmp_path):
    seen = []

    class Proxy:
        def __init__(self, conn: sqlite3.Connection):
            self.conn = conn

        def execute(self, sql, *args):
            seen.append(sql.split()[0])
            return self.conn.execute(sql, *args)

        def __getattr__(self, name):
            return getattr(self.conn, name)

    with StoreBase(tmp_path / "till.sqlite3") as store:
        store._conn = Proxy(store._conn)  # as bench/till_verdict.py times the store's statements
        with store.transaction():
            store.write_setting("sound", "0")
        store.conn.execute("SELECT 1")
        store._conn = store._conn.conn
    assert seen == ["BEGIN", "INSERT", "COMMIT", "SELECT"]


# --- the wire shapes ---------------------------------------------------------------------


def test_a_catalog_is_parsed_into_rows_the_store_writes():
    parsed = wire.parse_catalog(_catalog())
    assert (parsed.retailer_id, parsed.retailer_name, parsed.store_id, parsed.timezone) == (
        "r1", "Pika", "s1", "America/Asuncion")
    assert [v.id for v in parsed.vouchers] == ["v1"] and parsed.revoked == ["j0"]
    assert parsed.printed_codes == [("CAFE50", "v1")]  # the form the verdict looks a typed code up by
    assert parsed.claims[0][1:] == ("j1", "v1", 2e9) and parsed.server_time == 1.7e9


def test_a_catalog_for_another_retailer_is_refused_before_its_contents_are_read():
    broken = _catalog(vouchers=[{"id": "v2"}])
    with pytest.raises(ValueError, match="another retailer"):
        wire.parse_catalog(broken, known_retailer="r9")
    with pytest.raises(ValueError, match="voucher v2"):
        wire.parse_catalog(broken, known_retailer="r1", known_store="s1")


def test_an_enrollment_answer_needs_every_fact_and_usable_keys():
    answer = {"device_id": "d1", "device_token": "t", "retailer_id": "r1", "store_id": "s1", "keys": []}
    assert wire.parse_enrollment(answer) == ({"device_id": "d1", "device_token": "t", "retailer_id": "r1",
                                              "store_id": "s1"}, [])
    with pytest.raises(ValueError, match="device_token"):
        wire.parse_enrollment({**answer, "device_token": ""})
    with pytest.raises(ValueError):
        wire.parse_enrollment({**answer, "keys": [{"kid": "k", "pem": "not a key"}]})


def test_feed_events_of_unknown_types_are_kept_as_nothing_to_do():
    page = [{"seq": 1, "type": "revocation", "data": {"jti": "j1"}}, {"seq": 2, "type": "from_the_future"}]
    assert wire.parse_feed(page, 2) == [(1, "revocation", "j1"), (2, None, None)]
    for events, cursor in ((page, True), ({"seq": 1}, 2), ([{"type": "void"}], 2)):
        with pytest.raises(ValueError):
            wire.parse_feed(events, cursor)


def test_a_voucher_of_the_wrong_shape_is_a_value_error():
    assert wire.parse_voucher(_voucher()).id == "v1"
    for bad in (_voucher(kind="gift"), _voucher(discount={"kind": "percent", "value": 1.5}),
                _voucher(texts={"es": {"title": 3}}), _voucher(total_limit="10"), []):
        with pytest.raises(ValueError):
            wire.parse_voucher(bad)


def test_only_entries_of_the_shapes_this_till_writes_are_outbox_entries():
    entry = {"key": "k" * 32, "at": 1.7e9, "accepted": True, "method": "typed", "kind": "printed"}
    void = {"type": "void", "key": "v" * 32, "at": 1.7e9, "redemption_key": "k" * 32, "void_reason": "x"}
    assert wire.is_outbox_entry(entry) and wire.is_outbox_entry(void)
    assert not wire.is_outbox_entry({**entry, "extra": 1})
    assert not wire.is_outbox_entry({**entry, "key": "short"})
    assert not wire.is_outbox_entry({**entry, "at": float("nan")})
    assert not wire.is_outbox_entry({k: v for k, v in entry.items() if k != "method"})
    assert not wire.is_outbox_entry({**void, "accepted": True})


# --- a sync round's summary -------------------------------------------------------------


def test_a_summary_prints_as_the_sync_command_always_printed_it():
    summary = SyncSummary(recorded=2, pushed=2, error="backend answered 503", outbox=1)
    assert list(summary.to_json()) == [
        "pushed", "recorded", "duplicates", "conflicts", "parked", "over_limit", "pending_settled", "feed_events",
        "catalog", "error", "reached", "requests", "outbox", "last_sync", "clock_skew_s", "feed_parked",
        "retry_after_s", "log_sent", "log_status"]
    assert json.loads(json.dumps(summary.to_json()))["error"] == "backend answered 503"
    with pytest.raises(AttributeError):
        summary.error = None  # frozen: a round's summary is what happened
