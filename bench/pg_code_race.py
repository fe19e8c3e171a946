"""One printed code with a total limit, redeemed by many threads at once: advisory locks vs SERIALIZABLE.

Issue 17 asks "row locks or SERIALIZABLE with retries — measure which". The
same race, in one run, three ways:

- `locks`: PostgreSQL at read committed, each accepted-looking redemption
  judged again in its write under `Storage.hold` (advisory locks on the
  voucher's, the token id's, the key's and the till's names) — the default;
- `serializable`: PostgreSQL with every write SERIALIZABLE and `hold` doing
  nothing; a write that fails to serialize (or deadlocks) is run again, with
  a jittered back-off, up to PostgresStorage.SERIALIZABLE_TRIES times;
- `sqlite`: the reference, the same Backends over SQLite in one folder
  (its writers take turns; the limit is counted in the writer).

Each way: `--backends` Backend instances over one database (each its own
pool of writers, as processes have), `--threads` threads in turn over them,
each redeeming the one printed code `--per-thread` times with its own keys,
from 16 tills; the code's voucher allows `--limit` uses, fewer than the
attempts, so the race runs on past the limit. Reported: redemptions/s, p50 and
p99 of one call, writes run again (serializable), errors (an exception that is
no answer: a 500, such as a write that failed to serialize every time), and
whether exactly `--limit` were accepted (answered 201 and stored).

PostgreSQL is a cluster this script starts in a temporary folder (initdb /
pg_ctl from the system's package, as its `postgres` user when run as root),
on loopback, durable: fsync, full_page_writes and synchronous_commit at their
defaults (on). The ways alternate over `--rounds`, as this machine's speed
drifts within minutes.

    .venv/bin/python bench/pg_code_race.py [--rounds 3] [--threads 32] [--per-thread 25] [--limit 500]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


from server_stub.backend import Backend  # noqa: E402
from server_stub.datadir import DataDir  # noqa: E402
from server_stub.storage.postgres import PostgresStorage  # noqa: E402
from pg_cluster import Cluster  # noqa: E402

TILLS = 16
WAYS = ("locks", "serializable", "sqlite")


def backends_for(way: str, folder: Path, cluster: Cluster, count: int) -> list[Backend]:
    url = None if way == "sqlite" else cluster.new_database()
    DataDir(folder).init(database=url)
    DataDir(folder).set_config(velocity_limit=0)
    made = [Backend(folder) for _ in range(count)]
    if way == "serializable":
        for backend in made:  # the bench's one change: the same Backend over a serializable storage
            backend.storage.close()
            backend.storage = backend.ctx.storage = PostgresStorage(url, isolation="serializable")
            backend.read = backend.storage.read
    return made


def run(way: str, cluster: Cluster, args) -> dict:
    folder = Path(tempfile.mkdtemp(prefix=f"pika-race-{way}-"))
    backends = backends_for(way, folder, cluster, args.backends)
    try:
        first = backends[0]
        retailer = first.create_retailer("Cadena")["id"]
        store = first.create_store(retailer, "Centro")["id"]
        devices = [first.require_device(first.enroll(first.create_enrollment_code(store)["code"],
                                                     f"Caja {n}")["device_token"]) for n in range(TILLS)]
        voucher = first.create_voucher({"retailer_id": retailer, "kind": "printed", "texts": {"es": {"title": "x"}},
                                        "discount": {"kind": "percent", "value": 10}, "total_limit": args.limit})
        first.change_voucher(voucher["id"], "publish")
        code = first.create_printed_code(voucher["id"], "CARRERA")["code"]
        latencies: list[float] = []
        errors: list[str] = []
        accepted = [0]
        lock = threading.Lock()
        barrier = threading.Barrier(args.threads + 1)

        def racer(i: int) -> None:
            backend = backends[i % len(backends)]
            backend.read()  # its read connection open before the start
            mine, ok, failed = [], 0, []
            barrier.wait()
            for n in range(args.per_thread):
                start = time.perf_counter()
                try:
                    answer = backend.redeem(devices[(i + n) % TILLS], uuid.uuid4().hex,
                                            {"input": code, "method": "printed"})
                    ok += answer.status == 201
                except Exception as exc:  # a 500: counted and named
                    failed.append(type(exc).__name__)
                mine.append(time.perf_counter() - start)
            with lock:
                latencies.extend(mine)
                errors.extend(failed)
                accepted[0] += ok

        threads = [threading.Thread(target=racer, args=(i,)) for i in range(args.threads)]
        for thread in threads:
            thread.start()
        barrier.wait()
        began = time.perf_counter()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - began
        stored = first.read().execute("SELECT count(*) FROM attempts WHERE status = 'accepted' AND voucher_id = ?",
                                      (voucher["id"],)).fetchone()[0]
        latencies.sort()
        retries = sum(getattr(b.storage, "retries", 0) for b in backends)
        return {"way": way, "per_s": len(latencies) / elapsed, "p50_ms": 1000 * statistics.median(latencies),
                "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))], "retries": retries,
                "errors": len(errors), "accepted": accepted[0], "stored": stored,
                "held": accepted[0] == stored == args.limit,
                "error_kinds": sorted(set(errors))}
    finally:
        for backend in backends:
            backend.close()
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backends", type=int, default=2)
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--per-thread", type=int, default=25)
    parser.add_argument("--limit", type=int, default=500)
    parser.add_argument("--ways", default=",".join(WAYS))
    args = parser.parse_args()
    ways = args.ways.split(",")
    cluster = Cluster(Path(tempfile.mkdtemp(prefix="pika-race-"))).start()
    print(f"{args.threads} threads over {args.backends} Backends, {args.threads * args.per_thread} attempts "
          f"at one printed code, total_limit {args.limit}; PostgreSQL {cluster.bin.parent.name}, fsync on")
    print(f"{'round':>5} {'way':<13} {'redemptions/s':>13} {'p50 ms':>7} {'p99 ms':>7} {'retries':>7} "
          f"{'errors':>6} {'accepted':>8}  limit exact")
    results: dict[str, list[dict]] = {way: [] for way in ways}
    try:
        for n in range(1, args.rounds + 1):
            for way in ways:
                r = run(way, cluster, args)
                results[way].append(r)
                print(f"{n:>5} {way:<13} {r['per_s']:>13.0f} {r['p50_ms']:>7.1f} {r['p99_ms']:>7.1f} "
                      f"{r['retries']:>7} {r['errors']:>6} {r['accepted']:>8}  {'yes' if r['held'] else 'NO'}"
                      + (f"  ({', '.join(r['error_kinds'])})" if r["error_kinds"] else ""), flush=True)
    finally:
        cluster.stop()
    print("median over rounds:")
    for way, runs in results.items():
        print(f"  {way:<13} {statistics.median(r['per_s'] for r in runs):>6.0f}/s  "
              f"p99 {statistics.median(r['p99_ms'] for r in runs):.1f} ms  "
              f"retries {statistics.median(r['retries'] for r in runs):.0f}  "
              f"errors {statistics.median(r['errors'] for r in runs):.0f}  "
              f"limit exact in {sum(r['held'] for r in runs)} of {len(runs)}")


if __name__ == "__main__":
    main()
