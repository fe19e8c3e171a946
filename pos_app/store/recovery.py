"""Opening the till's store when its file is damaged or cannot be read.

A corrupt store used to end the till with one line on a terminal nobody
sees. Here a damaged file (not a database, malformed, failing
`PRAGMA quick_check`) is moved aside, never deleted, with its `-wal` and
`-shm`; the redemptions it had not synced yet are exported to a JSON file
beside it when it can still be read; and a fresh store is started, enrolled
as the old one was when that much could be read, so the till can sell. A path
the till cannot read or write (permissions, a directory in the file's place,
a missing folder) is left exactly as it is and reported. Either way the
caller gets a `StoreProblem` with a stable code and a message in plain words
(docs/data-folder.md).
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import shutil
import sqlite3
import stat
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

from pos_app.words.i18n import N_, _

from .settings import PREFERENCES
from .till_store import TillStore

log = logging.getLogger(__name__)

COMPANIONS = ("-wal", "-shm", "-journal")
# SQLite's primary result codes: damage in the file, or no access to it. Anything else (busy,
# locked, a full disk) is not the file's fault and is raised as it is: a store is never moved
# aside for it.
_DAMAGED_CODES = {11, 26}  # SQLITE_CORRUPT, SQLITE_NOTADB
_UNREADABLE_CODES = {3, 8, 10, 14, 23}  # PERM, READONLY, IOERR, CANTOPEN, AUTH
# The settings that make a store this till, and the till's own choices (the window's settings
# dialog): carried into the fresh store when still readable.
_ENROLLMENT = ("device_id", "device_token", "retailer_id", "store_id")
_SHM_KEPT_MAX = 64 << 20  # a wal-index beyond this is no real one: not held in memory

DAMAGED_TEXT = N_("The till's data file was damaged and could not be used. It was kept, unchanged, as {kept}, "
                  "and the till started a new one.")
UNREADABLE_TEXT = N_("The till cannot open its data file {path}: {reason}. Nothing was moved or changed. Call "
                     "your manager: the file and its folder must be readable and writable by the till before "
                     "it can start.")
# One form for any count: the catalogs hold no plurals.
EXPORTED_TEXT = N_("Redemptions not yet sent to the backend: {count}, saved to {outbox}.")
REQUEUED_TEXT = N_("They are back in the till's list to send and go to the backend at its next sync "
                   "(it keeps each one only once).")
NOTHING_UNSENT_TEXT = N_("It held no redemptions waiting to be sent to the backend (list: {outbox}).")
NOT_EXPORTED_TEXT = N_("The redemptions not yet sent to the backend could not be read from it; the kept file "
                       "still holds whatever is left of them.")
ENROLLED_TEXT = N_("This till is still enrolled: it fetches its vouchers again at the next sync. Call your "
                   "manager and give them this message.")
NOT_ENROLLED_TEXT = N_("This till must be enrolled again before it can redeem. Call your manager and give them "
                       "this message.")


class StoreProblem(Exception):
    """The store could not be opened as it was: `code` is `store_damaged` (moved aside, a fresh one
    started) or `store_unreadable` (nothing touched, the till cannot start)."""

    DAMAGED = "store_damaged"
    UNREADABLE = "store_unreadable"

    def __init__(self, code: str, path: Path, reason: str, *, kept: Path | None = None,
                 outbox: Path | None = None, exported: int | None = None, enrolled: bool = False,
                 requeued: int = 0):
        self.code, self.path, self.reason = code, Path(path), reason
        self.kept, self.outbox, self.exported, self.enrolled = kept, outbox, exported, enrolled
        self.requeued = requeued  # exported entries put back in the fresh store's outbox
        super().__init__(code, str(path), reason)

    def __str__(self) -> str:
        return self.message()

    @property
    def fatal(self) -> bool:
        """True when the till cannot go on: nothing to open, or a fresh store it cannot redeem with."""
        return self.code == self.UNREADABLE or not self.enrolled

    def message(self) -> str:
        """What happened and what to do, in the current language."""
        if self.code == self.UNREADABLE:
            return _(UNREADABLE_TEXT).format(path=self.path, reason=self.reason)
        parts = [_(DAMAGED_TEXT).format(kept=self.kept)]
        if self.exported is None:
            parts.append(_(NOT_EXPORTED_TEXT))
        elif self.exported == 0:
            parts.append(_(NOTHING_UNSENT_TEXT).format(outbox=self.outbox))
        else:
            parts.append(_(EXPORTED_TEXT).format(count=self.exported, outbox=self.outbox))
            if self.requeued:
                parts.append(_(REQUEUED_TEXT))
        parts.append(_(ENROLLED_TEXT if self.enrolled else NOT_ENROLLED_TEXT))
        return " ".join(parts)

    def to_json(self) -> dict:
        return {"code": self.code, "message": self.message(), "path": str(self.path),
                "kept": None if self.kept is None else str(self.kept),
                "outbox": None if self.outbox is None else str(self.outbox),
                "exported": self.exported, "requeued": self.requeued, "enrolled": self.enrolled,
                "reason": self.reason}


def open_store(path: str | Path, **store_args) -> tuple[TillStore, StoreProblem | None]:
    """The store at `path`, checked; with the damage report when it had to start fresh.

    Raises `StoreProblem` (store_unreadable) when the path cannot be read or written."""
    path = Path(path)
    for _attempt in range(3):
        _check_access(path)
        found = _identity(path)
        shm = _held_shm(path)
        damage = _probe(path)
        if damage is None:
            try:
                return TillStore(path, **store_args), None
            except sqlite3.DatabaseError as exc:  # what the check could not see: a schema the migrations trip on
                damage = _classify(exc, path)
                shm = None
        # Another process of this till may have set the same file aside and started afresh meanwhile:
        # only the file that was found damaged is moved, never its successor.
        if _identity(path) == found:
            break
    else:
        raise StoreProblem(StoreProblem.UNREADABLE, path, "the file kept changing while it was checked")
    try:
        problem, enrollment, entries = _set_aside(path, damage, shm)
    except OSError as exc:  # a folder the till may not rename in: reported, left as it is
        log.error("the damaged store %s could not be moved aside: %s", path, exc)
        raise StoreProblem(StoreProblem.UNREADABLE, path, f"{damage}; {exc.strerror or exc}") from exc
    store = TillStore(path, **store_args)
    problem.enrolled = _carry_enrollment(store, enrollment)
    if problem.enrolled and entries:
        # The same till (its device and keys carried over) sends them itself: nothing is lost.
        problem.requeued = store.requeue(entries)
    log.error("the till's store %s was damaged (%s): kept as %s, unsynced redemptions: %s, enrolled again: %s",
              path, damage, problem.kept, problem.outbox or "not readable", problem.enrolled)
    return store, problem


def unreadable(path: str | Path, error: OSError) -> StoreProblem:
    """The problem for a data folder that cannot be made or reached (the caller's mkdir failed)."""
    return StoreProblem(StoreProblem.UNREADABLE, Path(path), error.strerror or str(error))


def _check_access(path: Path) -> None:
    def refuse(reason: str) -> StoreProblem:
        log.error("the till's store %s cannot be opened: %s", path, reason)
        return StoreProblem(StoreProblem.UNREADABLE, path, reason)

    if not path.parent.is_dir():
        raise refuse(os.strerror(2) if not path.parent.exists() else os.strerror(20))
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise refuse(exc.strerror or str(exc)) from None
    if mode is not None and stat.S_ISDIR(mode):
        raise refuse(os.strerror(21))
    if mode is not None and not stat.S_ISREG(mode):
        raise refuse("not a regular file")
    try:
        if mode is not None:
            os.close(os.open(path, os.O_RDWR))
        if not os.access(path.parent, os.W_OK | os.X_OK):  # SQLite makes its -wal and -shm there
            raise PermissionError(13, os.strerror(13))
    except OSError as exc:
        raise refuse(exc.strerror or str(exc)) from None


def _identity(path: Path) -> tuple | None:
    try:
        found = path.stat()
    except OSError:
        return None
    return found.st_dev, found.st_ino, found.st_size, found.st_mtime_ns


def _held_shm(path: Path) -> bytes | None:
    # A WAL-aware check rewrites the -shm index even when it fails; what was there is kept.
    shm = Path(f"{path}-shm")
    try:
        if _has_wal(path) and shm.stat().st_size <= _SHM_KEPT_MAX:
            return shm.read_bytes()
    except OSError:
        pass
    return None


def _has_wal(path: Path) -> bool:
    try:
        return Path(f"{path}-wal").stat().st_size > 0
    except OSError:
        return False


def _probe(path: Path) -> str | None:
    """What is wrong with the file as a database, or None. Leaves the main file and -wal untouched."""
    if not path.exists() or path.stat().st_size == 0:
        return None
    # Without a -wal the main file is the whole database: read it immutable, creating nothing. With
    # one (a crash, or another process of this till has it open) read it as SQLite would, but read-only
    # so closing cannot checkpoint into a damaged file.
    mode = "mode=ro" if _has_wal(path) else "immutable=1"
    try:
        conn = sqlite3.connect(f"file:{quote(str(path))}?{mode}", uri=True, timeout=30)
        try:
            rows = conn.execute("PRAGMA quick_check").fetchall()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        return _classify(exc, path)
    if rows != [("ok",)]:
        return "quick_check: " + "; ".join(str(row[0]) for row in rows[:5])
    return None


def _classify(exc: sqlite3.DatabaseError, path: Path) -> str:
    """The damage an SQLite error means; raises StoreProblem for no access, the error itself otherwise."""
    code = getattr(exc, "sqlite_errorcode", None)
    primary = None if code is None else code & 0xFF
    if primary in _DAMAGED_CODES:
        return str(exc)
    if primary in _UNREADABLE_CODES:
        log.error("the till's store %s cannot be opened: %s", path, exc)
        raise StoreProblem(StoreProblem.UNREADABLE, path, str(exc)) from exc
    raise exc


def _set_aside(path: Path, damage: str, shm: bytes | None) -> tuple[StoreProblem, dict | None, list[dict] | None]:
    """Move the file and its companions to a free sibling name; export what can still be read."""
    kept = _free_name(path)
    os.rename(path, kept)
    for suffix in COMPANIONS:
        companion = Path(f"{path}{suffix}")
        if companion.exists():
            os.rename(companion, f"{kept}{suffix}")
    if shm is not None and Path(f"{kept}-shm").exists():
        Path(f"{kept}-shm").write_bytes(shm)
    for file in [kept, *(Path(f"{kept}{suffix}") for suffix in COMPANIONS)]:
        if file.exists():
            os.chmod(file, 0o600)
    (entries, complete), enrollment = _read_what_is_left(kept)
    outbox = None
    if entries is not None:
        outbox = Path(f"{kept}.outbox.json")
        # `complete` false: reading stopped at a damaged page, later entries may be missing.
        _write_private(outbox, {"store": kept.name, "damage": damage, "exported_at": time.time(),
                                "complete": complete, "entries": entries})
    problem = StoreProblem(StoreProblem.DAMAGED, path, damage, kept=kept, outbox=outbox,
                           exported=None if entries is None else len(entries))
    return problem, enrollment, entries


def _free_name(path: Path) -> Path:
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    base = f"{path.name}.damaged-{stamp}"
    for n in range(1, 10_000):
        name = path.with_name(base if n == 1 else f"{base}-{n}")
        if not any(Path(f"{name}{suffix}").exists() for suffix in ("", *COMPANIONS, ".outbox.json")):
            return name
    raise FileExistsError(f"no free name beside {path}")


def _read_what_is_left(kept: Path) -> tuple[tuple[list[dict] | None, bool], dict | None]:
    """The outbox's entries and the enrollment, read from a copy (SQLite may write beside what it
    reads, and the kept files stay as they were); None for what cannot be read. Never raises."""
    try:
        with tempfile.TemporaryDirectory(prefix=".recovery-", dir=kept.parent) as scratch:
            copy = Path(scratch) / "store.sqlite3"
            for suffix in ("", "-wal"):
                if Path(f"{kept}{suffix}").exists():
                    shutil.copyfile(f"{kept}{suffix}", f"{copy}{suffix}")
            conn = sqlite3.connect(f"file:{quote(str(copy))}?mode=ro", uri=True)
            try:
                return _outbox_rows(conn), _enrollment(conn)
            finally:
                conn.close()
    except (sqlite3.Error, OSError) as exc:
        log.warning("nothing could be read from the damaged store %s: %s", kept, exc)
        return (None, False), None


def _outbox_rows(conn: sqlite3.Connection) -> tuple[list[dict] | None, bool]:
    """The outbox's entries as far as they can be read, and whether that was all of them."""
    names = ("seq", "key", "payload", "created_at", "tries", "last_error", "parked_reason")
    rows: list[dict] = []
    try:
        # Row by row: what precedes a damaged page is still worth having.
        for row in conn.execute(f"SELECT {', '.join(names)} FROM outbox ORDER BY seq"):
            entry = dict(zip(names, row))
            try:
                entry["payload"] = json.loads(entry["payload"])
            except (TypeError, ValueError):
                pass  # kept as the text it is
            rows.append(entry)
    except sqlite3.Error as exc:
        log.warning("reading the damaged store's outbox stopped after %d entries: %s", len(rows), exc)
        return rows or None, False
    return rows, True


def _enrollment(conn: sqlite3.Connection) -> dict | None:
    try:
        settings = {key: json.loads(value) for key, value in conn.execute("SELECT key, value FROM settings")}
        keys = [{"kid": kid, "pem": pem} for kid, pem in conn.execute("SELECT kid, pem FROM keys")]
    except (sqlite3.Error, ValueError):
        return None
    if not all(isinstance(settings.get(name), str) and settings[name] for name in (*_ENROLLMENT, "server_url")):
        return None
    return {"answer": {**{name: settings[name] for name in _ENROLLMENT}, "keys": keys},
            "server_url": settings["server_url"], "name": settings.get("device_name") or None,
            "preferences": {name: settings[name] for name in PREFERENCES
                            if isinstance(settings.get(name), (str, int, float))}}


def _carry_enrollment(store: TillStore, enrollment: dict | None) -> bool:
    if enrollment is None:
        return False
    try:
        store.save_enrollment(enrollment["answer"], enrollment["server_url"], name=enrollment["name"])
        for name, value in enrollment["preferences"].items():
            store.set(name, value)
    except (ValueError, TypeError, sqlite3.Error) as exc:  # a damaged token or key is no enrollment
        log.warning("the damaged store's enrollment could not be carried over: %s", exc)
        return False
    return True


def _write_private(path: Path, data: dict) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(data, out, ensure_ascii=False, indent=1)
        out.write("\n")
