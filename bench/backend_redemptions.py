"""Load on the backend's POST /api/v1/redemptions: granian vs the standard library.

Each request redeems a distinct, freshly signed personal token with its own
Idempotency-Key, so every one is a real verify + decide + durable insert.
wrk (16 connections, 10 s, 2 threads) drives it on 127.0.0.1; afterwards the
rows in the database are counted against the 201s wrk saw.

Besides requests/s it prints the server's CPU time per request (user +
system of every server process, from /proc, over the wrk run): on a machine
whose other core is busy with someone else's work, throughput swings by tens
of percent, CPU per request far less.

    .venv/bin/python bench/backend_redemptions.py [--seconds 10] [--connections 16]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pos_app.core import tokens  # noqa: E402
from server_stub.backend import Backend  # noqa: E402
from server_stub.datadir import DataDir  # noqa: E402

LUA = r"""
local tokens = {}
local counter = 0
local offset = 0
local step = 1
local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads - 1)
end
function init(args)
  for line in io.lines(args[1]) do tokens[#tokens + 1] = line end
  offset = tonumber(tid)
  step = tonumber(args[2])
  counter = offset
end
function request()
  counter = counter + step
  local token = tokens[(counter % #tokens) + 1]
  local body = '{"input":"' .. token .. '","method":"camera"}'
  return wrk.format("POST", "/api/v1/redemptions",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. os.getenv("PIKA_DEVICE_TOKEN"),
     ["Idempotency-Key"] = string.format("bench%010d", counter)}, body)
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare(data: Path, count: int) -> tuple[str, Path]:
    DataDir(data).init()
    DataDir(data).set_config(velocity_limit=0)  # velocity check off: one bench device scans far faster than any till
    backend = Backend(data)
    try:
        retailer = backend.create_retailer("Bench")
        store = backend.create_store(retailer["id"], "Bench store")
        voucher = backend.create_voucher({"retailer_id": retailer["id"], "kind": "personal",
                                          "texts": {"es": {"title": "Bench"}},
                                          "discount": {"kind": "percent", "value": 10}})
        backend.change_voucher(voucher["id"], "publish")
        code = backend.create_enrollment_code(store["id"])["code"]
        device = backend.enroll(code, "bench-till")
        key = backend.signing_key
    finally:
        backend.close()
    now = int(time.time())
    token_file = data / "tokens.txt"
    with open(token_file, "w") as fh:
        for _ in range(count):
            fh.write(tokens.issue_personal(key, iss="pika", aud=retailer["id"], sub="c", vid=voucher["id"],
                                           jti=uuid.uuid4().hex, iat=now, exp=now + 3600) + "\n")
    return device["device_token"], token_file


def process_tree(pid: int) -> list[int]:
    """pid and all its descendants (granian's workers)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo.extend(children.get(p, []))
    return tree


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """user + system CPU seconds of each process (all its threads)."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[p] = (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return out


def wait_up(url: str, timeout: float = 15) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url + "/api/v1/health", timeout=1).read()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"server at {url} did not come up")


def run(server: str, args, base: Path) -> dict:
    data = base / server
    count = int(args.seconds * 12_000) + 1000
    device_token, token_file = prepare(data, count)
    port = free_port()
    cmd = [sys.executable, "-m", "server_stub", "serve", "--data", str(data), "--port", str(port),
           "--workers", str(args.workers), "--threads", str(args.server_threads)]
    if server == "stdlib":
        cmd.append("--stdlib")
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_up(url)
        lua = data / "bench.lua"
        lua.write_text(LUA)
        env = dict(os.environ, PIKA_DEVICE_TOKEN=device_token)
        pids = process_tree(proc.pid)
        cpu_before = cpu_seconds(pids)
        out = subprocess.run(
            ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{args.seconds}s", "--latency",
             "-s", str(lua), url, "--", str(token_file), str(args.threads)],
            capture_output=True, text=True, env=env, timeout=args.seconds + 60, check=True,
        ).stdout
        cpu_after = cpu_seconds(pids)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)

    def pct(label):
        m = re.search(rf"\s{label}%\s+([\d.]+)(us|ms|s)", out)
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    db = sqlite3.connect(data / "backend.sqlite3")
    accepted = db.execute("SELECT count(*) FROM attempts WHERE status = 'accepted'").fetchone()[0]
    db.close()
    cpu = {p: cpu_after[p] - cpu_before.get(p, 0.0) for p in cpu_after}
    return {"server": server, "requests_per_s": rps, "requests": total,
            "non_2xx": int(non2xx.group(1)) if non2xx else 0, "accepted_rows": accepted,
            "p50_ms": pct(50), "p90_ms": pct(90), "p99_ms": pct(99),
            "cpu_ms_per_request": round(1000 * sum(cpu.values()) / total, 3),
            # per server process, busiest first (granian: the workers, then the supervisor)
            "cpu_ms_per_request_by_process": [round(1000 * c / total, 3)
                                              for c in sorted(cpu.values(), reverse=True) if c > 0]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="granian worker processes")
    parser.add_argument("--server-threads", type=int, default=8, help="request threads per granian worker")
    parser.add_argument("--servers", default="granian,stdlib")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: run packaging/install.sh")
    base = Path(tempfile.mkdtemp(prefix="pika-bench-"))
    results = []
    try:
        for server in args.servers.split(","):
            result = run(server, args, base)
            results.append(result)
            print(json.dumps(result))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    if len(results) == 2:
        print(json.dumps({"ratio": round(results[0]["requests_per_s"] / results[1]["requests_per_s"], 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
