"""What one online redemption costs the backend, without HTTP or other threads.

The load test (`backend_redemptions.py`) gives requests/s, which on this
shared 2-core machine moves by tens of percent with the neighbours' load.
This script answers the question behind it: how much CPU does the WSGI
application spend on one `POST /api/v1/redemptions`, and on what? It calls
the real app in one thread, in process, on a real data folder, each request
a fresh personal token with its own Idempotency-Key (verify, decide, one
durable commit of its own), and measures, token by token:

- ES256 verify alone (cryptography, the same token, just before);
- the whole request's CPU (thread time) and wall time;
- the CPU spent in the writer's commit (BEGIN … COMMIT with fdatasync);
- what is left: request − commit − verify alone (HTTP parsing, auth, the
  verdict's rules and reads, two JSON encodings).

At 5,000 requests/s on 2 cores, a request may use at most 0.4 ms of CPU in
all (the HTTP server's and the load generator's share included).

    .venv/bin/python bench/backend_request_cost.py [--n 2000]
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402

from backend_redemptions import prepare  # noqa: E402
from pos_app.core import tokens  # noqa: E402
from server_stub.storage import writer as writer_module  # noqa: E402
from server_stub.app import make_app  # noqa: E402

WARM_UP = 50


class CommitClock:
    """Adds up the thread time spent in the writer's commits."""

    def __init__(self) -> None:
        self.cpu = 0.0
        self._commit = writer_module.Writer._commit

    def install(self) -> None:
        clock, commit = self, self._commit

        def timed(writer, batch):
            start = time.thread_time()
            try:
                commit(writer, batch)
            finally:
                clock.cpu += time.thread_time() - start
        writer_module.Writer._commit = timed

    def remove(self) -> None:
        writer_module.Writer._commit = self._commit


def environ(token: str, device_token: str, key: str) -> dict:
    body = json.dumps({"input": token, "method": "camera"}).encode()
    return {"REQUEST_METHOD": "POST", "PATH_INFO": "/api/v1/redemptions", "QUERY_STRING": "",
            "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(body)),
            "HTTP_AUTHORIZATION": "Bearer " + device_token, "HTTP_IDEMPOTENCY_KEY": key,
            "wsgi.input": io.BytesIO(body), "wsgi.url_scheme": "http",
            "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1"}


def summary(name: str, seconds: list[float]) -> dict:
    us = sorted(s * 1e6 for s in seconds)
    return {"measure": name, "n": len(us), "median_us": round(statistics.median(us), 1),
            "p95_us": round(us[min(len(us) - 1, int(0.95 * len(us)))], 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="pika-bench-"))
    try:
        device_token, token_file = prepare(base / "data", args.n + WARM_UP)
        fresh = token_file.read_text().split()
        app = make_app(str(base / "data"))
        trust = app.backend.trust
        public_key = trust.get(trust.kids()[0])
        algorithm = ec.ECDSA(hashes.SHA256())
        statuses: list[str] = []

        def start_response(status, headers, exc_info=None):
            statuses.append(status)

        def redeem(i: int) -> None:
            b"".join(app(environ(fresh[i], device_token, f"cost{i:012d}"), start_response))

        for i in range(WARM_UP):
            redeem(i)
        commits = CommitClock()
        commits.install()
        t_verify, t_wall, t_cpu, t_commit = [], [], [], []
        try:
            for i in range(WARM_UP, WARM_UP + args.n):
                signing_input, _, sig = fresh[i].rpartition(".")
                der = tokens._der_signature(tokens._b64decode(sig))
                start = time.perf_counter()
                public_key.verify(der, signing_input.encode(), algorithm)
                t_verify.append(time.perf_counter() - start)
                committed = commits.cpu
                start, cpu = time.perf_counter(), time.thread_time()
                redeem(i)
                t_cpu.append(time.thread_time() - cpu)
                t_wall.append(time.perf_counter() - start)
                t_commit.append(commits.cpu - committed)
        finally:
            commits.remove()
        app.backend.close()
        refused = [s for s in statuses if not s.startswith("201")]
        if refused:
            sys.exit(f"{len(refused)} redemptions were not accepted, e.g. {refused[0]}")
        rest = [c - k - v for c, k, v in zip(t_cpu, t_commit, t_verify)]
        for result in (summary("es256_verify_alone (cryptography, same token, just before)", t_verify),
                       summary("request_wall (one thread, in process, own commit)", t_wall),
                       summary("request_cpu (thread time)", t_cpu),
                       summary("commit_cpu (BEGIN … COMMIT, one row)", t_commit),
                       summary("rest_cpu (request − commit − verify alone)", rest)):
            print(json.dumps(result))
        cpu = statistics.median(t_cpu)
        print(json.dumps({"requests_per_s_if_2_cores_did_only_this": round(2 / cpu),
                          "cpu_budget_us_for_5000_per_s_on_2_cores": 400}))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
