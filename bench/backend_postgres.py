"""Durable redemptions over PostgreSQL with 1, 2 and 4 backend processes, beside the SQLite backend.

Issue 17's figures, in one run: the same load as backend_redemptions.py
(wrk on 127.0.0.1, each request a distinct signed token with its own
Idempotency-Key: verify, decide, one durable insert) against

- `serve --workers 2` over SQLite in the data folder (the default set-up), and
- `serve --database URL --workers N`, N = 1, 2, 4, over a PostgreSQL cluster
  this script starts in a temporary folder (initdb / pg_ctl from the system's
  package, as its `postgres` user when run as root), on loopback, durable:
  fsync, full_page_writes and synchronous_commit left at their defaults (on).

The load is a chain's: the requests come from 64 enrolled tills in turn, the
tokens are of 16 vouchers in turn (`--tills`, `--vouchers`; 1 and 1 is
backend_redemptions.py's one till redeeming 16 codes at once). A set-up
named `pg-N-VARIANT` changes the feed's numbering in that bench database only
(VARIANTS below), to measure what its lock costs.

The set-ups alternate over several rounds, because this machine's speed
drifts by 2x within minutes; every round is printed. For each run: requests/s,
p50/p99 from wrk's latency distribution, the accepted rows counted in the
database against what wrk saw, and CPU per request from /proc — ours (every
backend process) and PostgreSQL's (every process of the cluster: the
postmaster's children, split into the connections' backends and the rest).
Each run has a warm-up first (its own tokens and keys), so connections are
open and statements prepared before the measured part, and PostgreSQL is
checkpointed between runs so no run pays for the one before.

    .venv/bin/python bench/backend_postgres.py [--rounds 3] [--seconds 8] [--setups sqlite-2,pg-1,pg-2,pg-4]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
import backend_redemptions as br  # noqa: E402  (its server, port and /proc pieces)
from pos_app.core import tokens  # noqa: E402  (backend_redemptions put the project on the path)
from server_stub.backend import Backend  # noqa: E402
from server_stub.datadir import DataDir  # noqa: E402
from pg_cluster import SUPERUSER, Cluster  # noqa: E402

# Each line of the token file: a token and the device token of the till that scans it, so the load is a
# chain's (several tills, several vouchers) and not one till redeeming 16 codes at once. The warm-up and
# the measured run have keys of their own (a repeated key is answered from storage).
LUA = r"""
local lines = {}
local counter = 0
local step = 1
local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads - 1)
end
function init(args)
  for line in io.lines(args[1]) do
    local token, device = line:match("([^ ]+) ([^ ]+)")
    lines[#lines + 1] = {token, device}
  end
  step = tonumber(args[2])
  counter = tonumber(tid)
end
function request()
  counter = counter + step
  local line = lines[(counter % #lines) + 1]
  local body = '{"input":"' .. line[1] .. '","method":"camera"}'
  return wrk.format("POST", "/api/v1/redemptions",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. line[2],
     ["Idempotency-Key"] = string.format(os.getenv("PIKA_BENCH_KEYS") .. "%010d", counter)}, body)
end
"""


# nofeed: no feed event (nor its lock) at all, which no backend may run; atinsert: the same event, numbered
# as the attempt is inserted (pg_schema's first trigger, not deferred), so the counter's row lock is held from
# the INSERT, across the round trip back to Python, to the COMMIT's WAL flush, instead of from the COMMIT only.
VARIANTS = {
    "nofeed": "ALTER TABLE attempts DISABLE TRIGGER attempts_feed_event",
    "atinsert": "DROP TRIGGER attempts_feed_event ON attempts; "
                "CREATE TRIGGER attempts_feed_event AFTER INSERT ON attempts "
                "FOR EACH ROW WHEN (NEW.status = 'accepted') "
                "EXECUTE FUNCTION attempts_feed_event()",
}


def is_connection(pid: int) -> bool:
    """A backend serving a client (its title names the user), not the checkpointer, WAL writer, …"""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().startswith(f"postgres: {SUPERUSER} ".encode())
    except OSError:
        return False


def prepare(data: Path, count: int, database: str | None, tills: int, vouchers: int) -> Path:
    """A backend with one store, `tills` enrolled tills and `vouchers` personal vouchers; `count` lines of
    a token and its till, spread round-robin over both."""
    DataDir(data).init(database)
    DataDir(data).set_config(velocity_limit=0)  # one bench till scans far faster than any real one
    backend = Backend(data)
    try:
        retailer = backend.create_retailer("Bench")
        store = backend.create_store(retailer["id"], "Bench store")
        ids = []
        for v in range(vouchers):
            voucher = backend.create_voucher({"retailer_id": retailer["id"], "kind": "personal",
                                              "texts": {"es": {"title": f"Bench {v}"}},
                                              "discount": {"kind": "percent", "value": 10}})
            backend.change_voucher(voucher["id"], "publish")
            ids.append(voucher["id"])
        devices = [backend.enroll(backend.create_enrollment_code(store["id"])["code"], f"bench-till-{t}")
                   ["device_token"] for t in range(tills)]
        key = backend.signing_key
    finally:
        backend.close()
    now = int(time.time())
    token_file = data / "tokens.txt"
    with open(token_file, "w") as fh:
        for i in range(count):
            token = tokens.issue_personal(key, iss="pika", aud=retailer["id"], sub="c", vid=ids[i % vouchers],
                                          jti=uuid.uuid4().hex, iat=now, exp=now + 3600)
            fh.write(f"{token} {devices[i % tills]}\n")
    return token_file


def wrk(url: str, token_file: Path, lua: Path, seconds: int, args, keys: str) -> str:
    env = dict(os.environ, PIKA_BENCH_KEYS=keys)
    return subprocess.run(
        ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{seconds}s", "--latency",
         "-s", str(lua), url, "--", str(token_file), str(args.threads)],
        capture_output=True, text=True, env=env, timeout=seconds + 60, check=True).stdout


def split_tokens(token_file: Path, first: int) -> tuple[Path, Path]:
    lines = token_file.read_text().splitlines(keepends=True)
    warm, main = token_file.with_suffix(".warm"), token_file.with_suffix(".main")
    warm.write_text("".join(lines[:first]))
    main.write_text("".join(lines[first:]))
    return warm, main


def run(setup: str, args, base: Path, cluster: Cluster, n: int) -> dict:
    engine, workers, *variant = setup.split("-")
    data = base / f"{setup}-{n}"
    database = cluster.new_database() if engine == "pg" else None
    name = database.rsplit("/", 1)[1] if database else None
    warm_count = args.warmup * args.max_rate
    token_file = prepare(data, warm_count + (args.seconds + 2) * args.max_rate, database, args.tills, args.vouchers)
    warm_tokens, main_tokens = split_tokens(token_file, warm_count)
    if variant:  # a change to this bench database only, measuring what the feed's numbering lock costs
        cluster.sql(VARIANTS[variant[0]], name)
    lua = data / "bench.lua"
    lua.write_text(LUA)
    port = br.free_port()
    proc = subprocess.Popen([sys.executable, "-m", "server_stub", "serve", "--data", str(data), "--port", str(port),
                             "--workers", workers, "--threads", str(args.server_threads)],
                            cwd=br.ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        br.wait_up(url)
        wrk(url, warm_tokens, lua, args.warmup, args, "warm")
        if database:
            cluster.sql("CHECKPOINT")
        ours, theirs = br.process_tree(proc.pid), br.process_tree(cluster.pid())
        ours_before, theirs_before = br.cpu_seconds(ours), br.cpu_seconds(theirs)
        out = wrk(url, main_tokens, lua, args.seconds, args, "main")
        ours_after = br.cpu_seconds(ours)
        theirs = sorted(set(theirs) | set(br.process_tree(cluster.pid())))  # and any connection opened meanwhile
        connections = {p for p in theirs if is_connection(p)}
        theirs_after = br.cpu_seconds(theirs)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    accepted, evented = count_accepted(data, database)
    ms = lambda before, after, pids: 1000 * sum(after[p] - before.get(p, 0.0) for p in pids if p in after) / total  # noqa: E731
    pg_conn = ms(theirs_before, theirs_after, connections) if database else 0.0
    pg_all = ms(theirs_before, theirs_after, theirs) if database else 0.0
    if database:
        cluster.sql(f"DROP DATABASE {name} WITH (FORCE)")
    return {"round": n, "setup": setup, "requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "requests": total, "non_2xx": int(non2xx.group(1)) if non2xx else 0, "accepted_rows": accepted,
            "every_row_has_its_event": bool(evented),  # false only in the nofeed variant
            "p50_ms": latency(out, 50), "p99_ms": latency(out, 99),
            "ours_cpu_ms": round(ms(ours_before, ours_after, ours), 3),
            "pg_cpu_ms": round(pg_all, 3), "pg_connections_cpu_ms": round(pg_conn, 3),
            "pg_background_cpu_ms": round(max(pg_all - pg_conn, 0.0), 3),
            "pg_connections": len(connections)}  # the cluster's client connections at the end (all ours)


def in_process(engine: str, base: Path, cluster: Cluster, n: int, count: int) -> dict:
    """`count` redemptions one after another through Backend.redeem, in this process: what one redemption
    costs with nothing beside it (no HTTP, no other request's lock to wait for, no GIL to share)."""
    data = base / f"inproc-{engine}-{n}"
    database = cluster.new_database() if engine == "pg" else None
    lines = prepare(data, count + 200, database, 1, 1).read_text().split("\n")[:-1]
    backend = Backend(data)
    try:
        device = backend.require_device(lines[0].split(" ")[1])
        for i, line in enumerate(lines[:200]):  # connections opened, statements prepared
            backend.redeem(device, f"warm{i}", {"input": line.split(" ")[0], "method": "camera"})
        theirs = br.process_tree(cluster.pid())
        theirs_before, wall, cpu = br.cpu_seconds(theirs), time.perf_counter(), time.process_time()
        for i, line in enumerate(lines[200:]):
            backend.redeem(device, f"main{i}", {"input": line.split(" ")[0], "method": "camera"})
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        theirs_after = br.cpu_seconds(theirs)
        trip = round_trip(backend.read(), theirs) if database else (0.0, 0.0)
    finally:
        backend.close()
    accepted, _ = count_accepted(data, database)
    pg = sum(theirs_after[p] - theirs_before.get(p, 0.0) for p in theirs_after) if database else 0.0
    if database:
        cluster.sql(f"DROP DATABASE {database.rsplit('/', 1)[1]} WITH (FORCE)")
    return {"round": n, "in_process": engine, "redemptions": count, "accepted_rows": accepted,
            "wall_ms": round(1000 * wall / count, 3), "ours_cpu_ms": round(1000 * cpu / count, 3),
            "pg_cpu_ms": round(1000 * pg / count, 3),
            "select_1_ours_us": round(trip[0], 1), "select_1_pg_us": round(trip[1], 1)}


def round_trip(db, theirs: list[int], n: int = 2000) -> tuple[float, float]:
    """The reference for a statement's fixed cost: `SELECT 1` on a read connection, our CPU and PostgreSQL's (µs)."""
    before, cpu = br.cpu_seconds(theirs), time.process_time()
    for _ in range(n):
        db.execute("SELECT 1").fetchone()
    cpu, after = time.process_time() - cpu, br.cpu_seconds(theirs)
    return 1e6 * cpu / n, 1e6 * sum(after[p] - before.get(p, 0.0) for p in after) / n


def count_accepted(data: Path, database: str | None) -> tuple[int, bool]:
    """Accepted rows of the measured run's keys; and whether every accepted row (warm-up too) has its event."""
    queries = ("SELECT count(*) FROM attempts WHERE status = 'accepted' AND key LIKE 'main%'",
               "SELECT (SELECT count(*) FROM attempts WHERE status = 'accepted') = (SELECT count(*) FROM events WHERE type = 'redemption')")
    if database:
        with psycopg.connect(database) as conn:
            return tuple(conn.execute(q).fetchone()[0] for q in queries)
    db = sqlite3.connect(data / "backend.sqlite3")
    try:
        return tuple(db.execute(q).fetchone()[0] for q in queries)
    finally:
        db.close()


def latency(out: str, percent: int) -> float:
    m = re.search(rf"\s{percent}%\s+([\d.]+)(us|ms|s)\b", out)
    value, unit = float(m.group(1)), m.group(2)
    return round(value / 1000 if unit == "us" else value * 1000 if unit == "s" else value, 2)


SUMMARY = ("round", "setup", "requests_per_s", "p50_ms", "p99_ms", "ours_cpu_ms", "pg_cpu_ms",
           "pg_connections_cpu_ms", "requests", "accepted_rows", "non_2xx")


ALONE = ("round", "in_process", "wall_ms", "ours_cpu_ms", "pg_cpu_ms", "select_1_ours_us", "select_1_pg_us",
         "redemptions", "accepted_rows")


def table(results: list[dict], columns: tuple[str, ...]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(r[k]) for k in columns) + " |" for r in results]
    return "\n".join(lines)


def medians(results: list[dict], by: str, keys: tuple[str, ...]) -> dict:
    out = {}
    for setup in dict.fromkeys(r[by] for r in results):
        rows = [r for r in results if r[by] == setup]
        med = lambda k: sorted(r[k] for r in rows)[len(rows) // 2]  # noqa: E731
        out[setup] = {k: med(k) for k in keys}
        out[setup]["per_redemption_ms"] = round(med("ours_cpu_ms") + med("pg_cpu_ms"), 3)
    return out


def arithmetic(loaded: dict, alone: dict) -> dict:
    """Per set-up over PostgreSQL: its CPU per redemption (ours + PostgreSQL's) over SQLite's, and how many
    backend hosts one database host of the same cores keeps busy (our CPU per redemption over its)."""
    out = {}
    for name, m in [*loaded.items(), *(("in-process-" + k, v) for k, v in alone.items())]:
        reference = alone.get("sqlite") if name.startswith("in-process") else loaded.get("sqlite-2")
        if m["pg_cpu_ms"] and reference:
            out[name] = {"cost_over_sqlite": round(m["per_redemption_ms"] / reference["per_redemption_ms"], 2),
                         "backend_hosts_per_database_host": round(m["ours_cpu_ms"] / m["pg_cpu_ms"], 1)}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2, help="seconds of load before each measured run")
    parser.add_argument("--setups", default="sqlite-2,pg-1,pg-2,pg-4",
                        help="ENGINE-WORKERS[-VARIANT], alternated each round (VARIANTS: PostgreSQL's feed "
                             "numbering changed, to see what its lock costs)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--tills", type=int, default=64, help="enrolled tills the requests come from, in turn")
    parser.add_argument("--vouchers", type=int, default=16, help="personal vouchers the tokens are of, in turn")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--server-threads", type=int, default=8, help="request threads per backend process")
    parser.add_argument("--in-process", type=int, default=2000, metavar="N",
                        help="then N redemptions one by one through Backend.redeem on each engine (0: none)")
    parser.add_argument("--max-rate", type=int, default=4000, help="tokens made per second of load (never reused)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: run packaging/install.sh")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # a stopped run still stops its cluster and servers
    base = Path(tempfile.mkdtemp(prefix="pika-bench-pg-"))
    os.chmod(base, 0o755)  # the cluster's user must reach its folder inside
    cluster = Cluster(base / "cluster", max_connections=200).start()
    results, alone = [], []
    try:
        fsync_us = cluster.fdatasync_us()
        for n in range(1, args.rounds + 1):
            for setup in args.setups.split(","):
                result = run(setup, args, base, cluster, n)
                results.append(result)
                print(json.dumps(result), flush=True)
            for engine in ("sqlite", "pg") if args.in_process else ():
                result = in_process(engine, base, cluster, n, args.in_process)
                alone.append(result)
                print(json.dumps(result), flush=True)
    finally:
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)
    print(table(results, SUMMARY))
    if alone:
        print(table(alone, ALONE))
    tree = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=br.ROOT, capture_output=True,
                          text=True).stdout.strip()  # the build measured: its commit, and whether it was edited
    loaded = medians(results, "setup", ("requests_per_s", "p99_ms", "ours_cpu_ms", "pg_cpu_ms"))
    by_engine = medians(alone, "in_process", ("wall_ms", "ours_cpu_ms", "pg_cpu_ms")) if alone else {}
    print(json.dumps({"tree": tree, "fdatasync_us": fsync_us, "tills": args.tills, "vouchers": args.vouchers, "medians": loaded,
                      "in_process_medians": by_engine, "arithmetic": arithmetic(loaded, by_engine)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
