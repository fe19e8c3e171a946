"""`server_stub backup` of a backend holding 1,000,000 attempts while a till keeps redeeming online.

    .venv/bin/python bench/backup_while_serving.py [--attempts 1000000] [--rounds 2] [--quiet-s 8]

A real backend folder (init, the demo data, one enrolled till), that many
attempts put straight into its SQLite file by SQL (bench/pg_copy.py's rows:
as large as real ones, 70 % accepted, each with its feed event),
checkpointed; then a real `serve` (bench/sync_kill_soak.py's BackendProcess:
one worker, four threads, loopback) and one client making online
redemptions back to back (the printed code, each a durable write: accepted,
then refused past its day's limit, both recorded).

Each round, in the same run: the redemptions' latencies for `--quiet-s`
seconds with nothing else going on (the reference), then during a
`python -m server_stub backup` of the serving folder (its duration too), then
quiet again. Printed: p50 / p99 / max of each phase, the backup's seconds and
size, and as a second reference the time to read the database file once
(`cat > /dev/null`: what any copy must at least do). One JSON line per round.
The machine is shared and its speed drifts: compare within a round.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

from pg_copy import make_backend  # noqa: E402
from server_stub.backend import Backend  # noqa: E402
from server_stub.datadir import DataDir  # noqa: E402
from sync_kill_soak import BackendProcess  # noqa: E402


def prepare(folder: Path, attempts: int) -> tuple[str, str]:
    """The folder with `attempts` rows, and a second till's token and the printed code it redeems."""
    make_backend(folder, attempts)
    backend = Backend(folder)
    try:
        row = backend.storage.read().execute("SELECT store_id FROM devices LIMIT 1").fetchone()
        code = backend.create_enrollment_code(row[0])["code"]
        token = backend.enroll(code, "Caja bench")["device_token"]
        printed = backend.storage.read().execute("SELECT code FROM printed_codes LIMIT 1").fetchone()[0]
    finally:
        backend.close()
    DataDir(folder).set_config(velocity_limit=0, limits={"enabled": False})  # one till, as fast as it goes
    return token, printed


class Redeemer:
    """Online redemptions back to back on one connection; each latency kept with when it ended."""

    def __init__(self, url: str, token: str, printed: str):
        self.http = httpx.Client(base_url=url + "/api/v1", timeout=10, headers={"Authorization": f"Bearer {token}"})
        self.printed = printed
        self.done: list[tuple[float, float]] = []  # (ended at, seconds)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.n = 0

    def _run(self) -> None:
        while not self.stop.is_set():
            self.n += 1
            started = time.perf_counter()
            answer = self.http.post("/redemptions", headers={"Idempotency-Key": f"bench-{self.n:012d}"},
                                    json={"input": self.printed, "method": "printed"})
            ended = time.perf_counter()
            if answer.status_code not in (201, 422):
                raise RuntimeError(f"{answer.status_code}: {answer.text[:200]}")
            self.done.append((ended, ended - started))

    def between(self, start: float, end: float) -> list[float]:
        return [seconds for ended, seconds in self.done if start <= ended < end]


def figures(latencies: list[float]) -> dict:
    ordered = sorted(latencies)
    if not ordered:
        return {"n": 0}
    return {"n": len(ordered), "p50_ms": round(statistics.median(ordered) * 1000, 2),
            "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 2),
            "max_ms": round(ordered[-1] * 1000, 2)}


def one_round(folder: Path, redeemer: Redeemer, quiet_s: float, out: Path) -> dict:
    started = time.perf_counter()
    time.sleep(quiet_s)
    backup_began = time.perf_counter()
    made = subprocess.run([sys.executable, "-m", "server_stub", "backup", "--data", str(folder), "--out", str(out)],
                          cwd=BENCH.parent, capture_output=True, text=True)
    backup_ended = time.perf_counter()
    if made.returncode != 0:
        raise RuntimeError(made.stderr)
    time.sleep(quiet_s)
    after = time.perf_counter()
    read_began = time.perf_counter()
    subprocess.run(f"cat '{folder / 'backend.sqlite3'}' > /dev/null", shell=True, check=True)
    read_s = time.perf_counter() - read_began
    answer = json.loads(made.stdout)
    quiet = figures(redeemer.between(started, backup_began))
    during = figures(redeemer.between(backup_began, backup_ended))
    return {"backup_s": round(backup_ended - backup_began, 2), "backup_own_s": answer["seconds"],
            "archive_mb": round(out.stat().st_size / 1e6, 1), "attempts_in_backup": answer["attempts"],
            "read_file_once_s": round(read_s, 2), "quiet_before": quiet, "during_backup": during,
            "quiet_after": figures(redeemer.between(backup_ended, after)),
            "p99_during_over_quiet": round(during["p99_ms"] / quiet["p99_ms"], 2) if during["n"] else None}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attempts", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--quiet-s", type=float, default=8.0)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="pika-backup-bench-"))
    try:
        folder = tmp / "backend"
        began = time.perf_counter()
        token, printed = prepare(folder, args.attempts)
        sys.stderr.write(f"{args.attempts} attempts in {time.perf_counter() - began:.1f} s\n")
        server = BackendProcess(folder).start()
        redeemer = Redeemer(server.url, token, printed)
        redeemer.thread.start()
        try:
            for n in range(args.rounds):
                out = tmp / f"backup-{n}.tar"
                result = one_round(folder, redeemer, args.quiet_s, out)
                out.unlink()
                print(json.dumps({"round": n + 1, "attempts": args.attempts, **result}), flush=True)
        finally:
            redeemer.stop.set()
            redeemer.thread.join(15)
            server.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
