"""What re-judging a till's entries costs the backend: sync throughput and CPU per entry.

    python bench/sync_rejudge.py [--queued 10000]            # this tree; prints one JSON line
    python bench/sync_rejudge.py --trees OLD NEW --rounds 3  # trees alternated in one sitting

A real backend process (granian, one worker) on 127.0.0.1 and a real till
store. The till redeems `--queued` codes offline — personal codes (signed
tokens and short codes, each its own claim) and printed codes — then one
`sync_once` drains its outbox. Measured: the drain's wall time and the backend
processes' CPU time during it (from /proc), per entry. Since "A backend that
trusts no till" the backend verifies each entry's token and judges it again;
before, it wrote what the till said. `--trees` runs this same script in each
tree (copied into a tree that lacks it, run with that tree on PYTHONPATH),
alternating, so both sides share the machine's drift.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
import sync_kill_soak as harness  # noqa: E402  (backend process, CLI helper)

import httpx  # noqa: E402

from pos_app.core.domain import Method  # noqa: E402
from pos_app.store import TillStore  # noqa: E402
from pos_app.sync.client import BackendClient  # noqa: E402
from pos_app.sync.round import sync_once  # noqa: E402
from server_stub.datadir import DB_NAME, DataDir  # noqa: E402

PRINTED_SHARE = 5  # one entry in five is a printed code


def group_cpu_s(pgid: int) -> float:
    """User + system CPU seconds of every live process in a process group (the server and its workers)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # field 5 of stat: the process group
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


def world(root: Path, claims: int) -> dict:
    data = root / "backend"
    admin = harness.cli("server_stub", "init", "--data", str(data))["admin_token"]
    DataDir(data).set_config(velocity_limit=0)  # thousands of codes in seconds from one till, on purpose
    demo = harness.cli("server_stub", "demo-data", "--data", str(data))
    backend = harness.BackendProcess(data).start()
    personal = next(v for v in demo["vouchers"] if v["kind"] == "personal")["id"]
    printed = next(v for v in demo["vouchers"] if v["kind"] == "printed")["code"]
    codes = []
    with httpx.Client(base_url=backend.url + "/api/v1", headers={"Authorization": f"Bearer {admin}"},
                      timeout=30) as http:
        for n in range(claims):
            answer = http.post("/claims", json={"voucher_id": personal, "customer_id": f"c{n}"}).json()
            codes.append(answer["token"] if n % 2 else answer["short_code"])
    path = root / "till" / "till.sqlite3"
    with BackendClient(backend.url, timeout=10) as anonymous:
        enrolled = anonymous.enroll(demo["enrollment_codes"][0], "Caja bench")
    with TillStore(path) as store:
        store.save_enrollment(enrolled, backend.url)
        store.set("velocity_limit", 0)
        with BackendClient(backend.url, enrolled["device_token"], timeout=10) as client:
            sync_once(store, client)
    return {"backend": backend, "data": data, "codes": codes, "printed": printed, "till": path,
            "token": enrolled["device_token"]}


def run(queued: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        w = world(Path(tmp), queued - queued // PRINTED_SHARE)
        backend = w["backend"]
        try:
            inputs = [(code, Method.CAMERA) for code in w["codes"]]
            for n in range(queued // PRINTED_SHARE):  # spread among the personal codes
                inputs.insert(n * PRINTED_SHARE, (w["printed"], Method.PRINTED))
            with TillStore(w["till"]) as store:
                started = time.perf_counter()
                for text, method in inputs:
                    store.redeem_offline(text, method=method, printed_only=method == Method.PRINTED)
                queue_s = time.perf_counter() - started
                with BackendClient(backend.url, w["token"], timeout=60) as client:
                    cpu_before = group_cpu_s(backend.proc.pid)
                    started = time.perf_counter()
                    summary = sync_once(store, client, pull=False)
                    drain_s = time.perf_counter() - started
                    cpu_s = group_cpu_s(backend.proc.pid) - cpu_before
                assert summary.error is None and store.outbox_size() == 0, summary
            db = sqlite3.connect(w["data"] / DB_NAME)
            try:
                statuses = dict(db.execute("SELECT status, count(*) FROM attempts GROUP BY status").fetchall())
            finally:
                db.close()
            return {"queued": len(inputs), "queue_build_s": round(queue_s, 2), "drain_s": round(drain_s, 3),
                    "entries_per_s": round(len(inputs) / drain_s), "backend_cpu_s": round(cpu_s, 2),
                    "cpu_ms_per_entry": round(1000 * cpu_s / len(inputs), 3), "requests": summary.requests,
                    "backend_statuses": statuses}
        finally:
            backend.stop()


def alternate(trees: list[Path], rounds: int, queued: int) -> dict:
    """Run this script in each tree in turn, `rounds` times; the medians side by side."""
    runs: dict[str, list[dict]] = {str(tree): [] for tree in trees}
    for _ in range(rounds):
        for tree in trees:
            script = tree / "bench" / Path(__file__).name
            if not script.exists():
                shutil.copy(__file__, script)
            done = subprocess.run([sys.executable, str(script), "--queued", str(queued)], cwd=tree,
                                  env={**os.environ, "PYTHONPATH": str(tree)}, capture_output=True, text=True,
                                  check=True)
            runs[str(tree)].append(json.loads(done.stdout.strip().splitlines()[-1]))
    summary = {}
    for tree, results in runs.items():
        summary[tree] = {
            "drain_s": statistics.median(r["drain_s"] for r in results),
            "entries_per_s": statistics.median(r["entries_per_s"] for r in results),
            "cpu_ms_per_entry": statistics.median(r["cpu_ms_per_entry"] for r in results),
            "runs": results,
        }
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queued", type=int, default=10_000)
    parser.add_argument("--trees", nargs="+", type=Path, help="source trees to alternate (old first)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not 10 <= args.queued <= 200_000:
        parser.error("--queued is between 10 and 200,000")
    if args.trees:
        print(json.dumps(alternate([t.resolve() for t in args.trees], args.rounds, args.queued)))
    else:
        print(json.dumps(run(args.queued)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
