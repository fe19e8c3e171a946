"""One writer thread per process that commits concurrent requests together (group commit).

SQLite has one writer, and a durable commit costs an fsync. Requests hand
their write to this thread; it runs every write waiting in one transaction
and commits once. A request is answered only after the commit that holds its
write is on disk, so "201" still means "survives a power cut", at one fsync
per batch, not per request.

Two kinds of write:
- `submit(fn)`: any function of the database, each in its own savepoint, so
  a failing one rolls back alone: nothing half-written.
- `insert_row(table, columns, row)`: one row, the busiest path (redemptions).
  All rows of a batch go in as one multi-row INSERT: one SQLite call instead
  of one per request, which matters because every call releases the GIL and
  must win it back from the request threads. If that INSERT breaks a
  constraint, the rows go in one by one and only the offending ones fail,
  with sqlite3.IntegrityError.

Several server processes may share the database: a lock file makes their
writers take turns, blocking in the kernel rather than polling.
"""

from __future__ import annotations

import fcntl
import logging
import os
import queue
import sqlite3
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import sqlite_utils

from pos_app.core.migrate import open_database

log = logging.getLogger(__name__)

WriteFn = Callable[[sqlite_utils.Database], Any]
_STOP = object()
MAX_BATCH = 256


@dataclass
class _FnJob:
    fn: WriteFn
    future: Future


@dataclass
class _RowJob:
    table: str
    columns: tuple[str, ...]
    row: Sequence[Any]
    future: Future


class Writer:
    def __init__(self, path: str):
        self._path = path
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.batches = 0
        self.writes = 0
        self._thread = threading.Thread(target=self._run, name="db-writer", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error

    def submit(self, fn: WriteFn) -> Any:
        """Run `fn(db)` in the writer's transaction, in its own savepoint; return
        its result once durable."""
        future: Future = Future()
        self._queue.put(_FnJob(fn, future))
        return future.result()

    def insert_row(self, table: str, columns: tuple[str, ...], row: Sequence[Any]) -> int:
        """Insert one row; its rowid once durable. sqlite3.IntegrityError if it
        breaks a constraint (then nothing of it was written)."""
        future: Future = Future()
        self._queue.put(_RowJob(table, columns, row, future))
        return future.result()

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join(timeout=10)

    def _run(self) -> None:
        try:
            db = open_database(self._path, synchronous="FULL")
        except BaseException as exc:  # reported to the constructor's caller
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        conn = db.conn
        self._lock_fd = os.open(self._path + ".writer-lock", os.O_RDWR | os.O_CREAT, 0o600)
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is _STOP:
                break
            batch = [first]
            while len(batch) < MAX_BATCH:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is _STOP:
                    stopping = True
                    break
                batch.append(job)
            outcomes = self._commit(db, conn, batch)
            # Answer only after the lock is free: the next writer starts at once.
            for future, ok, value in outcomes:
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)
        conn.close()
        os.close(self._lock_fd)

    def _begin(self, conn) -> None:
        """Take the cross-process writer lock, then BEGIN IMMEDIATE.

        SQLite's own busy handler sleeps 1, 2, 5, 10 … ms between tries, far
        longer than a commit takes; a lock file blocks in the kernel instead
        and wakes the next writer as soon as the lock is free.
        """
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            conn.execute("BEGIN IMMEDIATE")
        except BaseException:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            raise

    def _commit(self, db, conn, batch) -> list[tuple[Future, bool, Any]]:
        """Run a batch in one transaction; what to answer each job."""
        try:
            self._begin(conn)
        except Exception as exc:
            return [(job.future, False, exc) for job in batch]
        results: list[tuple[Future, bool, Any]] = []
        try:
            rows: dict[tuple[str, tuple[str, ...]], list[_RowJob]] = {}
            for job in batch:
                if isinstance(job, _RowJob):
                    rows.setdefault((job.table, job.columns), []).append(job)
                else:
                    results.append(self._run_fn(conn, db, job.fn, job.future))
            for (table, columns), jobs in rows.items():
                outcomes = insert_rows(conn, table, columns, [job.row for job in jobs])
                results.extend((job.future, ok, value) for job, (ok, value) in zip(jobs, outcomes))
            conn.execute("COMMIT")
        except Exception as exc:
            log.exception("commit failed; %d writes refused", len(batch))
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            return [(job.future, False, exc) for job in batch]
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        self.batches += 1
        self.writes += len(batch)
        return results

    @staticmethod
    def _run_fn(conn, db, fn: WriteFn, future: Future) -> tuple[Future, bool, Any]:
        conn.execute("SAVEPOINT job")
        try:
            result = fn(db)
        except BaseException as exc:
            conn.execute("ROLLBACK TO job")
            conn.execute("RELEASE job")
            return future, False, exc
        conn.execute("RELEASE job")
        return future, True, result


def insert_rows(conn, table: str, columns: Sequence[str], rows: list[Sequence[Any]]) -> list[tuple[bool, Any]]:
    """Insert rows in one statement if they all fit, else one by one; for each
    row (True, rowid) or (False, sqlite3.IntegrityError)."""
    placeholders = "(" + ", ".join("?" * len(columns)) + ")"
    head = f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
    try:
        # One statement inserts every row or none. Rows of one INSERT get
        # ascending rowids (there is no other writer), so sorting the
        # RETURNING rows restores their order.
        cursor = conn.execute(head + ", ".join([placeholders] * len(rows)) + " RETURNING rowid",
                              [value for row in rows for value in row])
        return [(True, rowid) for rowid in sorted(r[0] for r in cursor.fetchall())]
    except sqlite3.IntegrityError:
        pass
    outcomes = []
    for row in rows:
        try:
            outcomes.append((True, conn.execute(head + placeholders, row).lastrowid))
        except sqlite3.IntegrityError as exc:  # the statement alone is undone
            outcomes.append((False, exc))
    return outcomes
