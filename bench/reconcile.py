"""Reconciliation over a retailer holding 1,000,000 attempts: how long a run takes, beside plain reads.

    python bench/reconcile.py [--attempts 1000000] [--stores 4] [--tills 3] [--days 90] [--runs 3]

A SQLite backend in a temporary folder (init, demo data), its retailer given
`--stores` stores of `--tills` tills each and `--attempts` attempts over the
last `--days` days, inserted with direct SQL in one transaction (the bench
only: the feed trigger still writes each accepted one's event): 85 %
accepted, printed codes on vouchers with a store-day and a total limit (a
few days over, the totals over), 0.05 % disputed, every attempt a record of its till's log
(`till_log`, so the log check probes each one), 0.1 % of those records with
no attempt. Then `reconcile.run` `--runs` times (the first opens the
findings, the next see them again), and as references in the same run: a
plain `SELECT count(*)` of the retailer's attempts, and one store's day
report as JSON (the manager's report, `reports.daily`). Prints one JSON line;
the machine is shared, timings are noisy.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sqlite3
import sys
import tempfile
import time
import uuid
from pathlib import Path

from pos_app.core import till_log
from pos_app.core.verdict import local_day
from server_stub.backend import Backend
from server_stub.datadir import DB_NAME, DataDir
from server_stub.demo import add_demo_data
from server_stub.operations import reconcile
from server_stub.operations.staff_auth import Caller

TZ = "America/Asuncion"
DAY = 86400.0
_COLUMNS = ("key", "retailer_id", "store_id", "device_id", "at", "received_at", "status", "reason", "kind",
            "voucher_id", "jti", "code", "method", "staff_id", "decided", "input", "till_verdict", "till_at", "dispute")


def build(data: Path, args) -> dict:
    """The backend and its retailer's stores, tills and limited printed vouchers (through the operations)."""
    DataDir(data).init()
    backend = Backend(data)
    try:
        demo = add_demo_data(backend)
        retailer = demo["retailer_id"]
        stores = [demo["store_id"]] + [backend.create_store(retailer, f"Sucursal {i}", TZ)["id"]
                                       for i in range(1, args.stores)]
        vouchers = []
        # Each of the 5 vouchers takes a fifth of the attempts: a printed one's store-day limit two standard
        # deviations above its mean (some days over), its total limit under what it gets (over).
        mean = args.attempts * 0.85 / (args.days * args.stores * 5)  # accepted uses
        day_limit, total_limit = int(mean + 2 * mean ** 0.5) + 1, int(args.attempts / 5 * 0.8)
        for i in range(3):
            body = {"retailer_id": retailer, "kind": "printed", "texts": {"es": {"title": f"Cupón {i}"}},
                    "discount": {"kind": "percent", "value": 10}, "store_day_limit": day_limit,
                    "total_limit": total_limit}
            voucher = backend.create_voucher(body)
            backend.change_voucher(voucher["id"], "publish")
            vouchers.append((voucher["id"], backend.create_printed_code(voucher["id"], f"LIBRO{i}")["code"]))
        vouchers += [(v["id"], None) for v in demo["vouchers"] if v["kind"] == "personal"]
    finally:
        backend.close()
    return {"retailer": retailer, "stores": stores, "vouchers": vouchers}


def fill(data: Path, plan: dict, args, rng: random.Random) -> dict:
    now = time.time()
    conn = sqlite3.connect(data / DB_NAME)
    devices = []
    for store in plan["stores"]:
        for t in range(args.tills):
            device = f"dev_bench_{len(devices)}"
            conn.execute("INSERT INTO devices (id, retailer_id, store_id, name, token_hash, enrolled_at, last_seen_at, "
                         "kind) VALUES (?, ?, ?, ?, ?, ?, ?, 'till')",
                         (device, plan["retailer"], store, f"Caja {t + 1}", uuid.uuid4().hex, now - 100 * DAY,
                          now - rng.random() * 3600))
            devices.append((device, store))
    seqs = {device: 0 for device, _ in devices}
    heads = {device: till_log.GENESIS for device, _ in devices}
    started = time.perf_counter()
    attempts, records = [], []
    for i in range(args.attempts):
        device, store = devices[i % len(devices)]
        at = now - args.days * DAY + args.days * DAY * i / args.attempts
        voucher, code = rng.choice(plan["vouchers"])
        printed = code is not None
        status = "accepted" if rng.random() < 0.85 else "refused"
        dispute = "till_accepted" if rng.random() < 0.0005 else None
        key = uuid.uuid4().hex
        attempts.append((key, plan["retailer"], store, device, at, at + 2, status, None if status == "accepted"
                         else "expired", "printed" if printed else "personal", voucher,
                         None if printed else uuid.uuid4().hex, code, "printed" if printed else "camera", None,
                         "offline" if rng.random() < 0.2 else "online", code or "x" * 300, None, at, dispute))
        body = json.dumps(["attempt", key, at, status, None, "printed" if printed else "personal", voucher, None, code,
                           "camera", None, "online", local_day(at, TZ), store, device, "0" * 32],
                          separators=(",", ":"))
        seqs[device] += 1
        heads[device] = till_log.link(heads[device], body)
        if rng.random() < 0.001:  # a record whose attempt never arrived
            attempts.pop()
        records.append((device, seqs[device], "attempt", key, body, heads[device], at + 3))
    made = time.perf_counter() - started
    started = time.perf_counter()
    with conn:
        conn.executemany(f"INSERT INTO attempts ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})",
                         attempts)
        conn.executemany("INSERT INTO till_log (device_id, seq, kind, key, body, hash, received_at) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?)", records)
        conn.executemany("UPDATE devices SET log_seq = ?, log_head = ?, log_claimed_seq = ?, log_claimed_at = ? "
                         "WHERE id = ?", [(seqs[d], heads[d], seqs[d], now, d) for d, _ in devices])
    inserted = time.perf_counter() - started
    conn.execute("ANALYZE")
    conn.close()
    return {"attempts": len(attempts), "log_records": len(records), "tills": len(devices),
            "generate_s": round(made, 1), "insert_s": round(inserted, 1)}


def timed(fn, runs: int) -> tuple[list[float], object]:
    times, last = [], None
    for _ in range(runs):
        started = time.perf_counter()
        last = fn()
        times.append(time.perf_counter() - started)
    return times, last


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attempts", type=int, default=1_000_000)
    parser.add_argument("--stores", type=int, default=4)
    parser.add_argument("--tills", type=int, default=3)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    rng = random.Random(18)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "backend"
        plan = build(data, args)
        filled = fill(data, plan, args, rng)
        backend = Backend(data)
        try:
            ctx = backend.ctx
            runs, answer = timed(lambda: reconcile.run(ctx, retailer_id=plan["retailer"]), args.runs)
            counts, _ = timed(lambda: ctx.one("SELECT count(*) FROM attempts WHERE retailer_id = ?",
                                              (plan["retailer"],))[0], args.runs)
            query = {"date": local_day(time.time() - DAY, TZ), "store": plan["stores"][0]}
            reports, _ = timed(lambda: json.dumps(backend.daily_report(Caller("admin"), query)), args.runs)
        finally:
            backend.close()
    print(json.dumps({
        **filled, "stores": args.stores, "days": args.days,
        "reconcile_first_s": round(runs[0], 3), "reconcile_again_s": round(statistics.median(runs[1:] or runs), 3),
        "found": answer["by_code"],
        "count_attempts_s": round(statistics.median(counts), 3),
        "day_report_json_s": round(statistics.median(reports), 3),
        "python": sys.version.split()[0], "sqlite": sqlite3.sqlite_version}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
