"""The store's tills keep each other honest over the LAN while the backend is down: real processes on
loopback — a backend (`server_stub serve`), three tills of one store and one of another, each enrolled for
real and running `pos_app sync --watch` with its own port and the others listed in `lan_peers` (or found
by mDNS) — then the backend stopped, codes redeemed at one till and refused at the others, and the
backend back: every redemption reaches it exactly once."""

from __future__ import annotations

import base64
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from lan_helpers import wait_for
from pos_app.store import TillStore

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def run(*args: str, expect: int | None = 0) -> dict:
    proc = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=90)
    assert expect is None or proc.returncode == expect, f"{args}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return json.loads(proc.stdout.strip().splitlines()[-1]) if proc.stdout.strip() else {}


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Backend:
    def __init__(self, data: Path):
        self.data, self.port, self.proc = data, free_port(), None
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "server_stub", "serve", "--data", str(self.data),
                                      "--port", str(self.port)], cwd=ROOT, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.time() + 30
        while True:
            try:
                httpx.get(self.url + "/api/v1/health", timeout=1).raise_for_status()
                return
            except httpx.HTTPError:
                assert self.proc.poll() is None, "the backend exited"
                assert time.time() < deadline, "the backend did not come up"
                time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(15)
            self.proc = None


class Till:
    def __init__(self, data: Path, port: int):
        self.data, self.port, self.proc = data, port, None
        self.path = data / "till.sqlite3"

    def configure(self, **values) -> None:
        with TillStore(self.path) as store:
            with store.transaction():
                for name, value in values.items():
                    store.write_setting(name, value)

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "pos_app", "sync", "--data", str(self.data), "--watch",
                                      "--interval", "0.5"], cwd=ROOT, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            assert self.proc.wait(20) == 0
            self.proc = None

    def read(self, sql: str, *args):
        with sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5) as conn:
            return conn.execute(sql, args).fetchall()

    def used(self, jti: str):
        rows = self.read("SELECT at, till, origin FROM used_tokens WHERE jti = ?", jti)
        return rows[0] if rows else None

    def status(self) -> dict:
        return run("pos_app", "status", "--data", str(self.data))

    def redeem(self, code: str, *, printed: bool = False, offline: bool = True, expect: int | None = None) -> dict:
        return run("pos_app", "redeem", "--data", str(self.data), *(["--offline"] if offline else []),
                   *(["--printed"] if printed else []), code, expect=expect)


@pytest.fixture
def shop(tmp_path):
    """A backend with demo data and a second store; three tills of the demo store and one of the other, all
    enrolled and syncing, each with its own LAN port; the backend running."""
    data = tmp_path / "backend"
    admin = run("server_stub", "init", "--data", str(data))["admin_token"]
    demo = run("server_stub", "demo-data", "--data", str(data))
    backend = Backend(data)
    backend.start()
    auth = {"Authorization": f"Bearer {admin}"}
    other = httpx.post(backend.url + "/api/v1/stores", headers=auth,
                       json={"retailer_id": demo["retailer_id"], "name": "Otra tienda"}).json()
    other_code = httpx.post(backend.url + "/api/v1/enrollment-codes", headers=auth,
                            json={"store_id": other["id"]}).json()["code"]
    tills = []
    for n, code in enumerate([*demo["enrollment_codes"][:3], other_code], start=1):
        till = Till(tmp_path / f"till{n}", free_port())
        run("pos_app", "enroll", "--data", str(till.data), "--server", backend.url, "--code", code,
            "--name", f"Caja {n}")
        tills.append(till)
    register_log_keys(data, tills)
    ports = [till.port for till in tills]
    for till in tills:
        till.configure(lan_port=till.port, lan_bind="127.0.0.1", lan_discovery="0",
                       lan_peers=", ".join(f"127.0.0.1:{p}" for p in ports if p != till.port))
    yield backend, tills, demo, auth
    for till in tills:
        if till.proc is not None:
            till.proc.kill()
            till.proc.wait()
    backend.stop()


def register_log_keys(data: Path, tills: list[Till]) -> None:
    """Each till's log key is its device's, registered by its own enrollment (POST /devices/enroll's log_key):
    the roster its peers check it by."""
    from pos_app.core import till_log

    with sqlite3.connect(data / "backend.sqlite3", timeout=10) as conn:
        for till in tills:
            with TillStore(till.path) as store:
                device_id, public = store.device_id, till_log.public_key_of(store.get("log_private_key"))
            assert conn.execute("SELECT log_key FROM devices WHERE id = ?", (device_id,)).fetchone()[0] == public


def claim(backend: Backend, auth: dict, voucher_id: str, customer: str) -> dict:
    answer = httpx.post(backend.url + "/api/v1/claims", headers=auth,
                        json={"voucher_id": voucher_id, "customer_id": customer})
    assert answer.status_code == 201, answer.text
    return answer.json()


def printed_voucher(backend: Backend, auth: dict, retailer_id: str, **limits) -> str:
    """A published printed voucher with those limits; its code."""
    voucher = httpx.post(backend.url + "/api/v1/vouchers", headers=auth, json={
        "retailer_id": retailer_id, "kind": "printed", "texts": {"es": {"title": "Dos por día"}},
        "discount": {"kind": "percent", "value": 5, "currency": "PYG"}, **limits}).json()
    assert httpx.post(f"{backend.url}/api/v1/vouchers/{voucher['id']}/publish", headers=auth).status_code == 200
    answer = httpx.post(backend.url + "/api/v1/printed-codes", headers=auth,
                        json={"voucher_id": voucher["id"], "code": "DOSXDIA"})
    assert answer.status_code == 201, answer.text
    return answer.json()["code"]


def start_and_meet(tills: list[Till], ready: list[Till]) -> None:
    """Every till running; each of `ready` has heard each other till of its store."""
    for till in tills:
        till.start()
    for till in ready:
        others = len([t for t in ready if t is not till])
        assert wait_for(lambda: till.status()["lan"]["peers_heard"] >= others, timeout=40, every=0.5), \
            till.status()["lan"]


def test_three_tills_keep_each_other_honest_while_the_backend_is_down(shop):
    backend, tills, demo, auth = shop
    one, two, three, elsewhere = tills
    personal = [v for v in demo["vouchers"] if v["kind"] == "personal"]
    claims = [claim(backend, auth, personal[i % len(personal)]["id"], f"cust-{i}") for i in range(4)]
    printed = printed_voucher(backend, auth, demo["retailer_id"], store_day_limit=2)
    for till in tills:
        run("pos_app", "sync", "--data", str(till.data))  # the claims, and the whole store's roster
    start_and_meet(tills, [one, two, three])
    backend.stop()

    # A personal code redeemed at till 1 is refused at tills 2 and 3 within a second, naming till 1.
    accepted = one.redeem(claims[0]["token"], expect=0)
    assert accepted["accepted"] is True
    started = time.monotonic()
    assert wait_for(lambda: two.used(claims[0]["jti"]) and three.used(claims[0]["jti"]), timeout=5)
    assert time.monotonic() - started <= 1.0
    for till in (two, three):
        refused = till.redeem(claims[0]["token"], expect=3)
        assert refused["reason"] == "already_redeemed"
        assert refused["used"]["till"] == "Caja 1"
        assert abs(refused["used"]["at"] - one.used(claims[0]["jti"])[0]) < 1e-6
    # The other store's till neither receives nor is believed.
    time.sleep(2.5)
    assert elsewhere.used(claims[0]["jti"]) is None
    assert elsewhere.read("SELECT count(*) FROM lan_records")[0][0] == 0
    elsewhere_redeemed = elsewhere.redeem(claims[1]["token"], expect=None)
    time.sleep(2.5)
    assert one.used(claims[1]["jti"]) is None and two.used(claims[1]["jti"]) is None
    assert not elsewhere.read("SELECT 1 FROM lan_records")

    # A printed code's store-day limit (2) holds across tills: one use at till 1, one at till 2, refused at 3.
    assert one.redeem(printed, printed=True, expect=0)["accepted"] is True
    assert wait_for(lambda: two.read("SELECT count(*) FROM lan_printed WHERE counted_by_feed = 0")[0][0] == 1)
    assert two.redeem(printed, printed=True, expect=0)["accepted"] is True
    assert wait_for(lambda: three.read("SELECT count(*) FROM lan_printed WHERE counted_by_feed = 0")[0][0] == 2)
    assert three.redeem(printed, printed=True, expect=3)["reason"] == "limit_reached"
    assert one.redeem(printed, printed=True, expect=3)["reason"] == "limit_reached"
    # A partition: till 3 away, till 1 redeems, till 3 back catches up.
    three.stop()
    one.redeem(claims[2]["token"], expect=0)
    assert wait_for(lambda: two.used(claims[2]["jti"]), timeout=5)
    assert three.used(claims[2]["jti"]) is None
    three.start()
    assert wait_for(lambda: three.used(claims[2]["jti"]), timeout=20)
    assert three.redeem(claims[2]["token"], expect=3)["used"]["till"] == "Caja 1"

    # The same instant: tills 2 and 3 both accept claim 3 before hearing each other (a partition: both away).
    for till in (one, two, three):
        till.stop()
    two.redeem(claims[3]["token"], expect=0)
    three.redeem(claims[3]["token"], expect=0)

    # The backend back: every redemption reaches it once, each from its own till; the double is a conflict.
    backend.start()
    for till in tills:
        run("pos_app", "sync", "--data", str(till.data))
    for till in tills:
        assert till.status()["outbox"] == 0
    attempts = sqlite3.connect(backend.data / "backend.sqlite3").execute(
        "SELECT key, device_id, status, jti FROM attempts").fetchall()
    keys = [row[0] for row in attempts]
    assert len(keys) == len(set(keys))
    local = sum(t.read("SELECT count(*) FROM attempts WHERE state = 'done'")[0][0] for t in tills)
    assert len(keys) == local
    accepted_jtis = [row[3] for row in attempts if row[2] == "accepted" and row[3] is not None]
    assert sorted(accepted_jtis) == sorted({c["jti"] for c in claims})
    assert [row[2] for row in attempts if row[3] == claims[3]["jti"]].count("conflict") == 1
    del elsewhere_redeemed


def test_tills_find_each_other_by_mdns_and_a_wrong_store_key_is_ignored(shop):
    backend, tills, demo, auth = shop
    one, two, three, elsewhere = tills
    personal = [v for v in demo["vouchers"] if v["kind"] == "personal"]
    claims = [claim(backend, auth, personal[0]["id"], f"cust-m{i}") for i in range(3)]
    for till in tills:  # no addresses given: each finds the others announcing `_pika-till._tcp` on 127.0.0.1
        till.configure(lan_peers="", lan_discovery="1")
        run("pos_app", "sync", "--data", str(till.data))
    start_and_meet(tills, [one, two, three])
    backend.stop()
    accepted = one.redeem(claims[0]["token"], expect=0)
    assert accepted["accepted"] is True
    started = time.monotonic()
    assert wait_for(lambda: two.used(claims[0]["jti"]) and three.used(claims[0]["jti"]), timeout=5)
    assert time.monotonic() - started <= 1.0
    time.sleep(2.5)
    assert elsewhere.read("SELECT count(*) FROM lan_records")[0][0] == 0  # it announces another store's tag

    # Till 3's store key edited (its file is the shop PC's): its peers refuse it, and it believes none of them.
    three.stop()
    with TillStore(three.path) as store:
        lan = store.get("lan")
    lan["keys"] = [{**key, "secret": base64.b64encode(os.urandom(32)).decode("ascii")} for key in lan["keys"]]
    three.configure(lan=lan)
    before = {till.data.name: till.read("SELECT count(*) FROM lan_records")[0][0] for till in (one, two, three)}
    three.start()
    one.redeem(claims[1]["token"], expect=0)
    assert wait_for(lambda: two.used(claims[1]["jti"]), timeout=5)
    three.redeem(claims[2]["token"], expect=0)
    time.sleep(4)
    assert three.used(claims[1]["jti"]) is None
    assert one.used(claims[2]["jti"]) is None and two.used(claims[2]["jti"]) is None
    assert three.read("SELECT count(*) FROM lan_records")[0][0] == before["till3"]
    assert one.read("SELECT count(*) FROM lan_records")[0][0] == before["till1"]  # nothing of till 3
