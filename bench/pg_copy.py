"""How long `migrate-to-postgres` takes to copy a SQLite backend holding 100,000 and 1,000,000 attempts.

    .venv/bin/python bench/pg_copy.py [--attempts 100000,1000000] [--runs 3]

For each size: a real backend folder (init, the demo data, one enrolled
till), then that many attempts put straight into its SQLite file by SQL
(rows as large as real ones: input, answer, till_verdict; 70 % accepted, so
the feed trigger writes an event for each), checkpointed. Then, in the same
run and on the same file:

- references: SQLite's own online backup of the file to another file
  (`Connection.backup`, page by page), and a plain read of every row of every
  table (`SELECT *`, what any copy must at least do);
- `PRAGMA quick_check` over the file (what refusing a damaged file would cost);
- the copy: `storage.pg_copy.copy` into a fresh database of a PostgreSQL
  cluster this script starts (initdb / pg_ctl from the system's package, as
  its `postgres` user when run as root, on loopback, durable: fsync and
  synchronous_commit at their defaults), verified counts included.

Every measure runs once per round, `--runs` rounds; each time is printed and
the best of each is compared. One JSON line per size. The machine is shared:
timings are noisy.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sqlite3
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from server_stub.backend import Backend  # noqa: E402
from server_stub.datadir import DataDir  # noqa: E402
from server_stub.demo import add_demo_data  # noqa: E402
from server_stub.storage import pg_copy  # noqa: E402
from pg_cluster import Cluster  # noqa: E402


def make_backend(folder: Path, attempts: int) -> Path:
    DataDir(folder).init()
    backend = Backend(folder)
    try:
        demo = add_demo_data(backend)
        device = backend.enroll(demo["enrollment_codes"][0], "Caja 1")["device_id"]
    finally:
        backend.close()
    path = folder / "backend.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    rng = random.Random(17)
    now = time.time()
    start = now - 90 * 86400

    def rows():
        for i in range(attempts):
            accepted = rng.random() < 0.7
            at = start + i * (90 * 86400 / attempts)
            jti = uuid.UUID(int=rng.getrandbits(128)).hex
            verdict = json.dumps({"accepted": accepted, "reason": None if accepted else "expired", "kind": "personal",
                                  "voucher_id": demo["vouchers"][0]["id"], "jti": jti, "code": None})
            answer = json.dumps({"accepted": accepted, "reason": None if accepted else "expired",
                                 "voucher": {"id": demo["vouchers"][0]["id"], "title": "Café"}, "at": at})
            yield (uuid.uuid4().hex, demo["retailer_id"], demo["store_id"], device, at, at + 1.5,
                   "accepted" if accepted else "refused", None if accepted else "expired", "personal",
                   demo["vouchers"][0]["id"], jti, "camera", "online" if i % 3 else "offline", answer,
                   "eyJhbGciOiJFUzI1NiJ9." + "x" * 280, verdict, at)
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO attempts (key, retailer_id, store_id, device_id, at, received_at, status, reason, kind,"
        " voucher_id, jti, method, decided, answer, input, till_verdict, till_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows())
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return path


def timed(fn) -> tuple[float, object]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def read_everything(path: Path) -> int:
    conn = sqlite3.connect(path)
    rows = 0
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            cursor = conn.execute(f'SELECT * FROM "{table}"')
            while batch := cursor.fetchmany(5000):
                rows += len(batch)
    finally:
        conn.close()
    return rows


def backup(path: Path, to: Path) -> None:
    source, target = sqlite3.connect(path), sqlite3.connect(to)
    try:
        source.backup(target)
    finally:
        source.close()
        target.close()


def quick_check(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("PRAGMA quick_check").fetchone()[0]
    finally:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--attempts", default="100000,1000000")
    parser.add_argument("--runs", type=int, default=3, help="rounds of every measure per size (best is compared)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="pika-pgcopy-"))
    pg_root = Path(tempfile.mkdtemp(prefix="pika-pgcopy-pg-"))  # its own: the server's user must reach it
    try:
        cluster = Cluster(pg_root).start()
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(pg_root, ignore_errors=True)
        raise
    try:
        for size in (int(n) for n in args.attempts.split(",")):
            folder = root / f"backend-{size}"
            made, path = timed(lambda: make_backend(folder, size))
            runs: dict[str, list[float]] = {"backup": [], "select_all": [], "quick_check": [], "copy": []}
            for _ in range(args.runs):  # each round every measure once, so a slow spell of the machine hits all
                runs["backup"].append(timed(lambda: backup(path, root / f"backup-{size}.sqlite3"))[0])
                seconds, rows = timed(lambda: read_everything(path))
                runs["select_all"].append(seconds)
                seconds, check = timed(lambda: quick_check(path))
                runs["quick_check"].append(seconds)
                target = cluster.new_database()
                seconds, copied = timed(lambda: pg_copy.copy(path, target))
                runs["copy"].append(seconds)
            copy_s, read_s = min(runs["copy"]), min(runs["select_all"])
            print(json.dumps({
                "attempts": size, "rows_copied": sum(copied.tables.values()), "events": copied.tables["events"],
                "sqlite_mb": round(path.stat().st_size / 1e6, 1), "fill_s": round(made, 1), "rows_read": rows,
                "quick_check": check, "best_of": args.runs,
                **{f"{name}_s": [round(t, 2) for t in times] for name, times in runs.items()},
                "copy_rows_per_s": round(sum(copied.tables.values()) / copy_s),
                "copy_vs_select_all": round(copy_s / read_s, 1)}), flush=True)
            shutil.rmtree(folder)
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(pg_root, ignore_errors=True)


if __name__ == "__main__":
    main()
