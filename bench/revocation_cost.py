"""What the device check costs a request now that a till can be revoked or rolled (issue 15; goal ≤ 5 %).

Every call a till makes checks its token (`credentials.require_device`): the
device row, kept a second at most in the process's cache, and now also
whether it was revoked or rolled, and whether its last-seen time is due
(written at most once a minute, after the answer). This measures, in one run
and over the same data folder:

- `redeem`: a whole online redemption through the real WSGI app (a fresh
  personal token, its own key, one thread), as shipped;
- `redeem_before`: the same with the device check as it was before issue 15
  (no revoked/rolled columns, no last-seen), alternating in blocks with
  `redeem`, the reference;
- `check_warm`: the check alone as a request makes it (request start, the
  check, the answer's last-seen hook), the device in the cache — nearly every
  call; `check_before_warm`: the old check, likewise;
- `check_cold`: the check with the cache expired (the row read: one call a
  second per till and process); `check_before_cold`: the old one.

It prints each one's median (and p95) of CPU (thread time) per call and the
check's share of a redemption. SQLite always; PostgreSQL too with
`--postgres` (a throwaway durable cluster, bench/pg_cluster.py). The rate
limits are off in the bench's config: they are not the device check.

    .venv/bin/python bench/revocation_cost.py [--n 2000] [--block 200] [--checks 20000] [--postgres]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from backend_request_cost import environ  # noqa: E402
from bench_chain import make_chain  # noqa: E402
from server_stub.app import App  # noqa: E402
from server_stub.backend import Backend  # noqa: E402
from server_stub.datadir import token_hash  # noqa: E402
from server_stub.errors import Unauthorized  # noqa: E402
from server_stub.operations import credentials, devices  # noqa: E402
from server_stub.operations.context import TtlCache  # noqa: E402

WARM_UP = 100


def require_device_before(ctx, token, touch=True):
    """The device check as it was before issue 15: the row (cached), no revoked or rolled, no last seen."""
    if not token:
        raise Unauthorized("unauthorized", "a device token is required")
    digest = token_hash(token)
    device = ctx.devices.get(digest)
    if device is None:
        row = ctx.one("SELECT d.id, d.retailer_id, d.store_id, d.name, s.timezone FROM devices d "
                      "JOIN stores s ON s.id = d.store_id WHERE d.token_hash = ?", (digest,))
        if row is None:
            raise Unauthorized("unauthorized", "the device token is not valid")
        device = dict(zip(("id", "retailer_id", "store_id", "name", "timezone"), row))
        ctx.devices.put(digest, device)
    return device


CHECKS = {"now": credentials.require_device, "before": require_device_before}


def prepare(data: Path, database: str | None, count: int) -> tuple[str, list[str]]:
    chain = make_chain(data, database=database, limits={"enabled": False})  # the limits are not the check
    return chain.devices[0]["device_token"], [chain.token(3600) for _ in range(count)]


def median_us(values: list[float]) -> float:
    return round(1e6 * statistics.median(values), 2)


def p95_us(values: list[float]) -> float:
    ordered = sorted(values)
    return round(1e6 * ordered[int(0.95 * (len(ordered) - 1))], 2)


def measure(engine: str, base: Path, database: str | None, args) -> dict:
    data = base / engine
    device_token, fresh = prepare(data, database, WARM_UP + 2 * args.n)
    app = App(Backend(data))
    ctx = app.backend.ctx
    statuses: list[str] = []

    def start_response(status, headers, exc_info=None):
        statuses.append(status)

    def redeem(i: int) -> None:
        b"".join(app(environ(fresh[i], device_token, f"dev{i:013d}"), start_response))

    for i in range(WARM_UP):
        redeem(i)
    cpu: dict[str, list[float]] = {"redeem": [], "redeem_before": []}
    i, order = WARM_UP, [("redeem", "now"), ("redeem_before", "before")]
    while i < len(fresh):  # blocks alternate (ABBA), so a drift of the machine's speed falls on both alike
        for mode, check in order:
            credentials.require_device = CHECKS[check]
            ctx.devices = TtlCache()  # the two checks cache rows of different shapes: each its own
            for _ in range(min(args.block, args.n - len(cpu[mode]))):
                started = time.thread_time()
                redeem(i)
                cpu[mode].append(time.thread_time() - started)
                i += 1
        order.reverse()
    credentials.require_device = CHECKS["now"]
    refused = [s for s in statuses if not s.startswith("201")]
    if refused:
        sys.exit(f"{engine}: {len(refused)} redemptions were not accepted, e.g. {refused[0]}")

    def check_once(check) -> float:
        started = time.thread_time()
        devices.call_begins()  # as App.__call__ does for every request
        check(ctx, device_token)
        devices.answered(True)
        return time.thread_time() - started
    for cache in ("warm", "cold"):
        for check in ("now", "before"):
            ctx.devices = TtlCache(1.0 if cache == "warm" else 0.0)
            check_once(CHECKS[check])
            cpu[f"check_{check}_{cache}"] = [check_once(CHECKS[check]) for _ in range(args.checks)]
    app.backend.close()
    redemption = statistics.median(cpu["redeem"])
    result = {"engine": engine, "n": args.n, "checks": args.checks,
              **{f"{name}_cpu_median_us": median_us(values) for name, values in cpu.items()},
              **{f"{name}_cpu_p95_us": p95_us(values) for name, values in cpu.items() if name.startswith("redeem")}}
    result["check_warm_share_pct"] = round(100 * statistics.median(cpu["check_now_warm"]) / redemption, 2)
    result["check_cold_share_pct"] = round(100 * statistics.median(cpu["check_now_cold"]) / redemption, 2)
    result["added_warm_share_pct"] = round(100 * (statistics.median(cpu["check_now_warm"])
                                                  - statistics.median(cpu["check_before_warm"])) / redemption, 2)
    result["redeem_vs_before_pct"] = round(100 * (redemption / statistics.median(cpu["redeem_before"]) - 1), 1)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="redemptions per mode")
    parser.add_argument("--block", type=int, default=200, help="redemptions per block before the mode changes")
    parser.add_argument("--checks", type=int, default=20000, help="device checks per kind")
    parser.add_argument("--postgres", action="store_true", help="also over a throwaway PostgreSQL")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="pika-bench-"))
    cluster = None
    try:
        print(json.dumps(measure("sqlite", base, None, args)), flush=True)
        if args.postgres:
            from pg_cluster import Cluster

            os.chmod(base, 0o755)  # the cluster's user must reach its folder inside
            cluster = Cluster(base / "cluster").start()
            print(json.dumps(measure("postgresql", base, cluster.new_database(), args)), flush=True)
        return 0
    finally:
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
