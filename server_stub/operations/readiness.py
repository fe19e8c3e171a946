"""`GET /health/ready`: whether this process can do its work now, for a load balancer and for alerts.

`/health` is the liveness check (the process answers, the database reads).
Readiness asks more, each check with its own `ok`: the database takes a
write (a real one, a row of backend_meta, through the storage's normal
write path, waited for at most two seconds), the disks have room, the
writes waiting here are few, the signing key is loaded, the schema is the
one this program's migrations make, and the event log's head. A full disk
makes it not ready: the probe's write is refused (`storage_full`), a
write was refused so in the last 30 s, or the free space is under `ready_min_free_mb` (default 200 MB: a day's
redemptions of a large chain are a few tens of MB, and SQLite needs room
for its WAL and checkpoints; a share of the disk would flag a healthy
2 TB disk at 40 GB and miss a 4 GB one).

The probe writes at most once a second per process, whoever asks, and one
at a time: a probe still waiting (a stuck lock) is reported, not joined by
more threads.
"""

from __future__ import annotations

import os
import shutil
import threading
import time

from pos_app.core import tokens

from ..errors import DomainError
from .context import Context

PROBE_TIMEOUT_S = 2.0
MIN_FREE_MB = 200
# A write refused for a full disk keeps readiness not ok this long: the probe's tiny row may still fit in a
# page's free space while redemptions are refused; past it, the probe and the disk check decide alone.
FULL_MEMORY_S = 30.0
MAX_WRITE_QUEUE = 64  # writes waiting in one process; threads per worker (8) bound it in practice
_MB = 1024 * 1024
_PROBE_SQL = ("INSERT INTO backend_meta (key, value) VALUES ('ready_probe', ?) "
              "ON CONFLICT (key) DO UPDATE SET value = excluded.value")


class Readiness:
    """One per process (Backend): the probe's last outcome, and the folders whose disks are watched."""

    def __init__(self, ctx: Context, data_dir: str, database_file: str | None):
        self.ctx = ctx
        self.data_dir = str(data_dir)
        self.database_dir = os.path.dirname(os.path.realpath(database_file)) if database_file else None
        self.probe_every_s = 1.0
        self._lock = threading.Lock()
        self._last: tuple[float, bool, str] | None = None  # (when, ok, what it says)
        self._running_since: float | None = None

    def check(self, detail: bool) -> tuple[bool, dict]:
        """(all ok, the answer); `detail`: each check's value too (an admin token), else ok and why not."""
        checks = {
            "database": self._database(),
            "disk": self._disk(),
            "write_queue": self._write_queue(),
            "signing_key": self._signing_key(),
            "schema": self._schema(),
            "events_head": self._events_head(),
        }
        ready = all(c["ok"] for c in checks.values())
        if not detail:
            checks = {name: {k: v for k, v in c.items() if k != "value"} for name, c in checks.items()}
        return ready, {"status": "ok" if ready else "unavailable", "checks": checks, "server_time": self.ctx.clock()}

    # --- the checks -------------------------------------------------------------------

    def _database(self) -> dict:
        ok, said = self._probe()
        full_at = self.ctx.storage.full_at
        memory = float(self.ctx.config.get("ready_full_memory_s", FULL_MEMORY_S))
        if ok and full_at is not None and time.monotonic() - full_at < memory:
            ok, said = False, f"storage_full: a write was refused {time.monotonic() - full_at:.0f} s ago"
        check = {"ok": ok, "value": said}
        if not ok:
            check["why"] = said
        return check

    def _probe(self) -> tuple[bool, str]:
        now = time.monotonic()
        with self._lock:
            if self._running_since is not None:
                return False, f"a write has waited {now - self._running_since:.1f} s"
            if self._last is not None and now - self._last[0] < self.probe_every_s:
                return self._last[1], self._last[2]
            self._running_since = now
        done = threading.Event()
        outcome: list[tuple[bool, str]] = []

        def probe() -> None:
            try:
                self.ctx.storage.submit(lambda db: db.execute(_PROBE_SQL, (repr(self.ctx.clock()),)))
                outcome.append((True, "writable"))
            except DomainError as exc:
                outcome.append((False, exc.code))
            except Exception as exc:  # what the load balancer should hear, whatever the cause
                outcome.append((False, f"the write failed: {type(exc).__name__}"))
            finally:
                with self._lock:
                    self._running_since = None
                    self._last = (time.monotonic(), *outcome[-1]) if outcome else None
                done.set()
        threading.Thread(target=probe, name="ready-probe", daemon=True).start()
        if not done.wait(PROBE_TIMEOUT_S):
            return False, f"a write has waited over {PROBE_TIMEOUT_S:.0f} s"
        return outcome[-1]

    def _disk(self) -> dict:
        least = int(self.ctx.config.get("ready_min_free_mb", MIN_FREE_MB))
        folders = {"data_folder": self.data_dir}
        if self.database_dir is not None:
            folders["database_folder"] = self.database_dir
        value: dict = {"min_free_mb": least}
        low = []
        for name, folder in folders.items():
            try:
                free = shutil.disk_usage(folder).free // _MB
            except OSError as exc:
                value[name] = {"error": exc.strerror or str(exc)}
                low.append(name)
                continue
            value[name] = {"free_mb": free}
            if free < least:
                low.append(name)
        if self.database_dir is None:
            value["database_folder"] = "not visible from here over PostgreSQL: watch the database host's disk"
        check = {"ok": not low, "value": value}
        if low:
            check["why"] = f"under {least} MB free: {', '.join(low)}"
        return check

    def _write_queue(self) -> dict:
        depth = self.ctx.storage.write_queue()
        most = int(self.ctx.config.get("ready_max_write_queue", MAX_WRITE_QUEUE))
        check = {"ok": depth <= most, "value": depth}
        if depth > most:
            check["why"] = f"{depth} writes waiting (over {most})"
        return check

    def _signing_key(self) -> dict:
        """The key that signs now is on this host and is the key its row names."""
        kid = None
        try:
            kid = self.ctx.kid
            key, _ = self.ctx.signer()
            ok = tokens.key_id(key.public_key()) == kid
            why = "the private key does not match its kid"
        except DomainError as exc:  # signing_key_missing: no key signs, or this host lacks its file
            ok, why = False, exc.code
        except Exception as exc:  # an unreadable key file
            ok, why = False, f"unreadable: {type(exc).__name__}"
        check = {"ok": ok, "value": kid}
        if not ok:
            check["why"] = why
        return check

    def _schema(self) -> dict:
        program = self.ctx.storage.SCHEMA_VERSION
        try:
            database = self.ctx.storage.schema_version()
        except Exception as exc:
            return {"ok": False, "value": {"program": program}, "why": f"unreadable: {type(exc).__name__}"}
        check = {"ok": database == program, "value": {"database": database, "program": program}}
        if database != program:
            check["why"] = f"the database is at version {database}, this program at {program}"
        return check

    def _events_head(self) -> dict:
        try:
            return {"ok": True, "value": events_head(self.ctx)}
        except Exception as exc:
            return {"ok": False, "why": f"unreadable: {type(exc).__name__}"}


def events_head(ctx: Context) -> int:
    """The event log's head: the highest feed sequence number given (0 before any)."""
    return int(ctx.one("SELECT coalesce(max(seq), 0) FROM events")[0])
