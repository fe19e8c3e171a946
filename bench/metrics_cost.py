"""What counting a request for /metrics costs: the same requests with and without it, alternated, one run.

The real app in process on a real data folder, one thread: an online
redemption (a fresh personal token each, its own durable commit) and a
`GET /health`, each sent with the app's metrics on and off in turn
(request by request, with / without / without again in a shuffled order
each round, so the machine's drift falls on all alike, and the two arms
without say how far identical arms differ in the same run), in
prometheus_client's single-process mode (the embedded server) and in its
multi-process mode (`serve`'s workers: every count a write to a
memory-mapped file), the second in a child process because the mode is
chosen when prometheus_client is first imported. Prints thread CPU per
request (median, p95) with and without, and the difference.

    .venv/bin/python bench/metrics_cost.py [--n 2000]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

WARM_UP = 50


def redemption(token: str, device_token: str, key: str) -> dict:
    body = json.dumps({"input": token, "method": "camera"}).encode()
    return {"REQUEST_METHOD": "POST", "PATH_INFO": "/api/v1/redemptions", "QUERY_STRING": "",
            "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(body)),
            "HTTP_AUTHORIZATION": "Bearer " + device_token, "HTTP_IDEMPOTENCY_KEY": key,
            "wsgi.input": io.BytesIO(body), "wsgi.url_scheme": "http", "REMOTE_ADDR": "127.0.0.1",
            "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1"}


def health() -> dict:
    return {"REQUEST_METHOD": "GET", "PATH_INFO": "/api/v1/health", "QUERY_STRING": "", "wsgi.input": io.BytesIO(),
            "wsgi.url_scheme": "http", "REMOTE_ADDR": "127.0.0.1", "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1"}


def us(values: list[float]) -> dict:
    ordered = sorted(v * 1e6 for v in values)
    return {"median_us": round(statistics.median(ordered), 1),
            "p95_us": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 1)}


def measure(n: int, mode: str) -> list[dict]:
    """Runs in the process whose prometheus_client mode is `mode` (set before it is imported)."""
    from backend_redemptions import prepare
    from server_stub.app import make_app
    from server_stub.metrics import metrics

    base = Path(tempfile.mkdtemp(prefix="pika-bench-"))
    try:
        device_token, token_file = prepare(base / "data", 3 * (n + WARM_UP))
        fresh = iter(token_file.read_text().split())
        app = make_app(str(base / "data"))
        counted = metrics()
        statuses: list[str] = []

        def start_response(status, headers, exc_info=None):
            statuses.append(status)

        def call(env: dict, on: bool) -> float:
            app.metrics = counted if on else None
            cpu = time.thread_time()
            b"".join(app(env, start_response))
            return time.thread_time() - cpu

        results = []
        for name, make in (("redemption", lambda i: redemption(next(fresh), device_token, f"mc{i:014d}")),
                           ("health", lambda i: health())):
            # Three arms in turn: with, without, and without again (the control: how far two identical arms
            # differ in this run, the method's noise floor).
            # Each round of three in a shuffled order: a request's place in the round (what ran just before
            # it) would otherwise favour one arm.
            times: list[list[float]] = [[], [], []]
            order = random.Random(15)
            i = 0
            for round_ in range(n + WARM_UP):
                for arm in order.sample(range(3), 3):
                    spent = call(make(i), arm == 0)
                    i += 1
                    if round_ >= WARM_UP:
                        times[arm].append(spent)
            with_, without, control = us(times[0]), us(times[1]), us(times[2])
            results.append({"mode": mode, "request": name, "n_each": len(times[0]), "with_metrics": with_,
                            "without": without,
                            "difference_median_us": round(with_["median_us"] - without["median_us"], 1),
                            "difference_share": round(with_["median_us"] / without["median_us"] - 1, 3),
                            "control_difference_median_us": round(control["median_us"] - without["median_us"], 1)})
        app.backend.close()
        wrong = [s for s in statuses if not s.startswith(("200", "201"))]
        if wrong:
            sys.exit(f"{len(wrong)} requests failed, e.g. {wrong[0]}")
        # The counting alone, for the arithmetic: one answered() call.
        body = [b'{"ok":true}']
        start = time.thread_time()
        for _ in range(20000):
            counted.answered("/api/v1/redemptions", "POST", 201, 0.001, body)
        results.append({"mode": mode, "answered_call_alone_us": round((time.thread_time() - start) / 20000 * 1e6, 2)})
        return results
    finally:
        shutil.rmtree(base, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--child", choices=("multiprocess",), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        for line in measure(args.n, args.child):
            print(json.dumps(line))
        return 0
    for line in measure(args.n, "single-process"):
        print(json.dumps(line), flush=True)
    folder = tempfile.mkdtemp(prefix="pika-metrics-")
    try:
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": folder}
        subprocess.run([sys.executable, __file__, "--n", str(args.n), "--child", "multiprocess"], env=env, check=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
