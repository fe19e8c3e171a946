"""`backup` and `restore`: a consistent copy of a serving backend in one file, and that copy made the backend again.

A backup holds the database (SQLite's online backup, or pg_dump), the keys
and the config, vouched for by a manifest (storage/backup_archive.py). A
restore checks the whole archive first and changes nothing if any of it is
wrong; it refuses another backend's archive over a folder that holds a
different one (unless `--force`: an empty folder is fine, the disk died), and
a folder a `serve` on this host holds open. What it replaces is kept aside in
`replaced-<time>/`, never deleted. The restored backend gets a NEW epoch
counted from the backup's `taken_at`: tills that see it read the feed again
from the start and send again what they had confirmed since (docs/operating.md,
Backups and restore drills), so nothing the copy lacks is lost for good.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from ..datadir import CONFIG_NAME, DB_NAME, KEYS_DIR, DataDir, NotInitialised, check_database_url
from ..errors import Conflict, Invalid, StorageFull, Unprocessable
from ..storage import backup_archive as archive
from ..storage import backup as copies
from ..storage.base import shown_dsn
from .output import print_json

SIDE_FILES = ("-wal", "-shm")
PG_DUMP_SECTION = "docs/operating.md, Backups and restore drills"


def add_to(sub) -> None:
    p = sub.add_parser("backup", help="a consistent copy of the backend (database, keys, config) in one file")
    p.add_argument("--data", required=True)
    p.add_argument("--out", required=True, help="the backup file to make (never overwritten)")
    p.add_argument("--nice", type=int, default=10, choices=range(0, 20), metavar="0-19",
                   help="how much lower than the caller's the backup's CPU priority is (default 10; 0: the same)")
    p.set_defaults(run=backup)
    p = sub.add_parser("restore", help="make a backend again from a backup (serve stopped)")
    p.add_argument("--data", required=True, help="the backend's folder (an empty or new one after a lost disk)")
    p.add_argument("--from", dest="source", required=True, metavar="FILE", help="the backup file")
    p.add_argument("--database", metavar="URL", default=os.environ.get("PIKA_DATABASE") or None,
                   help="an empty PostgreSQL database to restore a PostgreSQL backup into (also $PIKA_DATABASE)")
    p.add_argument("--force", action="store_true",
                   help="replace a backend other than the backup's, or one whose identity cannot be read")
    p.set_defaults(run=restore)


# --- backup --------------------------------------------------------------------------------------------------


def backup(args) -> int:
    data = DataDir(args.data)
    if not data.initialised:
        raise NotInitialised(f"{args.data} holds no backend")
    out = Path(args.out).absolute()
    archive.check_target(out)
    database = data.database()
    engine = "sqlite" if database is None else "postgresql"
    if args.nice:
        os.nice(args.nice)  # a backup yields the CPU to the backend it copies (pg_dump, a child, inherits it)
    copy = archive.scratch(out, ".db")
    started = time.monotonic()
    try:
        taken_at = time.time()  # at or before the snapshot: tills send again from here
        try:
            if database is None:
                facts = copies.copy_sqlite(data.db_path, copy)
            else:
                facts = copies.dump_postgres(database, copy)
        except (sqlite3.OperationalError, OSError) as exc:
            if archive.is_full(exc):
                raise StorageFull("storage_full", f"the disk holding {out} is full: no backup was written") \
                    from None
            raise
        except copies.ToolFailed as exc:
            raise Unprocessable("backup_failed", f"{exc}; see {PG_DUMP_SECTION}") from None
        members = {archive.DATABASES[engine]: copy}
        if (data.path / CONFIG_NAME).is_file():
            members[CONFIG_NAME] = data.path / CONFIG_NAME
        for key in sorted(data.keys_path.glob("*.pem")):
            members[f"{KEYS_DIR}/{key.name}"] = key
        manifest = archive.write(out, dict(facts.to_json(), engine=engine, taken_at=taken_at,
                                           host=socket.gethostname()), members)
    finally:
        copy.unlink(missing_ok=True)
    print_json({"out": str(out), "bytes": out.stat().st_size, "engine": engine, "seconds":
                round(time.monotonic() - started, 3), **{k: manifest[k] for k in (
                    "backend_id", "epoch", "taken_at", "schema_version", "feed_head", "attempts")}})
    return 0


# --- restore -------------------------------------------------------------------------------------------------


def restore(args) -> int:
    data = DataDir(args.data)
    source = Path(args.source).absolute()
    url = check_database_url(args.database) if args.database else None
    data.path.mkdir(mode=0o700, parents=True, exist_ok=True)
    previous = data.database() if data.initialised else None  # a PostgreSQL database being replaced
    staging = Path(tempfile.mkdtemp(dir=data.path, prefix=".restore-"))
    try:
        manifest = archive.unpack(source, staging)
        engine = manifest["engine"]
        _check_fits(manifest, engine, url, staging)
        _check_folder(data, manifest, force=args.force)
        if engine == "sqlite":
            epoch = copies.set_new_epoch_sqlite(staging / DB_NAME, manifest["taken_at"])
        else:
            epoch, _ = copies.restore_postgres(staging / archive.DATABASES[engine], url, manifest["taken_at"])
        aside = _swap(data, staging, engine)
        if url is not None:
            data.set_config(database=url)
    finally:
        archive.discard(staging)
    _audit(data, manifest, epoch, source, aside)
    taken_back = _taken_back(aside, previous if previous != url else None, manifest["taken_at"])
    if taken_back["withdrawals"]:
        sys.stderr.write(f"warning: the restore takes back {len(taken_back['withdrawals'])} withdrawal(s) made "
                         "since the backup (a till revoked or rolled, staff disabled, a key or token changed): "
                         "make them again, see \"taken_back\" (docs/operating.md, \"Backups and restore drills\")\n")
    print_json({"restored": str(source), "engine": engine, "backend_id": manifest["backend_id"], "epoch": epoch,
                "epoch_since": manifest["taken_at"], "feed_head": manifest["feed_head"],
                "attempts": manifest["attempts"], "database": shown_dsn(url) if url else None,
                "replaced": None if aside is None else str(aside), "taken_back": taken_back})
    return 0


# What a restore takes back that an operator must do again: a thief's till active again, a leaked key trusted.
_WITHDRAWALS = ("device.revoke", "device.roll", "staff.disable", "staff.set_pin", "staff.change_pin",
                "key.rotate", "lan_key.rotate", "token.revoke", "token.rotate", "voucher.revoke", "claim.revoke")


def _taken_back(aside: Path | None, database: str | None, taken_at: float) -> dict:
    """The admin actions the replaced database recorded after the backup was taken: a restore undoes them."""
    query = ("SELECT id, at, action, target, actor, retailer_id FROM audit_log WHERE at > ? ORDER BY id")
    rows: list = []
    try:
        if aside is not None and (aside / DB_NAME).is_file():
            conn = sqlite3.connect(f"file:{aside / DB_NAME}?mode=ro", uri=True)
            try:
                rows = conn.execute(query, (taken_at,)).fetchall()
            finally:
                conn.close()
        elif database is not None:
            import psycopg

            with psycopg.connect(database, connect_timeout=10) as conn:
                rows = conn.execute(query.replace("?", "%s"), (taken_at,)).fetchall()
    except Exception as exc:  # noqa: BLE001 — a report of what to do again, never a reason to fail the restore
        return {"count": None, "withdrawals": [], "unread": f"{type(exc).__name__}: {str(exc)[:200]}"}
    fields = ("id", "at", "action", "target", "actor", "retailer_id")
    withdrawals = [dict(zip(fields, r)) for r in rows if r[2] in _WITHDRAWALS]
    return {"count": len(rows), "withdrawals": withdrawals[:500]}


def _check_fits(manifest: dict, engine: str, url: str | None, staging: Path) -> None:
    """The backup is one this program can restore, where it is asked to."""
    from ..storage.pg_schema import MIGRATIONS as PG_MIGRATIONS
    from ..storage.schema import MIGRATIONS

    known = len(MIGRATIONS if engine == "sqlite" else PG_MIGRATIONS)
    if manifest["schema_version"] > known:
        raise Unprocessable("backup_too_new", f"the backup's schema is version {manifest['schema_version']}, "
                            f"newer than this program's {known}: restore it with the version that made it")
    if engine == "sqlite":
        if url is not None:
            raise Invalid("engine_mismatch", "this is a backup of a SQLite backend: restore it without "
                          "--database, then move it with migrate-to-postgres")
        if copies.identity(staging / DB_NAME) != manifest["backend_id"]:
            raise Invalid("backup_altered", "the backup's database is not the backend its manifest names")
    else:
        if url is None:
            raise Invalid("database_required", "this is a backup of a PostgreSQL backend: name an empty "
                          f"database with --database (see {PG_DUMP_SECTION})")
        if not copies.database_empty(url):
            raise Conflict("database_not_empty", f"{shown_dsn(url)} is not empty: a backup is restored into a "
                           f"new, empty database (createdb; see {PG_DUMP_SECTION})")


def _present_identity(data: DataDir) -> tuple[bool, str | None]:
    """(whether the folder holds a backend, its backend_id when it can be read)."""
    if not data.initialised and not data.db_path.exists():
        return False, None
    database = None
    try:
        database = data.database()
    except ValueError:
        pass
    if database is None:
        return True, copies.identity(data.db_path) if data.db_path.exists() else None
    try:
        import psycopg
        with psycopg.connect(database, connect_timeout=5) as conn:
            row = conn.execute("SELECT value FROM backend_meta WHERE key = 'backend_id'").fetchone()
        return True, None if row is None else row[0]
    except Exception:  # unreachable or not ours: its identity cannot be read
        return True, None


def _check_folder(data: DataDir, manifest: dict, *, force: bool) -> None:
    held, present = _present_identity(data)
    if held and present != manifest["backend_id"] and not force:
        which = "a backend whose identity cannot be read" if present is None else f"another backend ({present})"
        raise Conflict("other_backend", f"{data.path} holds {which}, not the backup's ({manifest['backend_id']}):"
                       " restore into an empty folder, or say --force to replace it (it is kept aside)")
    if data.db_path.exists() and copies.in_use(data.db_path):
        raise Conflict("backend_running", f"a process holds {data.db_path} open (serve?): stop it first")


def _swap(data: DataDir, staging: Path, engine: str) -> Path | None:
    """The folder's database, keys and config moved aside, the restored ones put in their place."""
    present = [name for name in (DB_NAME, *(DB_NAME + s for s in SIDE_FILES), KEYS_DIR, CONFIG_NAME)
               if (data.path / name).exists()]
    aside = None
    if present:
        aside = data.path / time.strftime("replaced-%Y%m%dT%H%M%SZ", time.gmtime())
        while aside.exists():
            aside = aside.with_name(aside.name + "x")
        aside.mkdir(mode=0o700)
        for name in present:
            os.replace(data.path / name, aside / name)
    if engine == "sqlite":
        os.replace(staging / DB_NAME, data.db_path)
    if (staging / KEYS_DIR).is_dir():
        os.replace(staging / KEYS_DIR, data.keys_path)
        os.chmod(data.keys_path, 0o700)
    if (staging / CONFIG_NAME).is_file():
        config = json.loads((staging / CONFIG_NAME).read_text())
        config.pop("database", None)  # the database restored into, not the one backed up, set by the caller
        data.set_config(**config)
    return aside


def _audit(data: DataDir, manifest: dict, epoch: str, source: Path, aside: Path | None) -> None:
    from ..backend import Backend
    from ..operations import audit

    backend = Backend(data.path)
    try:
        audit.record(backend.ctx, "backend.restore", manifest["backend_id"], detail={
            "archive": source.name, "taken_at": manifest["taken_at"], "epoch": epoch,
            "previous_epoch": manifest["epoch"], "feed_head": manifest["feed_head"],
            "attempts": manifest["attempts"], "replaced": None if aside is None else aside.name})
    finally:
        backend.close()
