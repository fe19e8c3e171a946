"""Slow clients against the backend: the nginx front with TLS before `serve`, against granian alone.

The set-up docs/operating.md tells operators to run: `serve --host 127.0.0.1
--workers N` (granian, the default threads) behind nginx, whose config is
written by `python -m server_stub front-config` from packaging/nginx/ (TLS
from a private CA made with the openssl commands of operating.md). The
reference, in the same run and on the same `serve`: granian reached directly,
as the README used to say (`--host 0.0.0.0`, plain HTTP).

Each set-up gets a quiet phase and an attack phase. The attack: 50 slow-body
clients (a POST's headers, then a byte of body a second) and 50 slow-header
clients (a byte of headers a second), each from its own loopback address
(127.0.0.10 …), reconnecting at once when cut off, for --attack-s seconds; it
runs in a child process so its sockets cost the measuring client nothing.
Meanwhile a till-like client (httpx, the till's 1.5 s timeout, one kept-alive
connection, a fresh signed token and Idempotency-Key each time) redeems
online, 4 a second. Printed: p50/p99 of the answered redemptions, and the
share answered 201 within the timeout, per phase.

    .venv/bin/python bench/slow_clients.py [--attack-s 30] [--quiet-s 15] [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TILL_TIMEOUT_S = 1.5
RATE_PER_S = 4


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_private_ca(folder: Path) -> dict[str, Path]:
    """The chain's CA and the front's certificate, by the openssl commands docs/operating.md gives."""
    folder.mkdir(parents=True)
    run = lambda *a: subprocess.run(["openssl", *a], cwd=folder, check=True, capture_output=True)  # noqa: E731
    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key",
        "-out", "ca.pem", "-days", "3650", "-subj", "/CN=Bench chain CA", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "backend.key",
        "-out", "backend.csr", "-subj", "/CN=localhost")
    (folder / "backend.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                                        "extendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n")
    run("x509", "-req", "-in", "backend.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "backend.pem", "-days", "825", "-extfile", "backend.ext")
    return {"ca": folder / "ca.pem", "cert": folder / "backend.pem", "key": folder / "backend.key"}


def prepare(data: Path) -> dict:
    from bench_chain import make_chain

    chain = make_chain(data)
    return {"key": chain.key, "retailer": chain.retailer, "voucher": chain.voucher,
            "device_token": chain.devices[0]["device_token"]}


def wait_up(url: str, verify) -> None:
    import httpx

    deadline = time.time() + 30
    while True:
        try:
            httpx.get(url + "/api/v1/health", timeout=1, verify=verify).raise_for_status()
            return
        except httpx.HTTPError:
            if time.time() > deadline:
                raise SystemExit(f"{url} did not come up")
            time.sleep(0.2)


def redeem_for(seconds: float, url: str, verify, setup: dict) -> dict:
    """The till-like client's redemptions for `seconds`: latencies of 201s, and what else happened."""
    import httpx

    from pos_app.core import tokens

    latencies, failures = [], {}
    with httpx.Client(base_url=url + "/api/v1", verify=verify, timeout=TILL_TIMEOUT_S,
                      headers={"Authorization": f"Bearer {setup['device_token']}"}) as client:
        end = time.monotonic() + seconds
        next_at = time.monotonic()
        while time.monotonic() < end:
            now = int(time.time())
            token = tokens.issue_personal(setup["key"], iss="pika", aud=setup["retailer"], sub="c",
                                          vid=setup["voucher"], jti=uuid.uuid4().hex, iat=now, exp=now + 3600)
            started = time.perf_counter()
            try:
                answer = client.post("/redemptions", json={"input": token, "method": "camera"},
                                     headers={"Idempotency-Key": uuid.uuid4().hex})
                took = time.perf_counter() - started
                if answer.status_code == 201 and took <= TILL_TIMEOUT_S:
                    latencies.append(took)
                else:
                    failures[str(answer.status_code)] = failures.get(str(answer.status_code), 0) + 1
            except httpx.HTTPError as exc:
                failures[type(exc).__name__] = failures.get(type(exc).__name__, 0) + 1
            next_at += 1 / RATE_PER_S
            time.sleep(max(0.0, next_at - time.monotonic()))
    tried = len(latencies) + sum(failures.values())
    ordered = sorted(latencies)
    return {"tried": tried, "answered": len(latencies), "success": len(latencies) / tried if tried else 0.0,
            "p50_ms": round(statistics.median(ordered) * 1000, 1) if ordered else None,
            "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 1) if ordered else None,
            # Of every redemption tried, a timeout or refusal counted as slower than any answer.
            "p99_all": _p99_all(ordered, tried),
            "failures": failures}


def _p99_all(ordered: list[float], tried: int) -> str:
    if not tried:
        return "-"
    index = int(tried * 0.99)
    return f"{ordered[index] * 1000:.1f} ms" if index < len(ordered) else "> 1.5 s (not answered)"


# --- the attack, in a child process ---------------------------------------------------------------------------

async def _one(kind: str, index: int, host: str, port: int, context, end: float, stats: dict) -> None:
    source = f"127.0.0.{10 + index}"
    head = (b"POST /api/v1/devices/enroll HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100000\r\n\r\n{")
    trickle = b"GET /api/v1/health HTTP/1.1\r\nHost: localhost\r\nX-Pad: " + b"a" * 100_000
    while time.monotonic() < end:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(
                host, port, ssl=context, server_hostname="localhost" if context else None,
                local_addr=(source, 0)), timeout=5)
        except (OSError, asyncio.TimeoutError, ssl.SSLError):
            stats["connect_failed"] += 1
            await asyncio.sleep(0.5)
            continue
        stats["connections"] += 1
        opened = time.monotonic()
        sent = 0
        try:
            if kind == "body":
                writer.write(head)
            while time.monotonic() < end:
                writer.write(b" " if kind == "body" else trickle[sent:sent + 1])
                sent += 1
                await writer.drain()
                try:
                    got = await asyncio.wait_for(reader.read(512), timeout=1.0)
                except asyncio.TimeoutError:
                    continue
                stats["cut"] += 1  # an answer (408, 400) or the connection closed: cut off
                stats["cut_after_s"].append(time.monotonic() - opened)
                del got
                break
        except (OSError, ssl.SSLError):
            stats["cut"] += 1
            stats["cut_after_s"].append(time.monotonic() - opened)
        finally:
            writer.close()


async def _attack(host: str, port: int, ca: str | None, seconds: float, each: int) -> dict:
    context = ssl.create_default_context(cafile=ca) if ca else None
    end = time.monotonic() + seconds
    stats = {kind: {"connections": 0, "cut": 0, "connect_failed": 0, "cut_after_s": []} for kind in ("body", "header")}
    await asyncio.gather(*(_one(kind, i + (0 if kind == "body" else each), host, port, context, end, stats[kind])
                           for kind in ("body", "header") for i in range(each)))
    for kind in stats.values():
        cuts = kind.pop("cut_after_s")
        kind["median_cut_after_s"] = round(statistics.median(cuts), 1) if cuts else None
    return stats


def attack_main(argv: list[str]) -> int:
    host, port, ca, seconds, each = argv[0], int(argv[1]), argv[2] or None, float(argv[3]), int(argv[4])
    print(json.dumps(asyncio.run(_attack(host, port, ca, seconds, each))))
    return 0


# --- the run --------------------------------------------------------------------------------------------------

def phase(name: str, url: str, verify, setup: dict, attack: tuple | None, seconds: float) -> dict:
    child = None
    if attack is not None:
        child = subprocess.Popen([sys.executable, __file__, "--attacker", *map(str, attack)],
                                 stdout=subprocess.PIPE, text=True)
        time.sleep(2)  # every attacker connected
    result = redeem_for(seconds, url, verify, setup)
    if child is not None:
        result["attack"] = json.loads(child.communicate(timeout=120)[0])
    result["phase"] = name
    print(json.dumps(result), flush=True)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attack-s", type=float, default=30)
    parser.add_argument("--quiet-s", type=float, default=15)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="serve's workers (default: a core each)")
    parser.add_argument("--each", type=int, default=50, help="slow-body clients, and as many slow-header ones")
    args = parser.parse_args()
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.access(nginx, os.X_OK):
        raise SystemExit("nginx is not installed: bash packaging/install.sh")
    folder = Path(tempfile.mkdtemp(prefix="pika-slow-"))
    procs = []
    try:
        pki = make_private_ca(folder / "pki")
        setup = prepare(folder / "backend")
        port, front_port = free_port(), free_port()
        procs.append(subprocess.Popen([sys.executable, "-m", "server_stub", "serve", "--data", str(folder / "backend"),
                                       "--host", "127.0.0.1", "--port", str(port), "--workers", str(args.workers)],
                                      cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        (folder / "nginx").mkdir()
        conf = folder / "nginx" / "nginx.conf"
        user = ["--user", "root"] if os.geteuid() == 0 else []
        subprocess.run([sys.executable, "-m", "server_stub", "front-config", "--listen", f"127.0.0.1:{front_port}",
                        "--server-name", "localhost", "--cert", str(pki["cert"]), "--key", str(pki["key"]),
                        "--upstream", f"127.0.0.1:{port}", "--standalone", str(folder / "nginx"),
                        "--workers", str(args.workers), *user, "--out", str(conf)],
                       cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        procs.append(subprocess.Popen([nginx, "-c", str(conf), "-g", "daemon off;"]))
        verify = ssl.create_default_context(cafile=str(pki["ca"]))
        front, direct = f"https://localhost:{front_port}", f"http://127.0.0.1:{port}"
        wait_up(direct, True)
        wait_up(front, verify)
        print(f"serve --workers {args.workers} on {direct}; nginx front on {front}; "
              f"{args.each}+{args.each} slow clients for {args.attack_s:.0f} s", flush=True)
        front_attack = ("127.0.0.1", front_port, str(pki["ca"]), args.attack_s, args.each)
        direct_attack = ("127.0.0.1", port, "", args.attack_s, args.each)
        results = [
            phase("front, quiet", front, verify, setup, None, args.quiet_s),
            phase("front, attacked", front, verify, setup, front_attack, args.attack_s - 2),
            phase("granian alone, quiet", direct, True, setup, None, args.quiet_s),
            phase("granian alone, attacked", direct, True, setup, direct_attack, args.attack_s - 2),
        ]
        print("\n| set-up, phase | redemptions tried | answered 201 within 1.5 s | p50 (answered) | p99 (answered) "
              "| p99 (all tried) |")
        print("|---|---|---|---|---|---|")
        for r in results:
            print(f"| {r['phase']} | {r['tried']} | {r['success']:.0%} | {r['p50_ms']} ms | {r['p99_ms']} ms "
                  f"| {r['p99_all']} |")
        return 0
    finally:
        for proc in reversed(procs):
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--attacker"]:
        sys.exit(attack_main(sys.argv[2:]))
    sys.exit(main())
