"""Group commit for a process's writes: the first waiting request commits everyone's.

SQLite has one writer, and a durable commit costs an fsync. A request with a
write queues it; if no commit is under way it leads: it takes every write
waiting at that moment, runs them in one transaction and commits once, then
wakes their requests and hands the lead to the first write that queued
meanwhile. A request is answered only after the commit that holds its write
is on disk, so "201" still means "survives a power cut", at one fsync per
batch, not per request.

Why leaders, not a writer thread (measured, docs/benchmarks.md): with a
thread every write cost two hand-offs between threads (request → writer →
request), each a wake-up and a fight for the GIL; here the leader writes in
its own thread and only the others wait, each on its own lock.

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
leaders take turns, blocking in the kernel rather than polling.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
from typing import Any, Callable, Sequence

import sqlite_utils

from pos_app.core.migrate import open_database

from .base import disk_full

log = logging.getLogger(__name__)

WriteFn = Callable[[sqlite_utils.Database], Any]
MAX_BATCH = 256


class _Job:
    """One write and its outcome. `wake` is held from birth and released
    once, when the job is done or when its request is asked to lead."""

    __slots__ = ("fn", "table", "columns", "row", "wake", "done", "ok", "value")

    def __init__(self, fn: WriteFn | None, table: str = "", columns: tuple[str, ...] = (),
                 row: Sequence[Any] = ()):
        self.fn, self.table, self.columns, self.row = fn, table, columns, row
        self.wake = threading.Lock()
        self.wake.acquire()
        self.done = False
        self.ok = False
        self.value: Any = None

    def result(self) -> Any:
        if self.ok:
            return self.value
        raise self.value


class Writer:
    def __init__(self, path: str):
        self._path = path
        # Used by one leader at a time (the lead passes between threads).
        self._db = open_database(path, synchronous="FULL", check_same_thread=False)
        self._conn = self._db.conn
        self._lock_fd = os.open(path + ".writer-lock", os.O_RDWR | os.O_CREAT, 0o600)
        self._mutex = threading.Lock()  # guards _waiting, _leading and _closed
        self._idle = threading.Condition(self._mutex)  # the lead fell free (for close)
        self._waiting: list[_Job] = []
        self._leading = False
        self._closed = False
        self.batches = 0
        self.writes = 0

    def submit(self, fn: WriteFn) -> Any:
        """Run `fn(db)` in a group transaction, in its own savepoint; return
        its result once durable."""
        return self._write(_Job(fn))

    def insert_row(self, table: str, columns: tuple[str, ...], row: Sequence[Any]) -> int:
        """Insert one row; its rowid once durable. sqlite3.IntegrityError if it
        breaks a constraint (then nothing of it was written)."""
        return self._write(_Job(None, table, columns, row))

    def queued(self) -> int:
        """Writes waiting for a commit now (the one being committed among them): /health/ready's figure."""
        return len(self._waiting) + (1 if self._leading else 0)

    def close(self) -> None:
        """Refuse new writes, let those already queued commit, then close."""
        with self._mutex:
            if self._closed:
                return
            self._closed = True
            while self._leading:
                self._idle.wait()
        self._conn.close()
        os.close(self._lock_fd)

    def _write(self, job: _Job) -> Any:
        with self._mutex:
            if self._closed:
                raise RuntimeError("the writer is closed")
            self._waiting.append(job)
            lead = not self._leading
            self._leading = True
        if not lead:
            job.wake.acquire()  # until our batch is committed, or the lead is ours
            if job.done:
                return job.result()
        self._lead()
        return job.result()

    def _lead(self) -> None:
        """Commit one batch holding everything waiting (our job among it), wake
        its requests, and pass the lead on to the first write that came since."""
        batch: list[_Job] = []
        try:
            try:
                self._take_lock()
            except BaseException as exc:
                with self._mutex:
                    batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
                for job in batch:
                    job.ok, job.value = False, exc
                return
            try:
                # Taken only now: whatever queued while another process held
                # the lock rides along in this commit.
                with self._mutex:
                    batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
                self._commit(batch)
            finally:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        finally:
            with self._mutex:
                for job in batch:
                    job.done = True
                    if not job.ok and job.value is None:  # a BaseException cut the commit short
                        job.value = RuntimeError("the write was interrupted")
                nxt = self._waiting[0] if self._waiting else None
                self._leading = nxt is not None
                if nxt is None:
                    self._idle.notify_all()
            # batch[0] is the leader's own job: the lead always goes to the
            # oldest waiting write, and a batch takes the oldest first.
            for job in batch[1:]:
                job.wake.release()
            if nxt is not None:
                nxt.wake.release()  # not done: it leads the next batch

    def _take_lock(self) -> None:
        """The cross-process writer lock. SQLite's own busy handler sleeps 1,
        2, 5, 10 … ms between tries, far longer than a commit takes; a lock
        file blocks in the kernel instead and wakes the next writer as soon
        as the lock is free."""
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)

    def _commit(self, batch: list[_Job]) -> None:
        """Run a batch in one transaction; set each job's outcome."""
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
        except Exception as exc:
            for job in batch:
                job.ok, job.value = False, exc
            return
        try:
            rows: dict[tuple[str, tuple[str, ...]], list[_Job]] = {}
            for job in batch:
                if job.fn is None:
                    rows.setdefault((job.table, job.columns), []).append(job)
                else:
                    self._run_fn(job)
            for (table, columns), jobs in rows.items():
                outcomes = insert_rows(conn, table, columns, [job.row for job in jobs])
                for job, (ok, value) in zip(jobs, outcomes):
                    job.ok, job.value = ok, value
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:  # never leave the next leader a transaction
                conn.execute("ROLLBACK")
            if not isinstance(exc, Exception):
                raise
            if disk_full(exc):  # the operator's to fix, not a bug: said once a batch, without a traceback
                log.error("the disk is full: %d writes refused (storage_full)", len(batch))
            else:
                log.exception("commit failed; %d writes refused", len(batch))
            for job in batch:
                job.ok, job.value = False, exc
            return
        self.batches += 1
        self.writes += len(batch)

    def _run_fn(self, job: _Job) -> None:
        conn = self._conn
        conn.execute("SAVEPOINT job")
        try:
            job.value, job.ok = job.fn(self._db), True
        except BaseException as exc:
            if not conn.in_transaction:
                # SQLite ended the whole transaction itself (it may, on SQLITE_FULL or an I/O error): there
                # is no savepoint left, and every write of the batch failed with this cause.
                raise
            conn.execute("ROLLBACK TO job")
            conn.execute("RELEASE job")
            job.ok, job.value = False, exc
            return
        conn.execute("RELEASE job")


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
