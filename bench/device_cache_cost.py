"""What a device cache that forgets after a second costs an online redemption (issue 17).

A till's device token is checked on every call; the backend remembers the
device row. Kept forever (as it was), a device deleted or moved by another
process went on working here; kept at most a second (`TtlCache`, now), every
process sees the change within one. This measures the price: the real WSGI
app over a real SQLite data folder (bench/backend_redemptions.py's set-up),
one thread, each request a fresh personal token with its own key, in blocks
that alternate between

- `forever`: the device cache never expires (the old behaviour, the reference);
- `1s`: the cache as shipped (ttl 1 s);
- `none`: no cache (ttl 0: the device read on every call), to show the bound;

and reports each one's median and p95 of request CPU (thread time) and wall
time, and the 1 s cache's cost beside the reference (goal: ≤ 5 %). Also the
lookup itself, TtlCache.get against a dict's get, in nanoseconds.

    .venv/bin/python bench/device_cache_cost.py [--n 3000] [--block 250]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from backend_redemptions import prepare  # noqa: E402
from backend_request_cost import environ  # noqa: E402
from server_stub.app import make_app  # noqa: E402
from server_stub.operations.context import TtlCache  # noqa: E402

MODES = {"forever": float("inf"), "1s": 1.0, "none": 0.0}
WARM_UP = 100


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3000, help="requests per mode")
    parser.add_argument("--block", type=int, default=250, help="requests per block before the mode changes")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="pika-bench-"))
    try:
        total = WARM_UP + args.n * len(MODES)
        device_token, token_file = prepare(base / "data", total)
        fresh = token_file.read_text().split()
        app = make_app(str(base / "data"))
        ctx = app.backend.ctx
        statuses: list[str] = []

        def start_response(status, headers, exc_info=None):
            statuses.append(status)

        def redeem(i: int) -> None:
            b"".join(app(environ(fresh[i], device_token, f"dev{i:013d}"), start_response))

        for i in range(WARM_UP):
            redeem(i)
        cpu: dict[str, list[float]] = {m: [] for m in MODES}
        wall: dict[str, list[float]] = {m: [] for m in MODES}
        i = WARM_UP
        while i < total:
            for mode, ttl in MODES.items():
                ctx.devices = TtlCache(ttl)
                for _ in range(min(args.block, args.n - len(cpu[mode]))):
                    start, thread = time.perf_counter(), time.thread_time()
                    redeem(i)
                    cpu[mode].append(time.thread_time() - thread)
                    wall[mode].append(time.perf_counter() - start)
                    i += 1
        app.backend.close()
        refused = [s for s in statuses if not s.startswith("201")]
        if refused:
            sys.exit(f"{len(refused)} redemptions were not accepted, e.g. {refused[0]}")
        for mode in MODES:
            c, w = sorted(cpu[mode]), sorted(wall[mode])
            print(json.dumps({"mode": mode, "n": len(c), "cpu_median_us": round(1e6 * statistics.median(c), 1),
                              "cpu_p95_us": round(1e6 * c[int(0.95 * (len(c) - 1))], 1),
                              "wall_median_us": round(1e6 * statistics.median(w), 1)}))
        ref, new, bare = (statistics.median(cpu[m]) for m in MODES)
        print(json.dumps({"cpu_1s_vs_forever_pct": round(100 * (new / ref - 1), 1),
                          "cpu_none_vs_forever_pct": round(100 * (bare / ref - 1), 1)}))
        cache, plain = TtlCache(1.0), {"k": {}}
        cache.put("k", {})
        n = 200_000
        print(json.dumps({"ttlcache_get_ns": round(1e9 * timeit.timeit(lambda: cache.get("k"), number=n) / n),
                          "dict_get_ns": round(1e9 * timeit.timeit(lambda: plain.get("k"), number=n) / n)}))
        return 0
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
