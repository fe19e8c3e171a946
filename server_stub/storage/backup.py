"""A consistent copy of the backend's database while it serves, and the identity and epoch a restore changes.

SQLite: the online backup API, copied in steps INSIDE one read transaction
held on the source. WAL lets the served backend go on committing meanwhile
(a reader never holds a writer up), and the held transaction keeps every step
on one snapshot: without it SQLite restarts a stepped backup whenever another
connection writes, which under steady redemptions is for ever. Copying the
file instead loses what is still in the WAL (issue 15: 241 of 9,093 attempts).

PostgreSQL: `pg_dump --format=custom` on a snapshot exported from our own
transaction, so the manifest's facts (feed head, attempts) are the dump's.
The password travels in the child's environment, never on its command line.

A restore's new epoch (`backend_meta`, migration 6) is what tills notice:
they re-read the feed and send again what the backend may have lost.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from pos_app.core.migrate import make_private

BACKUP_PAGES = 4096  # pages per step (16 MiB at SQLite's 4 KiB page): a progress report, never a lock held


@dataclass(frozen=True)
class Facts:
    """What the manifest says of a database copy, read in the copy's own snapshot."""

    backend_id: str
    epoch: str
    epoch_since: float
    schema_version: int
    feed_head: int
    attempts: int

    def to_json(self) -> dict:
        return {"backend_id": self.backend_id, "epoch": self.epoch, "epoch_since": self.epoch_since,
                "schema_version": self.schema_version, "feed_head": self.feed_head, "attempts": self.attempts}


def read_facts(db: Any) -> Facts:
    """The identity, epoch and sizes, on any connection (SQLite or psycopg: the SQL both share)."""
    meta = dict(db.execute("SELECT key, value FROM backend_meta").fetchall())
    version = db.execute("SELECT coalesce(max(version), 0) FROM _migrations").fetchone()[0]
    head = db.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0]
    attempts = db.execute("SELECT count(*) FROM attempts").fetchone()[0]
    return Facts(str(meta["backend_id"]), str(meta["epoch"]), float(meta.get("epoch_since") or 0),
                 int(version), int(head), int(attempts))


def copy_sqlite(source: Path, target: Path, progress: Callable[[int, int], None] | None = None) -> Facts:
    """Copy the live database `source` into the new file `target` (0600); the copy's facts.

    Every transaction committed before this began is in the copy; later ones are not (one snapshot)."""
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    make_private(str(source))  # side files SQLite may make now are the owner's alone, as the database
    src = sqlite3.connect(source, isolation_level=None, timeout=30)
    src.execute("PRAGMA query_only=ON")
    dst = sqlite3.connect(target, isolation_level=None)
    # The copy is scratch until the archive holding it is synced: flushing it too would be a second 1 GB
    # of writes competing with the served backend's commits for the disk.
    dst.execute("PRAGMA synchronous=OFF")
    try:
        src.execute("BEGIN")
        facts = read_facts(src)  # the first read fixes the snapshot the steps copy
        src.backup(dst, pages=BACKUP_PAGES,
                   progress=None if progress is None else lambda status, left, total: progress(total - left, total))
        src.execute("COMMIT")
        # The copy stands alone: one file, no WAL beside it, so the archive holds all of it.
        dst.execute("PRAGMA journal_mode=DELETE")
    finally:
        src.close()
        dst.close()
    return facts


def in_use(path: Path) -> bool:
    """Whether a process holds the SQLite database open (a `serve`): every WAL connection keeps a shared
    lock, so an exclusive one is refused. Only for this host; another host cannot share SQLite anyway."""
    if not path.exists():
        return False
    probe = sqlite3.connect(path, isolation_level=None, timeout=0)
    try:
        probe.execute("PRAGMA locking_mode=EXCLUSIVE")
        probe.execute("BEGIN EXCLUSIVE")
        probe.execute("ROLLBACK")  # the exclusive lock stays (locking_mode), so nobody opens it meanwhile
        probe.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # what the WAL holds goes into the file set aside
        return False
    except sqlite3.OperationalError:
        return True
    finally:
        probe.close()


def identity(path: Path) -> str | None:
    """The backend_id of a SQLite database, or None if it has none yet (older than migration 6, or no backend)."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = db.execute("SELECT value FROM backend_meta WHERE key = 'backend_id'").fetchone()
        return None if row is None else str(row[0])
    except sqlite3.DatabaseError:
        return None
    finally:
        db.close()


def new_epoch(db: Any, since: float, mark: str = "?") -> str:
    """A new epoch, counted from `since` (when the restored copy was taken), in the caller's transaction;
    `mark` is the driver's placeholder (psycopg's own connection says %s)."""
    epoch = secrets.token_hex(8)
    db.execute(f"UPDATE backend_meta SET value = {mark} WHERE key = 'epoch'", (epoch,))
    db.execute(f"UPDATE backend_meta SET value = {mark} WHERE key = 'epoch_since'", (repr(float(since)),))
    return epoch


def set_new_epoch_sqlite(path: Path, since: float) -> str:
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("BEGIN IMMEDIATE")
        epoch = new_epoch(db, since)
        db.execute("COMMIT")
    finally:
        db.close()
    return epoch


# --- PostgreSQL --------------------------------------------------------------------------------------------


class ToolFailed(RuntimeError):
    """pg_dump or pg_restore refused; its last words are the message."""


def _pg_env(url: str) -> tuple[str, dict]:
    """A connection string without its password, and an environment carrying it."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    parts = conninfo_to_dict(url)
    env = dict(os.environ)
    password = parts.pop("password", None)
    if password is not None:
        env["PGPASSWORD"] = str(password)
    return make_conninfo(**parts), env


def _run(tool: list[str], env: dict) -> None:
    try:
        done = subprocess.run(tool, env=env, capture_output=True, text=True, timeout=24 * 3600)
    except FileNotFoundError as exc:
        raise ToolFailed(f"{tool[0]} is not installed (Debian: postgresql-client)") from exc
    if done.returncode != 0:
        raise ToolFailed(f"{tool[0]}: {done.stderr.strip()[-500:] or f'exit {done.returncode}'}")


def dump_postgres(url: str, target: Path) -> Facts:
    """`pg_dump --format=custom` of the database into `target` (0600), on the snapshot the facts were read in."""
    import psycopg

    conninfo, env = _pg_env(url)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        snapshot = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
        facts = read_facts(conn)
        # The exported snapshot lives as long as this transaction: pg_dump reads exactly what we counted.
        _run(["pg_dump", "--format=custom", f"--snapshot={snapshot}", "--no-owner", f"--file={target}",
              f"--dbname={conninfo}"], env)
        conn.execute("COMMIT")
    return facts


def database_empty(url: str) -> bool:
    """Whether the PostgreSQL database holds no table of ours (a restore goes only into an empty one)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
                            ).fetchone()[0] == 0


def restore_postgres(dump: Path, url: str, since: float) -> tuple[str, Facts]:
    """The dump restored into the empty database `url` in one transaction, then given a new epoch."""
    import psycopg

    conninfo, env = _pg_env(url)
    _run(["pg_restore", "--no-owner", "--exit-on-error", "--single-transaction", f"--dbname={conninfo}",
          str(dump)], env)
    with psycopg.connect(url) as conn:  # one transaction, committed on leaving the block
        epoch = new_epoch(conn, since, "%s")
        facts = read_facts(conn)
    return epoch, facts

