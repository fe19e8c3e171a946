"""Sync that loses nothing, shown with real processes, real files and a loopback port.

kill -9 of the till (200 times), the backend killed mid-batch and restarted,
a long outage with thousands queued, five tills racing for the same personal
codes, a full disk at the till, and `sync --watch` stopped by SIGTERM.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pos_app.sync.client import BackendClient
from pos_app.sync.backoff import Backoff
from pos_app.core.domain import Method
from pos_app.sync.redeem import NotRecorded, redeem
from pos_app.store import TillStore
from pos_app.sync.round import sync_once
from pos_app.sync.engine import SyncEngine
from server_stub.datadir import DB_NAME

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
import sync_kill_soak as soak  # noqa: E402

RACE_CODES = 30


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("reliability")
    made = soak.make_world(root, claims=RACE_CODES, tills=6)
    made["root"] = root
    yield made
    made["backend"].stop()


def backend_db(world) -> Path:
    return world["root"] / "backend" / DB_NAME


def queue_offline(store: TillStore, printed: str, count: int) -> None:
    for n in range(count):
        redeem(store, printed if n % 5 else f"garbage {n}", method=Method.PRINTED if n % 5 else Method.TYPED)


def assert_agree(world, store, device_id) -> dict:
    result = soak.compare(store, backend_db(world), device_id)
    assert not (result["missing_at_backend"] or result["unknown_to_till"] or result["acceptance_differs"]
                or result["abandoned_at_backend"] or result["jti_accepted_twice"]), result
    assert result["outbox"] == 0 and result["pending"] == 0, result
    return result


def test_till_killed_200_times_while_redeeming_and_syncing_loses_nothing():
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "sync_kill_soak.py"), "--kills", "200"],
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["kills"] == 200 and result["ok"], result
    assert result["till_attempts"] == result["backend_attempts"] > 200


def test_backend_killed_mid_batch_and_restarted(world):
    backend = world["backend"]
    path, token, device_id = world["tills"][0]
    rng = random.Random(3)
    with TillStore(path) as store:
        queue_offline(store, world["printed"], 3000)
        with BackendClient(backend.url, token, timeout=5) as client:
            for _ in range(3):
                killer = threading.Timer(rng.uniform(0.02, 0.3), backend.kill)
                killer.start()
                summary = sync_once(store, client)
                killer.join()
                backend.start()
                assert summary.error or store.outbox_size() == 0
            soak.settle(store, client)
        assert_agree(world, store, device_id)["backend_attempts"] == 3000


def test_long_outage_then_everything_drains_in_order_at_a_bounded_rate(world):
    backend = world["backend"]
    path, token, device_id = world["tills"][1]
    clients = []

    def factory(store):
        clients.append(BackendClient(store.server_url, store.device_token, timeout=5, min_interval_s=1 / 20))
        return clients[-1]

    backend.kill()
    try:
        with TillStore(path) as store:
            queue_offline(store, world["printed"], 2500)
        engine = SyncEngine(path, client_factory=factory, feed_interval_s=0.05,
                            backoff=Backoff(base_s=0.2, cap_s=0.5, floor_s=0.2))
        engine.start()
        try:
            time.sleep(2.5)
            status = engine.status()
            assert status.state == "offline" and status.outbox == 2500
            assert clients[0].requests <= 2.5 / 0.2 + 1  # backed off: not a request per 50 ms tick
        finally:
            backend.start()
        requests_before, started = clients[0].requests, time.monotonic()
        try:
            status = engine.sync_now(wait_s=30)
            while status.outbox:
                time.sleep(0.05)
                status = engine.status()
            drain_s = time.monotonic() - started
            assert status.state == "online"
            assert clients[0].requests - requests_before <= drain_s * 20 + 2
        finally:
            engine.stop()
    finally:
        if backend.proc is None:
            backend.start()
    import sqlite3
    db = sqlite3.connect(backend_db(world))
    try:
        ats = [at for (at,) in db.execute("SELECT at FROM attempts WHERE device_id = ? ORDER BY id", (device_id,))]
    finally:
        db.close()
    assert len(ats) == 2500 and ats == sorted(ats)


def test_five_tills_race_for_the_same_personal_codes(world):
    backend = world["backend"]
    tills = world["tills"][:5]
    codes = world["codes"][:RACE_CODES]
    errors = []

    def till(n, path, token):
        try:
            rng = random.Random(n)
            order = codes[:]
            rng.shuffle(order)
            with TillStore(path) as store, BackendClient(backend.url, token, timeout=5) as client:
                for code in order:
                    redeem(store, code, method=Method.CAMERA, client=client if rng.random() < 0.5 else None)
        except Exception as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=till, args=(n, path, token)) for n, (path, token, _) in enumerate(tills)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors
    import sqlite3
    stores = [TillStore(path) for path, _, _ in tills]
    try:
        for store, (_, token, _) in zip(stores, tills):
            with BackendClient(backend.url, token, timeout=5) as client:
                soak.settle(store, client)
        db = sqlite3.connect(backend_db(world))
        try:
            winners = dict(db.execute("SELECT jti, key FROM attempts WHERE status = 'accepted' AND kind = 'personal'"))
            accepted_per_jti = db.execute("SELECT max(n) FROM (SELECT count(*) n FROM attempts WHERE "
                                          "status = 'accepted' AND jti IS NOT NULL GROUP BY jti)").fetchone()[0]
        finally:
            db.close()
        assert accepted_per_jti == 1 and len(winners) == RACE_CODES
        conflicts = 0
        for store in stores:
            for attempt in store.attempts():
                if not attempt["accepted"] or attempt["kind"] != "personal":
                    continue
                if attempt["key"] == winners[attempt["jti"]]:
                    assert attempt["status"] == "accepted"
                else:  # a loser: kept, marked, with the winner named
                    assert attempt["status"] == "conflict" and attempt["conflict"]["jti"] == attempt["jti"]
                    conflicts += 1
            assert store.sync_figures()["conflicts"] == len(store.conflicts())
        assert conflicts > 0  # offline tills did race
    finally:
        for store in stores:
            store.close()


def test_full_disk_gives_a_clear_error_writes_nothing_and_sync_resumes(world):
    backend = world["backend"]
    path, token, device_id = world["tills"][5]

    def counts(store):
        return [store._conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                for table in ("attempts", "outbox", "used_tokens", "printed_uses")] + [
            store._conn.execute("SELECT coalesce(sum(count), 0) FROM printed_uses").fetchone()[0]]

    with TillStore(path) as store, BackendClient(backend.url, token, timeout=5) as client:
        pages = store._conn.execute("PRAGMA page_count").fetchone()[0]
        store._conn.execute(f"PRAGMA max_page_count = {pages}")  # the disk is full now
        failure = None
        for _ in range(2000):
            before = counts(store)
            try:
                redeem(store, world["printed"], method=Method.PRINTED)
            except NotRecorded as exc:
                failure = exc
                break
        assert failure is not None and failure.disk_full and "disk is full" in str(failure)
        assert counts(store) == before  # nothing half-written
        # Online, the key may be written before the disk fills; then the
        # backend's answer cannot be recorded: the cashier gets the error, and
        # the till learns the answer by that key once it can write again.
        with pytest.raises(NotRecorded):
            redeem(store, world["printed"], method=Method.PRINTED, client=client)
        after = counts(store)
        assert after == before or (after[0] == before[0] + 1 and after[1:] == before[1:]
                                   and len(store.pending_online()) == 1)
        store._conn.execute("PRAGMA max_page_count = 1073741823")  # space is back
        assert redeem(store, world["printed"], method=Method.PRINTED).verdict.accepted
        soak.settle(store, client)
        assert_agree(world, store, device_id)


def test_sync_watch_runs_until_sigterm(world):
    path = world["tills"][5][0]
    proc = subprocess.Popen([sys.executable, "-m", "pos_app", "sync", "--data", str(path.parent), "--watch",
                             "--interval", "0.5"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = json.loads(proc.stdout.readline())
        assert line["state"] == "online" and line["outbox"] == 0
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
        proc.stderr.close()
    status = subprocess.run([sys.executable, "-m", "pos_app", "status", "--data", str(path.parent)], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    figures = json.loads(status.stdout)
    assert {"outbox", "parked", "last_sync", "clock_skew_s", "conflicts", "sync_success_rate", "offline_share",
            "conflict_rate", "delay_p50_s", "delay_p95_s"} <= set(figures)
