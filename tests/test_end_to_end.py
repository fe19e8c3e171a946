"""The spine as an operator runs it: real processes, a real port, real files.

On each engine: SQLite in the backend's folder, and PostgreSQL (the folder
naming it). backend up → demo data → two tills enrolled → claim → till 1 redeems offline →
again: already_redeemed → both sync → till 2 refuses the code offline → till 2
redeems a typed short code → a printed code is redeemed twice.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str, expect: int = 0) -> dict:
    proc = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == expect, f"{args}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return json.loads(proc.stdout.strip().splitlines()[-1]) if proc.stdout.strip() else {}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def backend(tmp_path, backend_database):
    """`serve` as the README says, over SQLite in its folder or over PostgreSQL (`init --database`)."""
    data = tmp_path / "backend"
    database = ("--database", backend_database) if backend_database else ()
    init = run("server_stub", "init", "--data", str(data), *database)
    demo = run("server_stub", "demo-data", "--data", str(data))
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "server_stub", "serve", "--data", str(data), "--port", str(port)],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 20
    while True:
        try:
            httpx.get(url + "/api/v1/health", timeout=1).raise_for_status()
            break
        except httpx.HTTPError:
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.time() < deadline, "backend did not come up"
            time.sleep(0.1)
    yield url, init["admin_token"], demo
    proc.terminate()
    proc.wait(timeout=10)
    proc.stderr.close()


def claim(url: str, admin: str, voucher_id: str, customer: str) -> dict:
    response = httpx.post(url + "/api/v1/claims", json={"voucher_id": voucher_id, "customer_id": customer},
                          headers={"Authorization": f"Bearer {admin}"})
    assert response.status_code == 201, response.text
    return response.json()


def test_operator_walkthrough(backend, tmp_path):
    url, admin, demo = backend
    assert len(demo["enrollment_codes"]) >= 3
    assert {s["role"] for s in demo["staff"]} >= {"cashier", "manager"}
    till1, till2 = str(tmp_path / "till1"), str(tmp_path / "till2")
    enrolled1 = run("pos_app", "enroll", "--data", till1, "--server", url, "--code", demo["enrollment_codes"][0],
                    "--name", "Caja 1")
    run("pos_app", "enroll", "--data", till2, "--server", url, "--code", demo["enrollment_codes"][1],
        "--name", "Caja 2")
    assert enrolled1["retailer_id"] == demo["retailer_id"]
    # An enrollment code works once.
    run("pos_app", "enroll", "--data", str(tmp_path / "till3"), "--server", url,
        "--code", demo["enrollment_codes"][0], expect=1)

    personal = [v for v in demo["vouchers"] if v["kind"] == "personal"]
    printed = next(v for v in demo["vouchers"] if v["kind"] == "printed")
    cashier = next(s for s in demo["staff"] if s["role"] == "cashier")
    first = claim(url, admin, personal[0]["id"], "customer-1")
    # The claim was made after enrollment: the tills learn it by syncing.
    run("pos_app", "sync", "--data", till1)

    accepted = run("pos_app", "redeem", "--data", till1, "--offline", "--staff", cashier["id"], first["token"])
    assert accepted["accepted"] is True and accepted["decided"] == "offline"
    assert accepted["voucher"]["id"] == personal[0]["id"]
    again = run("pos_app", "redeem", "--data", till1, "--offline", first["token"], expect=3)
    assert again["reason"] == "already_redeemed"
    assert again["used"]["till"] == "Caja 1"

    synced1 = run("pos_app", "sync", "--data", till1)
    assert synced1["recorded"] == 2 and synced1["outbox"] == 0  # the accepted one and the refusal
    synced2 = run("pos_app", "sync", "--data", till2)
    assert synced2["error"] is None

    refused = run("pos_app", "redeem", "--data", till2, "--offline", first["token"], expect=3)
    assert refused["reason"] == "already_redeemed"
    assert refused["used"]["till"] == "Caja 1"
    # Its short code names the same claim: refused too.
    by_code = run("pos_app", "redeem", "--data", till2, "--offline", first["short_code"].lower(), expect=3)
    assert by_code["reason"] == "already_redeemed"

    second = claim(url, admin, personal[1]["id"], "customer-2")
    run("pos_app", "sync", "--data", till2)
    typed = run("pos_app", "redeem", "--data", till2, "--staff", cashier["id"],
                second["short_code"].replace("-", " ").lower())
    assert typed["accepted"] is True and typed["decided"] == "online"

    for _ in range(2):
        used = run("pos_app", "redeem", "--data", till2, "--printed", printed["code"].lower())
        assert used["accepted"] is True and used["kind"] == "printed"

    # The backend holds exactly what the tills did.
    run("pos_app", "sync", "--data", till2)
    wrong_way = run("pos_app", "redeem", "--data", till1, first["short_code"], expect=3)
    # Till 1 redeemed this code itself: it is refused at once, without a round trip.
    assert wrong_way["reason"] == "already_redeemed" and wrong_way["decided"] == "offline"
