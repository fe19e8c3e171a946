"""A flooding till: the other tills' online redemptions, quiet and while one till floods refused redemptions.

Issue 15: one till flooding refused redemptions wrote ~1.4 GB an hour and
tripled the other tills' latency. Against `python -m server_stub serve`
(granian, several workers, SQLite in the data folder: the set-up the README
tells operators to run), N normal tills each redeem a fresh personal token
every `--interval` seconds and read the feed every 2 s, as a sync engine
does; their redemptions' latency is measured for `--quiet` seconds, then for
`--flood` seconds while one more till (wrk, `--flood-connections`, each
sending the next request the moment an answer comes) redeems a token already
used, with a new Idempotency-Key each time: a 409 that writes an attempt,
unless the rate limit refuses it first (429, nothing written).

Every client names itself in X-Real-IP, as the shipped nginx front does for
its clients (the bench talks to the backend on loopback, a trusted proxy's
address), so each till is one client address of its own.

The same run serves a backend with limits switched off in its config.json
(the reference) and one with the default limits, in alternating rounds on
fresh data folders (this machine's speed drifts), and prints per round and
setting the others' p50/p95 quiet and flooding, their ratio, the flood's
requests per second and the attempts it wrote per second.

    .venv/bin/python bench/flooding_till.py [--tills 8] [--quiet 15] [--flood 15] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_chain import make_chain  # noqa: E402

FLOOD_LUA = r"""
local counter = 0
function request()
  counter = counter + 1
  return wrk.format("POST", "/api/v1/redemptions",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. os.getenv("PIKA_DEVICE_TOKEN"),
     ["X-Real-IP"] = "10.9.9.9", ["Idempotency-Key"] = string.format("flood%012d", counter)},
    '{"input":"' .. os.getenv("PIKA_USED_TOKEN") .. '","method":"camera"}')
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare(data: Path, tills: int, tokens_each: int, limits: bool) -> dict:
    """A backend with `tills` + 1 devices, fresh personal tokens for each normal till, and one used token."""
    chain = make_chain(data, tills=tills + 1, limits={"enabled": limits})  # limits on or off as the round says
    devices = chain.devices
    return {"devices": [d["device_token"] for d in devices], "flood_id": devices[-1]["device_id"],
            "used": chain.token(), "tokens": [[chain.token() for _ in range(tokens_each)] for _ in range(tills)]}


def wait_up(url: str, timeout: float = 20) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url + "/api/v1/health", timeout=1).read()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"server at {url} did not come up")


class Till(threading.Thread):
    """One normal till: a redemption every `interval` s, the feed every 2 s; latencies by phase."""

    def __init__(self, url: str, n: int, device_token: str, tokens_: list[str], interval: float,
                 phase: list[str], stop: threading.Event):
        super().__init__(daemon=True)
        self.http = httpx.Client(base_url=url + "/api/v1", timeout=10,
                                 headers={"Authorization": f"Bearer {device_token}", "X-Real-IP": f"10.1.0.{n + 1}"})
        self.tokens, self.interval, self.phase, self.stop = tokens_, interval, phase, stop
        self.latency: dict[str, list[float]] = {}
        self.statuses: dict[str, dict[int, int]] = {}
        self.offset = n * interval / 8  # the tills out of step, as at a real shop

    def run(self) -> None:
        time.sleep(self.offset)
        next_feed = time.monotonic()
        cursor = 0
        while not self.stop.is_set() and self.tokens:
            started = time.monotonic()
            phase = self.phase[0]
            t0 = time.perf_counter()
            answer = self.http.post("/redemptions", headers={"Idempotency-Key": uuid.uuid4().hex},
                                    json={"input": self.tokens.pop(), "method": "camera"})
            self.latency.setdefault(phase, []).append((time.perf_counter() - t0) * 1000)
            counts = self.statuses.setdefault(phase, {})
            counts[answer.status_code] = counts.get(answer.status_code, 0) + 1
            if time.monotonic() >= next_feed:
                page = self.http.get("/feed", params={"after": cursor})
                if page.status_code == 200:
                    cursor = page.json()["cursor"]
                next_feed += 2.0
            self.stop.wait(max(0.0, self.interval - (time.monotonic() - started)))
        self.http.close()


def attempts(data: Path, device_id: str | None = None) -> int:
    """Attempts recorded (by one device, if given)."""
    db = sqlite3.connect(f"file:{data / 'backend.sqlite3'}?mode=ro", uri=True)
    try:
        if device_id is None:
            return db.execute("SELECT count(*) FROM attempts").fetchone()[0]
        return db.execute("SELECT count(*) FROM attempts WHERE device_id = ?", (device_id,)).fetchone()[0]
    finally:
        db.close()


def pct(values: list[float], q: float) -> float:
    return round(statistics.quantiles(values, n=100, method="inclusive")[q - 1], 2) if len(values) > 1 else float("nan")


def run_once(base: Path, args, limits: bool, round_no: int) -> dict:
    data = base / f"round{round_no}-{'limits' if limits else 'nolimits'}"
    per_till = int((args.quiet + args.flood) / args.interval) + 20
    made = prepare(data, args.tills, per_till, limits)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "server_stub", "serve", "--data", str(data), "--port", str(port),
                               "--workers", str(args.workers), "--threads", str(args.server_threads)],
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_up(url)
        # The used token, used once by the flooding till itself: every later try is a 409 already_redeemed.
        first = httpx.post(f"{url}/api/v1/redemptions", json={"input": made["used"], "method": "camera"},
                           headers={"Authorization": f"Bearer {made['devices'][-1]}", "X-Real-IP": "10.9.9.9",
                                    "Idempotency-Key": uuid.uuid4().hex})
        assert first.status_code == 201, first.text
        phase, stop = ["warmup"], threading.Event()
        tills = [Till(url, n, made["devices"][n], made["tokens"][n], args.interval, phase, stop)
                 for n in range(args.tills)]
        for till in tills:
            till.start()
        time.sleep(2.0)
        phase[0] = "quiet"
        time.sleep(args.quiet)
        phase[0] = "flood"
        before = attempts(data, made["flood_id"])
        lua = data / "flood.lua"
        lua.write_text(FLOOD_LUA)
        env = dict(os.environ, PIKA_DEVICE_TOKEN=made["devices"][-1], PIKA_USED_TOKEN=made["used"])
        out = subprocess.run(["wrk", "-t1", f"-c{args.flood_connections}", f"-d{args.flood}s", "-s", str(lua), url],
                             capture_output=True, text=True, env=env, timeout=args.flood + 60, check=True).stdout
        written = attempts(data, made["flood_id"]) - before
        phase[0] = "after"
        stop.set()
        for till in tills:
            till.join(timeout=15)
    finally:
        server.terminate()
        server.wait(timeout=15)
    # The database's bytes per attempt once its WAL is folded in (the server closed it): what a flood's rows
    # cost on disk, an hour of it at the rate measured.
    per_attempt = (data / "backend.sqlite3").stat().st_size / max(1, attempts(data))
    flood_total = int(out.split(" requests in")[0].split()[-1])
    flood_refused = 0
    for line in out.splitlines():
        if "Non-2xx or 3xx responses:" in line:
            flood_refused = int(line.split(":")[1])
    lat = {p: [v for t in tills for v in t.latency.get(p, [])] for p in ("quiet", "flood")}
    statuses: dict[str, dict[int, int]] = {}
    for t in tills:
        for p, counts in t.statuses.items():
            for status, n in counts.items():
                statuses.setdefault(p, {})[status] = statuses.setdefault(p, {}).get(status, 0) + n
    quiet_p50, quiet_p95 = pct(lat["quiet"], 50), pct(lat["quiet"], 95)
    flood_p50, flood_p95 = pct(lat["flood"], 50), pct(lat["flood"], 95)
    return {"round": round_no, "limits": limits, "others": args.tills,
            "quiet_p50_ms": quiet_p50, "quiet_p95_ms": quiet_p95, "flood_p50_ms": flood_p50, "flood_p95_ms": flood_p95,
            "p50_ratio": round(flood_p50 / quiet_p50, 2), "p95_ratio": round(flood_p95 / quiet_p95, 2),
            "others_redemptions": {p: len(v) for p, v in lat.items()},
            "others_statuses": {p: statuses.get(p, {}) for p in ("quiet", "flood")},
            "flood_requests_per_s": round(flood_total / args.flood), "flood_non_2xx": flood_refused,
            "flood_attempts_written_per_s": round(written / args.flood, 1),
            "flood_mb_per_hour": round(written / args.flood * 3600 * per_attempt / 1e6)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tills", type=int, default=8, help="normal tills besides the flooding one")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between a normal till's redemptions")
    parser.add_argument("--quiet", type=int, default=15, help="seconds measured without the flood")
    parser.add_argument("--flood", type=int, default=15, help="seconds measured with it")
    parser.add_argument("--flood-connections", type=int, default=2, help="the flooding till's connections")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of (limits off, limits on), alternated")
    parser.add_argument("--workers", type=int, default=2, help="granian worker processes")
    parser.add_argument("--server-threads", type=int, default=8, help="request threads per granian worker")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: run packaging/install.sh")
    base = Path(tempfile.mkdtemp(prefix="pika-bench-flood-"))
    results = []
    try:
        for round_no in range(1, args.rounds + 1):
            for limits in ((False, True) if round_no % 2 else (True, False)):
                result = run_once(base, args, limits, round_no)
                results.append(result)
                print(json.dumps(result), flush=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    for limits in (False, True):
        mine = [r for r in results if r["limits"] is limits]
        print(json.dumps({"limits": limits, "median_p50_ratio": statistics.median(r["p50_ratio"] for r in mine),
                          "median_p95_ratio": statistics.median(r["p95_ratio"] for r in mine)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
