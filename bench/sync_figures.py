"""Sync figures on loopback: drain time of a long queue, propagation between tills, bytes per redemption.

    python bench/sync_figures.py [--queued 10000] [--samples 20]

A real backend process (granian, one worker) on 127.0.0.1, real till store
files. Prints one JSON line. The machine is shared: timings are noisy.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sync_kill_soak as harness  # noqa: E402  (backend process and world set-up)

import httpx  # noqa: E402

from pos_app.sync.client import BackendClient  # noqa: E402
from pos_app.core.domain import Method  # noqa: E402
from pos_app.sync.redeem import redeem  # noqa: E402
from pos_app.store import TillStore  # noqa: E402
from pos_app.sync.round import sync_once  # noqa: E402
from pos_app.sync.engine import DEFAULT_MAX_REQUESTS_PER_S, SyncEngine  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


def drain(world: dict, queued: int) -> dict:
    path, token, _ = world["tills"][2]  # a till of its own: its thousands of redemptions hit no velocity limit
    with TillStore(path) as store:
        started = time.perf_counter()
        for _ in range(queued):
            redeem(store, world["printed"], method=Method.PRINTED)
        queue_s = time.perf_counter() - started
        # The engine's own pacing (at most DEFAULT_MAX_REQUESTS_PER_S requests a second).
        with BackendClient(world["backend"].url, token, timeout=10,
                           min_interval_s=1 / DEFAULT_MAX_REQUESTS_PER_S) as client:
            started = time.perf_counter()
            summary = sync_once(store, client, pull=False)
            drain_s = time.perf_counter() - started
            assert summary.error is None and store.outbox_size() == 0, summary
            return {"queued": queued, "queue_build_s": round(queue_s, 2), "drain_s": round(drain_s, 2),
                    "drain_per_s": round(queued / drain_s), "requests": client.requests,
                    "bytes_per_redemption": round((client.bytes_sent + client.bytes_received) / queued, 1),
                    "bytes_sent_per_redemption": round(client.bytes_sent / queued, 1)}


def propagation(world: dict, samples: int) -> dict:
    """Till 1 redeems online; how long until till 2, both running their engines with default intervals,
    refuses the code offline (it learnt it from the feed)."""
    (path1, token1, _), (path2, _, _) = world["tills"][0], world["tills"][1]
    engines = [SyncEngine(path1), SyncEngine(path2)]
    for engine in engines:
        engine.start()
    delays, refused = [], 0
    rng = random.Random(11)
    admin = {"Authorization": f"Bearer {world['admin']}"}
    try:
        with TillStore(path1) as till1, TillStore(path2) as till2, \
                BackendClient(world["backend"].url, token1, timeout=5) as client, \
                httpx.Client(base_url=world["backend"].url + "/api/v1", headers=admin) as http:
            personal = next(v for v in till1.vouchers() if v.kind == "personal").id
            for n in range(samples):
                claim = http.post("/claims", json={"voucher_id": personal, "customer_id": f"p{n}"}).json()
                # A random phase against the feed ticks (a fixed pause would lock onto them).
                time.sleep(0.3 + rng.uniform(0, engines[0].feed_interval_s))
                outcome = redeem(till1, claim["token"], method=Method.CAMERA, client=client)
                assert outcome.verdict.accepted and outcome.decided == "online", outcome
                started = time.perf_counter()
                while till2.used(claim["jti"]) is None:
                    time.sleep(0.01)
                delays.append(time.perf_counter() - started)
                refused += redeem(till2, claim["token"], method=Method.CAMERA).verdict.reason == "already_redeemed"
    finally:
        for engine in engines:
            engine.stop()
    return {"samples": samples, "refused_at_till2": refused, "feed_interval_s": engines[0].feed_interval_s,
            "p50_s": round(statistics.median(delays), 2), "p95_s": round(percentile(delays, 0.95), 2),
            "max_s": round(max(delays), 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queued", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        world = harness.make_world(Path(tmp), claims=0, tills=3)
        try:
            result = {"drain": drain(world, args.queued), "propagation": propagation(world, args.samples)}
        finally:
            world["backend"].stop()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    sys.exit(main())
