"""Sync that loses nothing over PostgreSQL, shown with real processes: three `serve` processes over one
database (one on a copy of the data folder, as a second host holds), real till stores on loopback, kill -9
of a backend process mid-batch, fifty devices racing one code through different processes, and the feed
followed through the API while a transaction that wrote an event is held open on purpose.

The harness is bench/sync_kill_soak.py's (BackendProcess, make_world, compare), given `database=`.
One world serves the module (a database of its own in the session's cluster, tests/pg_fixtures.py):
each test takes its own codes and devices, so the backend's starting cost is paid once.
"""

from __future__ import annotations

import random
import shutil
import sys
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest

from pos_app.core.domain import Method
from pos_app.store import TillStore
from pos_app.sync.client import BackendClient
from pos_app.sync.redeem import redeem
from pos_app.sync.round import sync_once

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
import sync_kill_soak as soak  # noqa: E402


# Each test its own personal codes of the one world (and its own devices); the printed code is shared,
# its limits being the backend's rule over every use in a store on a day.
CODES = {"five_tills": 24, "killed": 40, "fifty": 2, "feed": 9}
PRINTED_PER_TILL = 60  # five tills: 300 uses of a code allowed 200 a store a day
QUEUED = 2000  # a till's outbox when its backend process is killed in a batch (of 500)


@pytest.fixture(scope="module")
def world(tmp_path_factory, pg_cluster):
    """A backend over a database of this module's with demo data and personal codes, served by three
    processes: two on the data folder, one on a copy of it (what a second host is given)."""
    name = pg_cluster.create_database()
    root = tmp_path_factory.mktemp("pg-reliability")
    processes: list[soak.BackendProcess] = []
    try:
        made = soak.make_world(root, claims=sum(CODES.values()), tills=0, database=pg_cluster.dsn(name))
        processes.append(made["backend"])
        copy = root / "backend-host2"
        shutil.copytree(made["data"], copy)
        for data in (made["data"], copy):
            processes.append(soak.BackendProcess(data, database=made["database"]).start())
        made["processes"] = processes
        codes, made["codes"] = made["codes"], {}
        for test, count in CODES.items():
            made["codes"][test], codes = codes[:count], codes[count:]
        with httpx.Client(base_url=processes[0].url + "/api/v1", timeout=10,
                          headers={"Authorization": f"Bearer {made['admin']}"}) as admin:
            made["admin_http"] = admin
            # The five tills' store of their own: the printed code's daily count there is theirs alone.
            made["race_store"] = admin.post("/stores", json={"retailer_id": made["demo"]["retailer_id"],
                                                             "name": "Sucursal carrera"}).json()["id"]
            yield made
    finally:
        for process in processes:
            process.stop()
        pg_cluster.drop_database(name)


@pytest.fixture(autouse=True)
def all_serving(world):
    """Every process serving as a test begins, whatever one before it left killed."""
    for process in world["processes"]:
        if process.proc is None:
            process.start()


def device(world, name: str, process: soak.BackendProcess) -> dict:
    """A device enrolled at `process` with a fresh enrollment code (its token and id), no till store."""
    code = world["admin_http"].post("/enrollment-codes", json={"store_id": world["demo"]["store_id"]}).json()["code"]
    with BackendClient(process.url, timeout=10) as anonymous:
        return anonymous.enroll(code, name)


def till(world, tmp_path, n: int, process: soak.BackendProcess, store_id: str | None = None) -> tuple[Path, str, str]:
    """A till store enrolled at `process` (in the demo store, or `store_id`) and synced once."""
    code = world["admin_http"].post("/enrollment-codes", json={"store_id": store_id or world["demo"]["store_id"]}
                                    ).json()["code"]
    return soak.enroll_till(tmp_path / f"till{n}" / "till.sqlite3", process.url, code, f"Caja {n}")


def query(world, sql: str, params: tuple = ()) -> list[tuple]:
    return soak.backend_query(world["database"], sql, params)


def assert_agree(world, store: TillStore, device_id: str) -> dict:
    """Every finished attempt of the till recorded once at the backend, with the backend's status."""
    result = soak.compare(store, world["database"], device_id)
    assert not (result["missing_at_backend"] or result["unknown_to_till"] or result["abandoned_at_backend"]
                or result["jti_accepted_twice"]), result
    assert result["outbox"] == result["pending"] == result["parked"] == 0, result
    assert result["till_attempts"] == result["backend_attempts"], result
    backend = dict(query(world, "SELECT key, status FROM attempts WHERE device_id = ?", (device_id,)))
    differ = [(a["key"], a["status"], backend[a["key"]]) for a in store.attempts()
              if a["state"] == "done" and a["status"] != backend[a["key"]]]
    assert differ == [], differ[:5]  # a till's offline yes the backend refused is refused there too
    return result


def assert_one_winner_and_named_losers(world, stores: list[TillStore], devices: list[str], jtis: int) -> int:
    """One accepted attempt per token id among these devices' at the backend; every conflict there and at
    the tills names it."""
    among = f"device_id IN ({', '.join('?' * len(devices))})"
    accepted = query(world, f"SELECT id, jti, key, device_id FROM attempts WHERE status = 'accepted' AND "
                     f"kind = 'personal' AND {among}", tuple(devices))
    winners = {jti: (id_, key, device_id) for id_, jti, key, device_id in accepted}
    assert len(accepted) == len(winners) == jtis  # one each
    assert query(world, "SELECT max(n) FROM (SELECT count(*) AS n FROM attempts WHERE status = 'accepted' "
                 "AND jti IS NOT NULL GROUP BY jti) AS counted")[0][0] == 1  # and none twice anywhere
    for jti, conflict_with in query(world, f"SELECT jti, conflict_with FROM attempts WHERE status = 'conflict' "
                                    f"AND {among}", tuple(devices)):
        assert conflict_with == winners[jti][0]
    names = dict(query(world, "SELECT id, name FROM devices"))
    winner_till = {jti: names[device_id] for jti, (_, _, device_id) in winners.items()}
    conflicts = 0
    for store in stores:
        for attempt in store.attempts():
            if not attempt["accepted"] or attempt["kind"] != "personal":
                continue
            if attempt["key"] == winners[attempt["jti"]][1]:
                assert attempt["status"] == "accepted"
            else:  # a loser: kept, marked, the winner named
                assert attempt["status"] == "conflict", attempt
                assert attempt["conflict"]["jti"] == attempt["jti"]
                assert attempt["conflict"]["till"] == winner_till[attempt["jti"]]
                conflicts += 1
        assert store.sync_figures()["conflicts"] == len(store.conflicts())
    return conflicts


def test_five_tills_over_three_processes_online_and_offline_then_all_sync(world, tmp_path):
    codes = world["codes"]["five_tills"]
    processes = world["processes"]
    tills = [(*till(world, tmp_path, n, processes[n % 3], world["race_store"]), processes[n % 3]) for n in range(5)]
    dead = f"http://127.0.0.1:{soak.free_port()}"  # nothing listens there
    errors: list[BaseException] = []
    half_done = threading.Event()
    start = threading.Barrier(len(tills))

    def run(n: int, path: Path, token: str, process: soak.BackendProcess) -> None:
        try:
            rng = random.Random(n)
            inputs = codes + [world["printed"]] * PRINTED_PER_TILL
            rng.shuffle(inputs)
            with TillStore(path) as store, BackendClient(process.url, token, timeout=5) as online, \
                    BackendClient(dead, token, timeout=2) as unreachable:
                start.wait(30)
                for i, text in enumerate(inputs):
                    way = rng.random()
                    client = online if way < 0.5 else unreachable if way < 0.7 else None
                    method = Method.PRINTED if text == world["printed"] else Method.CAMERA
                    redeem(store, text, method=method, client=client)
                    if n == 1 and i == len(inputs) // 2:
                        half_done.set()
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
            half_done.set()

    threads = [threading.Thread(target=run, args=(n, path, token, process))
               for n, (path, token, _, process) in enumerate(tills)]
    for thread in threads:
        thread.start()
    assert half_done.wait(60)
    processes[1].kill()  # tills 1 and 4 are offline from here, mid-request perhaps
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    processes[1].start()

    stores = [TillStore(path) for path, _, _, _ in tills]
    try:
        for store, (_, token, _, process) in zip(stores, tills):
            with BackendClient(process.url, token, timeout=10) as client:
                soak.settle(store, client)
        for store, (_, _, device_id, _) in zip(stores, tills):
            assert_agree(world, store, device_id)
        devices = [device_id for _, _, device_id, _ in tills]
        assert assert_one_winner_and_named_losers(world, stores, devices, len(codes)) > 0  # offline tills raced
        told_over = {a["key"] for store in stores for a in store.attempts() if a["over_limit"] is not None}
    finally:
        for store in stores:
            store.close()
    # The printed code's limits as the backend judged them (docs/sync.md): never past 200 a store a day
    # online; offline uses past it recorded as given, and each till told so (over_limit).
    timezone = ZoneInfo(query(world, "SELECT timezone FROM stores WHERE id = ?", (world["race_store"],))[0][0])
    uses: Counter = Counter()
    within: Counter = Counter()
    for key, at, status, decided in query(world, "SELECT key, at, status, decided FROM attempts WHERE kind = "
                                          "'printed' AND store_id = ?", (world["race_store"],)):
        day = datetime.fromtimestamp(at, timezone).date()
        uses[day] += 1
        if status == "accepted" and key not in told_over:
            within[day] += 1
        if key in told_over:
            assert status == "accepted" and decided == "offline"
    assert sum(uses.values()) == 5 * PRINTED_PER_TILL
    assert all(within[day] == 200 for day in uses if uses[day] >= 200), (uses, within, len(told_over))
    assert all(within[day] <= 200 for day in uses) and told_over  # offline tills did go past it together


def test_backend_process_killed_mid_batch_then_restarted(world, tmp_path):
    processes = world["processes"]
    path, token, device_id = till(world, tmp_path, 1, processes[0])
    rival_path, rival_token, rival_id = till(world, tmp_path, 2, processes[1])
    codes = world["codes"]["killed"]
    with TillStore(rival_path) as rival, BackendClient(processes[1].url, rival_token, timeout=5) as client:
        for code in codes[::2]:  # the rival wins these online, through another process
            assert redeem(rival, code, method=Method.CAMERA, client=client).verdict.accepted
    rng = random.Random(5)
    backend = processes[0]

    def held() -> set[str]:
        return {key for (key,) in query(world, "SELECT key FROM attempts WHERE device_id = ?", (device_id,))}

    def kill_after(at_least: int, delay_s: float) -> None:
        """kill -9 once the backend holds `at_least` of the till's entries, `delay_s` later: in a batch."""
        deadline = time.monotonic() + 60
        while len(held()) < at_least and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(delay_s)
        backend.kill()

    with TillStore(path) as store:
        for n in range(QUEUED):
            text = codes[n] if n < len(codes) else world["printed"] if n % 5 else f"garbage {n}"
            redeem(store, text, method=Method.CAMERA if n < len(codes) else Method.PRINTED if n % 5 else Method.TYPED)
        queued = [entry["key"] for entry in store.outbox_batch(QUEUED)]
        assert len(queued) == QUEUED
        with BackendClient(backend.url, token, timeout=10) as client:
            for round_ in range(3):
                # In the first batch, then each time in the batch after one more was answered.
                killer = threading.Thread(target=kill_after, args=(len(held()) + 500 * (round_ > 0),
                                                                   rng.uniform(0.02, 0.2)))
                killer.start()
                summary = sync_once(store, client)
                killer.join()
                assert summary.error is not None and store.outbox_size() > 0  # the kill cut the round short
                # Nothing half-written: the backend holds whole batches, the first ones queued, and an
                # event for each accepted redemption among them.
                now_held = held()
                assert now_held == set(queued[:len(now_held)]) and len(now_held) % 500 == 0, len(now_held)
                (events, accepted), = query(  # one statement: one snapshot
                    world, "SELECT (SELECT count(*) FROM events WHERE type = 'redemption' AND origin_device = ?), "
                    "(SELECT count(*) FROM attempts WHERE device_id = ? AND status = 'accepted')", (device_id,) * 2)
                assert events == accepted
                backend.start()
            soak.settle(store, client)
        result = assert_agree(world, store, device_id)
        assert result["backend_attempts"] == QUEUED
        assert assert_one_winner_and_named_losers(world, [store], [device_id, rival_id], len(codes)) == len(
            codes[::2])
    with TillStore(rival_path) as rival:
        assert_agree(world, rival, rival_id)


def race(processes: list[soak.BackendProcess], devices: list[dict], text: str, method: str) -> list[tuple[int, dict]]:
    """Each device POSTs `text` to its process (device n to process n % 3), all released at once."""
    barrier = threading.Barrier(len(devices))
    answers: list[tuple[int, dict]] = []
    lock = threading.Lock()

    def one(n: int) -> None:
        headers = {"Authorization": f"Bearer {devices[n]['device_token']}", "Idempotency-Key": uuid.uuid4().hex}
        with httpx.Client(base_url=processes[n % 3].url + "/api/v1", timeout=30) as http:
            http.get("/health")  # connected before the start
            barrier.wait(30)
            response = http.post("/redemptions", headers=headers,
                                 json={"input": text, "method": method, "staff_id": None, "at": time.time()})
        with lock:
            answers.append((response.status_code, response.json()))

    threads = [threading.Thread(target=one, args=(n,)) for n in range(len(devices))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return answers


def test_fifty_devices_race_one_code_through_three_processes(world):
    processes = world["processes"]
    token = next(code for code in world["codes"]["fifty"] if code.count(".") == 2)  # a signed token
    # And a printed code allowed five uses in all, raced the same way.
    admin = world["admin_http"]
    voucher = admin.post("/vouchers", json={
        "retailer_id": world["demo"]["retailer_id"], "kind": "printed", "total_limit": 5,
        "texts": {"es": {"title": "Cinco medialunas", "terms": "Las cinco primeras."}},
        "discount": {"kind": "percent", "value": 10, "currency": "PYG"}}).json()
    assert admin.post(f"/vouchers/{voucher['id']}/publish").status_code == 200
    printed = admin.post("/printed-codes", json={"voucher_id": voucher["id"], "code": "CINCO5"}).json()["code"]
    with ThreadPoolExecutor(6) as pool:  # enrolled at all three processes at once
        devices = list(pool.map(lambda n: device(world, f"Caja carrera {n}", processes[n % 3]), range(50)))
    ids = tuple(d["device_id"] for d in devices)
    among = f"device_id IN ({', '.join('?' * len(ids))})"

    answers = race(processes, devices, token, Method.CAMERA)
    statuses = Counter(status for status, _ in answers)
    assert statuses == {201: 1, 409: 49}, (statuses, [body for status, body in answers if status >= 500][:3])
    assert all(body["error"]["code"] == "already_redeemed" for status, body in answers if status == 409), answers[:3]
    rows = query(world, f"SELECT status, count(*) FROM attempts WHERE kind = 'personal' AND {among} "
                 "GROUP BY status", ids)
    assert dict(rows) == {"accepted": 1, "refused": 49}

    answers = race(processes, devices, printed, Method.PRINTED)
    statuses = Counter(status for status, _ in answers)
    assert statuses[201] == 5 and len(answers) == 50 and max(statuses) < 500, (
        statuses, [body for status, body in answers if status >= 500][:3])
    assert all(body["error"]["code"] == "limit_reached" for status, body in answers if status != 201), answers[:3]
    rows = query(world, f"SELECT status, count(*) FROM attempts WHERE voucher_id = ? AND {among} GROUP BY status",
                 (voucher["id"], *ids))
    assert dict(rows) == {"accepted": 5, "refused": 45}


def test_feed_followed_through_the_api_misses_no_event_committed_late(world):
    processes = world["processes"]
    codes = world["codes"]["feed"]
    follower = device(world, "Caja seguidora", processes[2])
    redeemers = [device(world, f"Caja feed {n}", processes[n]) for n in range(3)]
    retailer = world["demo"]["retailer_id"]
    seen: list[int] = []
    cursors: list[int] = []
    stop = threading.Event()
    failures: list[BaseException] = []

    with BackendClient(processes[2].url, follower["device_token"], timeout=30) as feed:
        cursor = 0
        while True:  # up to now: the demo data's events
            page = feed.feed(cursor)
            cursor = page["cursor"]
            if not page["more"]:
                break
        first_cursor = cursor

        def follow() -> None:
            nonlocal cursor
            try:
                while True:
                    done = stop.is_set()  # read before the page: one more page after the last commit
                    page = feed.feed(cursor)
                    assert all(e["seq"] > cursor for e in page["events"]) and page["cursor"] >= cursor
                    seen.extend(e["seq"] for e in page["events"])
                    cursor = page["cursor"]
                    cursors.append(cursor)
                    if done and not page["more"]:
                        return
                    time.sleep(0.01)
            except BaseException as exc:  # reported by the main thread
                failures.append(exc)

        def redeem_online(n: int, code: str) -> None:
            try:
                with BackendClient(processes[n % 3].url, redeemers[n % 3]["device_token"], timeout=30) as client:
                    status, _ = client.redeem(uuid.uuid4().hex, input=code, method="camera", staff_id=None,
                                              at=time.time())
                    assert status == 201
            except BaseException as exc:
                failures.append(exc)

        follower_thread = threading.Thread(target=follow, daemon=True)  # a failed test leaves it behind
        follower_thread.start()
        for n, code in enumerate(codes[:3]):
            redeem_online(n, code)  # committed while the till follows
        held = psycopg.connect(world["database"])
        try:
            # A voucher change whose transaction took its number and stays open.
            held_seq = held.execute(
                "INSERT INTO events (retailer_id, type, origin_device, data, at, store_id) SELECT retailer_id, "
                "type, NULL, data, %s, store_id FROM events WHERE retailer_id = %s AND type = 'voucher' "
                "ORDER BY seq LIMIT 1 RETURNING seq", (time.time(), retailer)).fetchone()[0]
            writers = [threading.Thread(target=redeem_online, args=(n, code), daemon=True)
                       for n, code in enumerate(codes[3:])]
            polled_before = len(cursors)
            for writer in writers:
                writer.start()
            time.sleep(1.5)  # the other processes commit, or wait for the held one, while the till polls
            assert len(cursors) > polled_before + 5  # the till did poll meanwhile
            assert max(cursors) < held_seq  # and its cursor never passed the event not yet committed
            held.commit()
        finally:
            held.close()
        for writer in writers:
            writer.join(60)
        stop.set()
        follower_thread.join(60)
    assert not failures, failures
    expected = [seq for (seq,) in query(world, "SELECT seq FROM events WHERE retailer_id = ? AND seq > ? ORDER BY seq",
                                        (retailer, first_cursor))]
    assert len(expected) == len(codes) + 1 and held_seq in expected
    assert seen == expected  # every event, the late one too, each once, in order
