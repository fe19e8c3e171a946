"""The backend's schema on PostgreSQL (server_stub/storage/pg_schema.py) against its SQLite twin, on a real
server (tests/pg_fixtures.py): numbered alike, the same tables, columns and indexes, applied once however
many processes start together, and a feed that never shows an event before one committed earlier."""

from __future__ import annotations

import json
import sqlite3
import threading
import time

import psycopg
import pytest

from pos_app.core import wire
from pos_app.core.migrate import apply as apply_sqlite
from pos_app.core.migrate import open_database
from server_stub.storage import pg_migrate, pg_schema, schema

PG_ONLY = {"event_counter", "rate_buckets"}  # the feed's numbering, which SQLite's single writer does not need


def sqlite_shape(path) -> tuple[dict[str, set[str]], set[str]]:
    db = open_database(str(path))
    try:
        apply_sqlite(db, schema.MIGRATIONS)
        conn = db.conn
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
        columns = {t: {r[1] for r in conn.execute(f"PRAGMA table_info({t})")} for t in tables}
        indexes = {r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_autoindex_%'")}
    finally:
        db.conn.close()
    return columns, indexes


def pg_shape(dsn) -> tuple[dict[str, set[str]], set[str]]:
    with psycopg.connect(dsn) as conn:
        columns: dict[str, set[str]] = {}
        for table, column in conn.execute(
                "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public'"):
            columns.setdefault(table, set()).add(column)
        # Primary keys and UNIQUE columns get their indexes from the constraint (SQLite's autoindexes).
        indexes = {r[0] for r in conn.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = 'public' AND indexname NOT IN "
            "(SELECT conname FROM pg_constraint WHERE contype IN ('p', 'u'))")}
    return columns, indexes


def migrated(dsn) -> str:
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert pg_migrate.apply(conn, pg_schema.MIGRATIONS) == len(schema.MIGRATIONS)
    return dsn


def test_the_migrations_are_numbered_alike_for_both_engines():
    assert [m.__name__ for m in pg_schema.MIGRATIONS] == [m.__name__ for m in schema.MIGRATIONS]


def test_both_engines_hold_the_same_tables_columns_and_indexes(pg_database, tmp_path):
    sqlite_columns, sqlite_indexes = sqlite_shape(tmp_path / "backend.sqlite3")
    pg_columns, pg_indexes = pg_shape(migrated(pg_database))
    assert set(pg_columns) - PG_ONLY == set(sqlite_columns)
    for table, columns in sqlite_columns.items():
        assert pg_columns[table] == columns, table
    assert pg_indexes == sqlite_indexes


def test_processes_starting_together_apply_each_migration_once(pg_database):
    errors = []

    def start():
        try:
            with psycopg.connect(pg_database, autocommit=True) as conn:
                pg_migrate.apply(conn, pg_schema.MIGRATIONS)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
    workers = [threading.Thread(target=start) for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert errors == []
    with psycopg.connect(pg_database) as conn:
        assert conn.execute("SELECT version, name FROM _migrations ORDER BY version").fetchall() == [
            (n, m.__name__) for n, m in enumerate(schema.MIGRATIONS, start=1)]
        assert pg_migrate.version(conn) == len(schema.MIGRATIONS)


def _event(conn, retailer="ret_a") -> int:
    return conn.execute("INSERT INTO events (retailer_id, type, data, at) VALUES (%s, 'voucher', '{}', %s) "
                        "RETURNING seq", (retailer, time.time())).fetchone()[0]


def test_a_transaction_held_open_never_lets_a_later_event_be_seen_first(pg_database):
    """The late-commit case: a writer that took its number and has not committed yet. Whatever commits
    meanwhile must not become visible above it, or a till reading after=CURSOR would skip it for good."""
    migrated(pg_database)
    slow = psycopg.connect(pg_database)
    reader = psycopg.connect(pg_database, autocommit=True)
    try:
        first = _event(slow)  # taken, not committed
        later: list[int] = []
        other = threading.Thread(target=lambda: later.append(_commit_one(pg_database)))
        other.start()
        other.join(0.5)
        assert other.is_alive() and later == []  # the later writer waits for the open one
        assert reader.execute("SELECT count(*) FROM events").fetchone() == (0,)
        slow.commit()
        other.join(10)
        assert later == [first + 1]
        assert [r[0] for r in reader.execute("SELECT seq FROM events ORDER BY seq")] == [first, first + 1]
    finally:
        slow.close()
        reader.close()


def _commit_one(dsn) -> int:
    with psycopg.connect(dsn) as conn:
        seq = _event(conn)
        conn.commit()
        return seq


def test_a_rolled_back_event_leaves_no_gap(pg_database):
    migrated(pg_database)
    with psycopg.connect(pg_database) as conn:
        _event(conn)
        conn.rollback()
        kept = _event(conn)
        conn.commit()
        assert conn.execute("SELECT seq FROM events").fetchall() == [(kept,)] and kept == 1


def test_an_accepted_redemption_writes_its_feed_event_in_the_same_statement(pg_database):
    migrated(pg_database)
    with psycopg.connect(pg_database) as conn:
        conn.execute("INSERT INTO devices (id, retailer_id, store_id, name) VALUES ('dev_1', 'ret_a', 'sto_1', "
                     "'Caja <1> ☃')")
        for key, status in (("k" * 10, "refused"), ("q" * 10, "accepted")):
            conn.execute(
                "INSERT INTO attempts (key, retailer_id, store_id, device_id, at, received_at, status, kind, "
                "voucher_id, jti, method, decided) VALUES (%s, 'ret_a', 'sto_1', 'dev_1', 1.7e9, 1.7e9, %s, "
                "'personal', 'vch_1', 'jti_1', 'camera', 'offline')", (key, status))
        conn.commit()
        rows = conn.execute("SELECT seq, type, origin_device, data FROM events").fetchall()
    assert [(r[1], r[2]) for r in rows] == [("redemption", "dev_1")]
    seq, kind, data = wire.parse_event({"seq": rows[0][0], "type": rows[0][1], "data": json.loads(rows[0][3])})
    assert (kind, data["jti"], data["voucher_id"], data["till"], data["at"]) == (
        "redemption", "jti_1", "vch_1", "Caja <1> ☃", 1.7e9)


def test_one_accepted_attempt_per_token_id_is_the_databases_rule(pg_database):
    migrated(pg_database)
    with psycopg.connect(pg_database) as conn:
        insert = ("INSERT INTO attempts (key, retailer_id, store_id, device_id, at, received_at, status, jti, "
                  "method, decided) VALUES (%s, 'ret_a', 's', 'd', 1, 1, 'accepted', 'jti_1', 'camera', 'online')")
        conn.execute(insert, ("a" * 10,))
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(insert, ("b" * 10,))


def test_sqlite_would_refuse_the_same(tmp_path):
    """The twin of the rule above on SQLite, so the two engines are held to one behaviour."""
    db = open_database(str(tmp_path / "b.sqlite3"))
    try:
        apply_sqlite(db, schema.MIGRATIONS)
        insert = ("INSERT INTO attempts (key, retailer_id, store_id, device_id, at, received_at, status, jti, "
                  "method, decided) VALUES (?, 'ret_a', 's', 'd', 1, 1, 'accepted', 'jti_1', 'camera', 'online')")
        db.conn.execute(insert, ("a" * 10,))
        with pytest.raises(sqlite3.IntegrityError):
            db.conn.execute(insert, ("b" * 10,))
    finally:
        db.conn.close()
