"""The backend's storage on PostgreSQL (server_stub/storage/postgres.py, pg_connection.py) on a real server
(tests/pg_fixtures.py): SQLite's placeholders translated, a read connection per thread, writes each in
a transaction of their own, committed durably, rolled back alone, and every connection closed by close()."""

from __future__ import annotations

import threading
import time

import psycopg
import psycopg.sql
import pytest

from server_stub.storage import pg_schema
from server_stub.storage.pg_connection import PgConnection, translate
from server_stub.storage.postgres import APPLICATION, PostgresStorage


@pytest.fixture
def storage(pg_database):
    store = PostgresStorage(pg_database)
    try:
        yield store
    finally:
        store.close()


def sessions(dsn: str, until: int | None = None) -> int:
    """This backend's sessions on the test's database, as the server counts them (waiting a little for
    `until`: a server process leaves pg_stat_activity a moment after its client hangs up)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        for _ in range(50):
            count = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                 "AND application_name = %s", (APPLICATION,)).fetchone()[0]
            if until is None or count == until:
                break
            time.sleep(0.1)
    return count


def attempt_row(key: str, jti: str | None = "jti_1", status: str = "accepted") -> tuple:
    return (key, "ret_a", "sto_1", "dev_1", 1.7e9, 1.7e9, status, "personal", "vch_1", jti, "camera", "online")


ATTEMPT_COLUMNS = ("key", "retailer_id", "store_id", "device_id", "at", "received_at", "status", "kind",
                   "voucher_id", "jti", "method", "decided")


# --- the placeholders ---------------------------------------------------------------------------------

def test_plain_and_numbered_placeholders_become_psycopgs():
    assert translate("SELECT * FROM t WHERE a = ? AND b = ?") == ("SELECT * FROM t WHERE a = %s AND b = %s", None)
    assert translate("SELECT ?2, ?1, ?2") == ("SELECT %(p2)s, %(p1)s, %(p2)s", 2)
    # SQLite's rule: a bare ? after numbered ones takes the next number.
    assert translate("SELECT ?1, ?") == ("SELECT %(p1)s, %(p2)s", 2)


def test_quotes_and_comments_keep_their_question_marks_and_percent_is_doubled():
    assert translate("SELECT '?', \"a?\", 'it''s ?' -- ?\n, ? /* ? */") == (
        "SELECT '?', \"a?\", 'it''s ?' -- ?\n, %s /* ? */", None)
    assert translate("SELECT 5 % 3, '100%' WHERE x LIKE ?") == ("SELECT 5 %% 3, '100%%' WHERE x LIKE %s", None)


def test_the_translation_runs_on_the_server(storage):
    db = storage.read()
    assert db.execute("SELECT ?, '?', ? || '%'", ("a", "b")).fetchone() == ("a", "?", "b%")
    assert db.execute("SELECT ?2::text || ?1::text || ?2::text", ("x", "y")).fetchone() == ("yxy",)
    assert db.execute("SELECT 7 % 4, 'x' LIKE '%'").fetchone() == (3, True)
    assert db.conn is db and db.conn.execute("SELECT 1").fetchall() == [(1,)]


def test_a_wrong_number_of_numbered_values_and_garbage_sql_are_psycopgs_errors(storage):
    db = storage.read()
    with pytest.raises(psycopg.ProgrammingError, match="2 numbered parameters, 1 were supplied"):
        db.execute("SELECT ?1, ?2", ("only one",))
    with pytest.raises(psycopg.errors.SyntaxError):
        db.execute("SELEC nothing FROM")
    assert db.execute("SELECT 1").fetchone() == (1,)  # an autocommit read survives its error


def test_cursors_iterate_count_and_executemany(storage):
    storage.submit(lambda db: db.conn.executemany(
        "INSERT INTO retailers (id, name, created_at) VALUES (?, ?, 0)", [("r1", "Uno"), ("r2", "Dos")]))
    db = storage.read()
    assert list(db.execute("SELECT id FROM retailers ORDER BY id")) == [("r1",), ("r2",)]
    assert storage.submit(lambda w: w.execute("UPDATE retailers SET name = upper(name)").rowcount) == 2


# --- reads, writes, closing ---------------------------------------------------------------------------

def test_each_thread_reads_on_its_own_connection(storage):
    seen = []
    threads = [threading.Thread(target=lambda: seen.append((storage.read(), storage.read()))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    mine = storage.read()
    assert all(a is b for a, b in seen) and storage.read() is mine
    pids = {db.execute("SELECT pg_backend_pid()").fetchone()[0] for db in [mine, *(a for a, _ in seen)]}
    assert len(pids) == 4


def test_a_submit_commits_and_a_failing_one_writes_nothing(storage):
    def insert_and_fail(db):
        db.execute("INSERT INTO retailers (id, name) VALUES ('ret_b', 'B')")
        raise ValueError("refused")

    assert storage.submit(lambda db: db.execute("INSERT INTO retailers (id, name) VALUES ('ret_a', 'A') "
                                                "RETURNING id").fetchone()[0]) == "ret_a"
    with pytest.raises(ValueError, match="refused"):
        storage.submit(insert_and_fail)
    storage.submit(lambda db: db.execute("INSERT INTO retailers (id, name) VALUES ('ret_c', 'C')"))
    with psycopg.connect(storage.dsn) as other:  # committed: another session sees it
        assert other.execute("SELECT id FROM retailers ORDER BY id").fetchall() == [("ret_a",), ("ret_c",)]


def test_with_conn_inside_a_submit_is_a_savepoint_that_rolls_back_alone(storage):
    def write(db):
        with pytest.raises(psycopg.errors.UniqueViolation):
            with db.conn:
                db.execute("INSERT INTO retailers (id) VALUES ('r1')")
        db.execute("INSERT INTO retailers (id) VALUES ('r2')")
    storage.submit(lambda db: db.execute("INSERT INTO retailers (id) VALUES ('r1')"))
    storage.submit(write)
    assert storage.read().execute("SELECT id FROM retailers ORDER BY id").fetchall() == [("r1",), ("r2",)]


def test_insert_row_returns_the_id_and_one_accept_per_jti_is_an_integrity_error(storage):
    first = storage.insert_row("attempts", ATTEMPT_COLUMNS, attempt_row("a" * 10))
    second = storage.insert_row("attempts", ATTEMPT_COLUMNS, attempt_row("b" * 10, status="refused"))
    assert second == first + 1
    with pytest.raises(storage.IntegrityError) as caught:
        storage.insert_row("attempts", ATTEMPT_COLUMNS, attempt_row("c" * 10))
    assert isinstance(caught.value, psycopg.errors.UniqueViolation)
    assert storage.insert_row("retailers", ("id", "name"), ("ret_a", "A")) == "ret_a"
    assert storage.insert_row("pin_failures", ("device_id", "staff_id", "failures", "first_at"),
                              ("dev_1", "stf_1", 1, 0.0)) is None  # a table with no id column
    assert storage.read().execute("SELECT count(*) FROM attempts").fetchone() == (2,)


def test_insert_row_refuses_a_table_or_column_the_schema_does_not_have(storage):
    with pytest.raises(ValueError, match="no table 'nowhere'"):
        storage.insert_row("nowhere", ("id",), (1,))
    with pytest.raises(ValueError, match="attempts has no column nope"):
        storage.insert_row("attempts", ("key", "nope"), ("k", 1))


def test_an_accepted_attempt_writes_its_feed_event(storage):
    storage.submit(lambda db: db.execute(
        "INSERT INTO devices (id, retailer_id, store_id, name) VALUES ('dev_1', 'ret_a', 'sto_1', 'Caja 1')"))
    storage.insert_row("attempts", ATTEMPT_COLUMNS, attempt_row("r" * 10, jti="jti_9", status="refused"))
    storage.insert_row("attempts", ATTEMPT_COLUMNS, attempt_row("a" * 10, jti="jti_9"))
    rows = storage.read().execute("SELECT seq, type, origin_device, data::json ->> 'jti' FROM events").fetchall()
    assert rows == [(1, "redemption", "dev_1", "jti_9")]


def test_eight_threads_submitting_at_once_are_all_durable(storage):
    errors: list[BaseException] = []
    ids: list[int] = []

    def redeem(n: int) -> None:
        try:
            for k in range(10):
                ids.append(storage.insert_row("attempts", ATTEMPT_COLUMNS,
                                              attempt_row(f"key_{n}_{k:02}", jti=f"jti_{n}_{k}")))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
    threads = [threading.Thread(target=redeem, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == [] and len(set(ids)) == 80
    dsn = storage.dsn
    storage.close()
    with psycopg.connect(dsn) as other:
        assert other.execute("SELECT count(*), count(DISTINCT jti) FROM attempts").fetchone() == (80, 80)
        assert other.execute("SELECT count(*), max(seq) FROM events").fetchone() == (80, 80)  # no gaps


def test_close_from_another_thread_closes_every_connection(pg_database):
    storage = PostgresStorage(pg_database, writers=3)
    ready, release = threading.Barrier(4), threading.Event()

    def reader() -> None:
        storage.read().execute("SELECT 1")
        ready.wait(10)
        release.wait(10)  # the thread stays alive: its connection is closed by close(), not by its end
    readers = [threading.Thread(target=reader) for _ in range(3)]
    for t in readers:
        t.start()
    ready.wait(10)
    storage.submit(lambda db: db.execute("SELECT 1"))
    assert sessions(pg_database) >= 4  # three readers and at least one writer
    closer = threading.Thread(target=storage.close)
    closer.start()
    closer.join(30)
    assert not closer.is_alive() and sessions(pg_database, until=0) == 0
    release.set()
    for t in readers:
        t.join(10)
    with pytest.raises(RuntimeError, match="closed"):
        storage.submit(lambda db: None)
    with pytest.raises(RuntimeError, match="closed"):
        storage.read()


def test_opening_applies_the_migrations(pg_database):
    PostgresStorage(pg_database).close()
    with psycopg.connect(pg_database) as conn:
        assert conn.execute("SELECT max(version) FROM _migrations").fetchone() == (len(pg_schema.MIGRATIONS),)
    assert isinstance(PostgresStorage.IntegrityError, type) and PgConnection.IntegrityError is psycopg.IntegrityError


def test_a_thread_that_ends_takes_its_read_connection_with_it(pg_database):
    storage = PostgresStorage(pg_database, writers=1)
    try:
        baseline = sessions(pg_database)  # the pool's writer
        done = threading.Thread(target=lambda: storage.read().execute("SELECT 1"))
        done.start()
        done.join(10)
        assert sessions(pg_database, until=baseline) == baseline
    finally:
        storage.close()


def test_a_read_connection_writes_nothing_and_its_with_block_is_one_snapshot(storage):
    db = storage.read()
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        db.execute("INSERT INTO retailers (id) VALUES ('r0')")
    storage.submit(lambda w: w.execute("INSERT INTO retailers (id) VALUES ('r1')"))
    with db.conn:
        before = db.execute("SELECT count(*) FROM retailers").fetchone()
        storage.submit(lambda w: w.execute("INSERT INTO retailers (id) VALUES ('r2')"))
        assert db.execute("SELECT count(*) FROM retailers").fetchone() == before == (1,)
    assert db.execute("SELECT count(*) FROM retailers").fetchone() == (2,)


def test_writes_commit_durably_whatever_the_database_defaults_to(pg_database):
    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute(psycopg.sql.SQL("ALTER DATABASE {} SET synchronous_commit = off").format(
            psycopg.sql.Identifier(conn.info.dbname)))
    storage = PostgresStorage(pg_database)
    try:
        assert storage.read().execute("SHOW synchronous_commit").fetchone() == ("off",)  # the default, for reads
        assert storage.submit(lambda db: db.execute("SHOW synchronous_commit").fetchone()) == ("on",)
    finally:
        storage.close()


def test_the_verdicts_questions_run_unchanged_on_postgresql(storage):
    """state.py's SQL (numbered placeholders reused, FILTER, a LIMIT inside a count) over this storage."""
    from server_stub.storage.state import VoucherCache

    def seed(db):
        db.execute("INSERT INTO retailers (id, name) VALUES ('ret_a', 'A')")
        db.execute("INSERT INTO devices (id, retailer_id, store_id, name) VALUES ('dev_1', 'ret_a', 'sto_1', 'Caja')")
        db.execute("INSERT INTO vouchers (id, retailer_id, kind, status, discount_kind, discount_value, currency, "
                   "texts, total_limit) VALUES ('vch_1', 'ret_a', 'printed', 'active', 'percent', 10, 'PYG', '{}', 5)")
        db.execute("INSERT INTO claims (jti, retailer_id, voucher_id, short_code, expires_at, revoked_at) "
                   "VALUES ('jti_1', 'ret_a', 'vch_1', 'ABC', 2000000000, 1.5e9)")
    storage.submit(seed)
    storage.insert_row("attempts", ATTEMPT_COLUMNS, (*attempt_row("a" * 10)[:7], "printed", *attempt_row("")[8:]))
    device = {"id": "dev_1", "retailer_id": "ret_a", "store_id": "sto_1", "timezone": "America/Asuncion"}
    state = storage.redemption_state(storage.read(), device, 10, VoucherCache())
    assert state.revoked("jti_1") is True and state.used("jti_1").jti == "jti_1"
    assert state.claim("ABC").voucher_id == "vch_1" and state.voucher("vch_1").total_limit == 5
    day = time.strftime("%Y-%m-%d", time.localtime(1.7e9))
    assert state.printed_uses("vch_1", "sto_1", day)[1] == 1
    assert state.recent_accepts(0.0) == 1


def test_a_read_snapshot_sees_one_state_of_the_database(storage):
    storage.submit(lambda w: w.execute("INSERT INTO retailers (id) VALUES ('r1')"))
    with storage.read_snapshot() as db:
        db.execute("SET LOCAL transaction_isolation = 'read committed'") if False else None
        assert db.execute("SELECT count(*) FROM retailers").fetchone() == (1,)
        storage.submit(lambda w: w.execute("INSERT INTO retailers (id) VALUES ('r2')"))
        assert db.execute("SELECT count(*) FROM retailers").fetchone() == (1,)
        assert db.execute("SHOW transaction_isolation").fetchone() == ("repeatable read",)
    assert storage.read().execute("SELECT count(*) FROM retailers").fetchone() == (2,)


def test_a_write_waits_for_a_lock_held_elsewhere_a_bounded_time(storage, pg_database):
    """One stuck session (an operator's open transaction holding the feed's counter) stalls writes for
    the lock timeout, not for ever; reads and writes both carry the statement and idle bounds."""
    for db_answer in (storage.read().execute("SHOW statement_timeout").fetchone(),
                      storage.submit(lambda db: db.execute("SHOW statement_timeout").fetchone())):
        assert db_answer == ("1min",)
    assert storage.submit(lambda db: db.execute("SHOW idle_in_transaction_session_timeout").fetchone()) == ("1min",)
    stuck = psycopg.connect(pg_database)
    try:
        stuck.execute("UPDATE event_counter SET last = last")  # the counter's row lock, held open

        def write(db):
            db.execute("SET LOCAL lock_timeout = '200ms'")  # the bound, made short for the test
            db.execute("INSERT INTO events (retailer_id, type, data, at) VALUES ('r', 'voucher', '{}', 0)")
        started = time.monotonic()
        with pytest.raises(psycopg.errors.LockNotAvailable):
            storage.submit(write)
        assert time.monotonic() - started < 5
        assert storage.submit(lambda db: db.execute("SHOW lock_timeout").fetchone()) == ("10s",)
    finally:
        stuck.close()
    assert storage.read().execute("SELECT count(*) FROM events").fetchone() == (0,)
