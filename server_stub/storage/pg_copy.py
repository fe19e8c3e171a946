"""A SQLite backend's data copied into PostgreSQL: moving a chain past one machine (issue 17).

The source is read in ONE read transaction (WAL lets the backend go on
serving meanwhile): every table, and the counts the copy is checked against,
come from one state of the database, so a redemption committed during the
copy is in all of it (attempt and feed event) or in none. The target gets
pg_schema's migrations, then every table in one transaction, parents before
children, each streamed with COPY (the indexes other than keys dropped first
and made again once the rows are in, which is cheaper than keeping them up
row by row); the counts are checked before it commits, so a copy that fails
or disagrees leaves the target as it was.

Types (pg_schema chose them so that nothing is converted on the way):
- SQLite's 0/1 booleans (signing_keys.active, retailers.staff_anywhere,
  booklet_placements.premium, voids.verified) are bigint there too, because
  the operations' SQL tests them as `= 1` on both engines;
- REAL is double precision: both are IEEE 754 binary64, and psycopg writes a
  float as its shortest repr, which PostgreSQL reads back to the same bits;
- JSON (texts, answer, till_verdict, events.data, layout, languages) stays
  text, copied byte for byte, so what tills and reports read is unchanged;
- BLOBs (a placement's image, a booklet's PDF) are bytea.
A value the target's column refuses (SQLite keeps any value in any column)
fails the copy, which rolls back and says which table.

The target's own counters are set past what was copied: every identity
column's sequence past its highest id, and the feed's `event_counter` at the
highest seq, so new rows neither clash nor leave tills a gap. Triggers are off
while copying (the feed events are copied, not made again) and on again
before the commit; `_migrations` is the target's own.
"""

from __future__ import annotations

import graphlib
import hashlib
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import psycopg

from . import pg_migrate, pg_schema, schema
from .base import StorageUnavailable, shown_dsn

OWN_TABLES = {"_migrations", "event_counter", "rate_buckets"}  # each engine's own, never copied
# Filled by the target's own migrations, and replaced by the source's rows: the backend keeps its identity.
REPLACED_TABLES = ("backend_meta",)
ROWS_PER_FETCH = 5000  # rows read from SQLite at a time: memory stays flat for any size


class CopyRefused(RuntimeError):
    """The copy was not made, or made and rolled back: the target is as it was."""

    def __init__(self, message: str, code: str):
        super().__init__(message)
        self.code = code


@dataclass
class Copied:
    tables: dict[str, int]  # rows per table, equal on both engines
    event_head: int  # the highest feed seq, equal on both
    seconds: float
    sums: dict[str, int] = field(default_factory=dict)  # per table, of the rows as read (`written_since`)


def copy(sqlite_path: str | Path, dsn: str) -> Copied:
    """Copy the backend database at `sqlite_path` into the (empty) PostgreSQL database `dsn`."""
    started = time.perf_counter()
    source = _open_source(Path(sqlite_path))
    try:
        source.execute("BEGIN")  # one read transaction: its first read fixes the state everything comes from
        try:
            _check_source_version(source)
            _check_source_pages(source)
        except sqlite3.DatabaseError as exc:  # not a database at all, or one cut short
            raise CopyRefused(f"the SQLite file {sqlite_path} cannot be read: {exc}", "sqlite_damaged") from None
        with _connect(dsn) as target:
            _refuse_rows(target, only_backend=True)  # before migrating: a database in use is not touched
            pg_migrate.apply(target, pg_schema.MIGRATIONS)
            target.autocommit = False
            try:
                tables, head, sums = _copy_all(source, target)
            except (psycopg.Error, sqlite3.DatabaseError) as exc:
                target.rollback()
                said = " ".join(str(exc).split())  # PostgreSQL's CONTEXT line (which table, which row) kept
                raise CopyRefused(f"the copy failed and was rolled back, {shown_dsn(dsn)} is as it was: {said}",
                                  "copy_failed") from None
            except BaseException:
                target.rollback()
                raise
            target.commit()
    finally:
        source.close()
    return Copied(tables, head, time.perf_counter() - started, sums)


def written_since(sqlite_path: str | Path, copied: Copied) -> dict[str, int]:
    """The tables the SQLite backend has changed since the copy's snapshot (a `serve` still running), each
    with the rows it gained: rows added or removed, and rows changed in place (a voucher revoked, a PIN
    changed: a table that gained 0), found by the sum of its rows as read again."""
    source = _open_source(Path(sqlite_path))
    try:
        source.execute("BEGIN")  # one state, as the copy's
        changed = {}
        for table, count in copied.tables.items():
            rows = source.execute(f'SELECT * FROM "{table}"')
            now, total = _row_sum(rows)
            if now != count or total != copied.sums.get(table):
                changed[table] = now - count
        source.execute("COMMIT")
    finally:
        source.close()
    return changed


def _row_sum(rows: Iterable[Sequence[Any]]) -> tuple[int, int]:
    """(rows, their sum): a 64-bit hash of each row added up, so the order rows come in does not matter."""
    count = total = 0
    for row in rows:
        count += 1
        total += int.from_bytes(hashlib.blake2b(repr(tuple(row)).encode(), digest_size=8).digest(), "big")
    return count, total % (1 << 64)


def _open_source(path: Path) -> sqlite3.Connection:
    if not path.is_file():
        raise CopyRefused(f"no SQLite backend at {path}", "no_sqlite_backend")
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    conn.execute("PRAGMA busy_timeout=30000")
    conn.execute("PRAGMA query_only=ON")  # a copy never writes its source
    return conn


def _check_source_version(source: sqlite3.Connection) -> None:
    if not source.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_migrations'").fetchone():
        raise CopyRefused("the SQLite file holds no backend (no migrations recorded)", "no_sqlite_backend")
    versions = [r[0] for r in source.execute("SELECT version FROM _migrations ORDER BY version")]
    current = len(schema.MIGRATIONS)
    if versions != list(range(1, current + 1)):
        raise CopyRefused(f"the SQLite backend is at schema version {max(versions, default=0)}, this program's is "
                          f"{current}: migrate it first (serve it once with this version), then copy",
                          "schema_version")


def _check_source_pages(source: sqlite3.Connection) -> None:
    # Reading every row touches only the tables' pages: a file cut short in its indexes would copy
    # "fine". quick_check reads every page (a few seconds for a million attempts, bench/pg_copy.py).
    problems = [r[0] for r in source.execute("PRAGMA quick_check(5)")]
    if problems != ["ok"]:
        raise CopyRefused(f"the SQLite file is damaged ({'; '.join(problems)}): nothing copied", "sqlite_damaged")


def _connect(dsn: str) -> psycopg.Connection:
    try:
        conn = psycopg.connect(dsn, connect_timeout=10, autocommit=True, application_name="pika-migrate")
    except psycopg.OperationalError as exc:
        raise StorageUnavailable(f"cannot reach the database {shown_dsn(dsn)}: {str(exc).strip()}") from None
    # "verified", and a --switch after it, stand on a copy that is on disk (whatever the server's default).
    conn.execute("SET synchronous_commit = on")
    return conn


def _refuse_rows(target: psycopg.Connection, tables: Sequence[str] = (), *, only_backend: bool = False) -> None:
    """Refuse a target that already holds a backend's rows: a copy goes into an empty database only."""
    if only_backend:
        tables = [t for t in ("signing_keys", "attempts")
                  if target.execute("SELECT to_regclass(%s)", (t,)).fetchone()[0] is not None]
    full = [t for t in tables if target.execute(f'SELECT EXISTS (SELECT 1 FROM "{t}")').fetchone()[0]]
    if full:
        raise CopyRefused(f"the database already holds backend rows ({', '.join(full)}): "
                          "a copy goes into an empty database", "target_not_empty")


def _copy_all(source: sqlite3.Connection, target: psycopg.Connection) -> tuple[dict[str, int], int, dict[str, int]]:
    order = _table_order(source, target)
    # Their own lock too: no other session writes these tables until this transaction ends.
    for table in order:
        target.execute(f'ALTER TABLE "{table}" DISABLE TRIGGER USER')
    for table in REPLACED_TABLES:
        target.execute(f'DELETE FROM "{table}"')
    _refuse_rows(target, order)  # again, under the lock: nothing came in since the first look
    expected = {t: source.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in order}
    head = _source_head(source)
    # Indexes other than keys are made once after their table is filled, not kept up row by row.
    indexes = target.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
        "AND indexname NOT IN (SELECT conname FROM pg_constraint WHERE contype IN ('p', 'u'))").fetchall()
    for name, _ in indexes:
        target.execute(f'DROP INDEX "{name}"')
    sums = {table: _copy_table(source, target, table) for table in order}
    for _, definition in indexes:  # a unique one the rows break fails here, and the copy rolls back
        target.execute(definition)
    for table in order:
        target.execute(f'ALTER TABLE "{table}" ENABLE TRIGGER USER')
    _set_counters(target, head)
    copied = {t: target.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in order}
    target_head = target.execute("SELECT last FROM event_counter").fetchone()[0]
    if copied != expected or target_head != head:
        differ = {t: (expected[t], copied[t]) for t in order if expected[t] != copied[t]}
        raise CopyRefused(f"the copy does not match its source (rows {differ}, feed head {head} against "
                          f"{target_head}): rolled back", "copy_mismatch")
    return copied, head, sums


def _table_order(source: sqlite3.Connection, target: psycopg.Connection) -> list[str]:
    """Every table to copy, each after the tables it references (its foreign keys, as the target says)."""
    mine = {r[0] for r in source.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")} - OWN_TABLES
    theirs = {r[0] for r in target.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() "
        "AND table_type = 'BASE TABLE'")} - OWN_TABLES
    if mine != theirs:  # the schemas' parity (tests/test_pg_schema.py) broken: nothing sensible to copy
        raise CopyRefused(f"the two schemas differ: SQLite only {sorted(mine - theirs)}, PostgreSQL only "
                          f"{sorted(theirs - mine)}", "schema_version")
    sorter = graphlib.TopologicalSorter({t: set() for t in mine})
    for child, parent in target.execute(
            "SELECT conrelid::regclass::text, confrelid::regclass::text FROM pg_constraint "
            "WHERE contype = 'f' AND connamespace = current_schema()::regnamespace"):
        if child != parent:
            sorter.add(child.strip('"'), parent.strip('"'))
    sorter.prepare()
    order: list[str] = []
    while sorter.is_active():  # ready tables by name, so every run copies in the same order
        ready = sorted(sorter.get_ready())
        order.extend(ready)
        sorter.done(*ready)
    return order


def _source_head(source: sqlite3.Connection) -> int:
    """The feed's highest seq: AUTOINCREMENT's own record too, in case the newest events were ever removed."""
    highest = source.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0]
    row = source.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
    return max(highest, row[0] if row else 0)


def _copy_table(source: sqlite3.Connection, target: psycopg.Connection, table: str) -> int:
    """Copy one table; the sum of its rows as read (`_row_sum`), for `written_since`."""
    columns = [r[1] for r in source.execute(f'PRAGMA table_info("{table}")')]
    names = ", ".join(f'"{c}"' for c in columns)
    rows = source.execute(f'SELECT {names} FROM "{table}"')
    total = 0
    with target.cursor().copy(f'COPY "{table}" ({names}) FROM STDIN') as stream:
        while batch := rows.fetchmany(ROWS_PER_FETCH):
            for row in batch:
                stream.write_row(row)
            total += _row_sum(batch)[1]
    return total % (1 << 64)


def _set_counters(target: psycopg.Connection, head: int) -> None:
    identities = target.execute(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = current_schema() "
        "AND (is_identity = 'YES' OR column_default LIKE 'nextval(%%')").fetchall()
    for table, column in identities:
        # is_called false: the next value taken is exactly max + 1 (1 for an empty table), as SQLite's rowid.
        target.execute(f'SELECT setval(pg_get_serial_sequence(%s, %s), coalesce(max("{column}"), 0) + 1, false) '
                       f'FROM "{table}"', (f'"{table}"', column))
    target.execute("UPDATE event_counter SET last = %s", (head,))
