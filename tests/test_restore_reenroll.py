"""Tills a restored backend forgot, enrolled again with `enroll --again`: nothing lost, nothing counted twice.

A backend is backed up; then one till is enrolled (the backup does not know it), one is rolled (the backup
knows its old token only), and they redeem online and offline, some synced, some still queued. The backend
is restored: both tills' tokens answer `401 unauthorized`. The operator gives the new till a fresh code of
its store and rolls the other on the restored backend; `python -m pos_app enroll --again` takes each code,
and the backend then holds every one of their redemptions exactly once, under the device the till now is.
A code of another store is refused with nothing written, and a till whose token still works is told so.
Real `serve` on a loopback port over each engine, real till stores, the till's CLI in-process.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import httpx
import pytest

from pos_app.cli.commands import main as till
from pos_app.core.domain import Method
from pos_app.store import TillStore
from pos_app.sync.client import client_for
from pos_app.sync.redeem import redeem
from pos_app.sync.round import sync_once
from server_stub.__main__ import main as backend_cli
from server_stub.datadir import DB_NAME

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
import sync_kill_soak as soak  # noqa: E402

pytestmark = pytest.mark.allow_log_warnings(r"^the backend was restored", r"^identity adopted",
                                            r"the backend answered device_rolled", r"enrolled again as the same")


def redeem_at(path: Path, codes: list[str], printed: str, *, online: bool, sync: bool) -> None:
    with TillStore(path) as store, client_for(store, timeout=5) as client:
        for code in codes:
            redeem(store, code, method=Method.CAMERA, client=client if online else None)
        redeem(store, printed, method=Method.PRINTED, client=client if online else None)
        redeem(store, "NOT-A-CODE", method=Method.TYPED, client=client if online else None)
        if sync:
            soak.settle(store, client)


def till_state(path: Path) -> dict:
    with TillStore(path) as store:
        return {table: sorted(map(tuple, store.conn.execute(f"SELECT * FROM {table}")))
                for table in ("settings", "outbox", "kept_entries", "attempts", "keys")}


@pytest.fixture(scope="module")
def restored(module_backend_database, tmp_path_factory, request):
    """The world after the restore: tills `early` (untouched), `rolled` (rolled after the backup), `new` and
    `stray` (enrolled after it), the backend serving the restored copy."""
    root = tmp_path_factory.mktemp("reenroll")
    world = soak.make_world(root, claims=24, tills=2, database=module_backend_database)
    backend, codes, printed = world["backend"], world["codes"], world["printed"]
    http = httpx.Client(base_url=backend.url + "/api/v1", headers={"Authorization": f"Bearer {world['admin']}"})
    (early, _, _), (rolled, _, rolled_id) = world["tills"]
    restored_db, cluster = None, None
    try:
        redeem_at(early, codes[0:2], printed, online=True, sync=False)
        redeem_at(rolled, codes[2:4], printed, online=False, sync=True)
        archive = root / "before.backup"
        assert backend_cli(["backup", "--data", str(world["data"]), "--out", str(archive), "--nice", "0"]) == 0

        def fresh_code() -> str:
            return http.post("/enrollment-codes", json={"store_id": world["demo"]["store_id"]}).json()["code"]

        new = soak.enroll_till(root / "new" / "till.sqlite3", backend.url, fresh_code(), "Caja nueva")
        stray = soak.enroll_till(root / "stray" / "till.sqlite3", backend.url, fresh_code(), "Caja suelta")
        roll = http.post(f"/devices/{rolled_id}/roll").json()["code"]
        with TillStore(rolled) as store, client_for(store, timeout=5) as client:
            sync_once(store, client)  # told it was rolled
        assert till(["enroll", "--data", str(rolled.parent), "--server", backend.url, "--code", roll]) == 0
        for path, batch in ((rolled, codes[4:9]), (new[0], codes[9:14]), (stray[0], codes[14:16])):
            redeem_at(path, batch[0:2], printed, online=True, sync=False)
            redeem_at(path, batch[2:4], printed, online=False, sync=True)
            redeem_at(path, batch[4:], printed, online=False, sync=False)  # still queued at the restore
        backend.stop()
        args = ["restore", "--data", str(world["data"]), "--from", str(archive)]
        if module_backend_database is not None:
            cluster = request.getfixturevalue("pg_cluster")
            restored_db = cluster.dsn(cluster.create_database())
            args += ["--database", restored_db]
        assert backend_cli(args) == 0
        backend.database = restored_db
        backend.start()
        yield {"world": world, "http": http, "url": backend.url, "early": early, "rolled": rolled,
               "rolled_id": rolled_id, "new": new, "stray": stray, "fresh_code": fresh_code,
               "where": restored_db or world["data"] / DB_NAME}
    finally:
        http.close()
        backend.stop()


def again(path: Path, url: str, code: str) -> int:
    return till(["enroll", "--data", str(path.parent), "--server", url, "--code", code, "--again"])


def assert_all_there_once(path: Path, where, device_id: str) -> None:
    with TillStore(path) as store:
        assert store.device_id == device_id
        result = soak.compare(store, where, device_id)
    assert not (result["missing_at_backend"] or result["unknown_to_till"] or result["acceptance_differs"]
                or result["jti_accepted_twice"]), result
    assert result["outbox"] == 0 and result["till_attempts"] == result["backend_attempts"] > 0, result
    keys = soak.backend_query(where, "SELECT count(*), count(DISTINCT key) FROM attempts")[0]
    assert keys[0] == keys[1]


def test_a_till_enrolled_after_the_backup_takes_a_fresh_code_of_its_store_and_sends_everything_again(
        restored, capsys, caplog):
    path, _, old_id = restored["new"]
    with TillStore(path) as store, client_for(store, timeout=5) as client:
        assert "401 unauthorized" in (sync_once(store, client).error or "")
        queued, kept = store.outbox_size(), store.kept_count()
    assert queued == 3 and kept > 0
    capsys.readouterr()
    assert till(["enroll", "--data", str(path.parent), "--server", restored["url"],
                 "--code", restored["fresh_code"]()]) == 2  # without --again: enrolled already
    assert "--again" in capsys.readouterr().err
    assert again(path, restored["url"], restored["fresh_code"]()) == 0
    answer = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    new_id = answer["device_id"]
    assert new_id != old_id and answer["previous_device_id"] == old_id and answer["sync"]["outbox"] == 0
    assert answer["sync"]["error"] is None
    assert any(r.getMessage().startswith("identity adopted") and old_id in r.getMessage()
               and new_id in r.getMessage() for r in caplog.records)
    assert till(["sync", "--data", str(path.parent)]) == 0
    assert_all_there_once(path, restored["where"], new_id)
    assert not soak.backend_query(restored["where"], "SELECT key FROM attempts WHERE device_id = ?", (old_id,))


def test_a_till_rolled_after_the_backup_takes_a_roll_code_of_the_restored_backend_as_the_same_device(
        restored, capsys):
    path, device_id = restored["rolled"], restored["rolled_id"]
    with TillStore(path) as store, client_for(store, timeout=5) as client:
        assert "401 unauthorized" in (sync_once(store, client).error or "")
    code = restored["http"].post(f"/devices/{device_id}/roll").json()["code"]
    capsys.readouterr()
    assert again(path, restored["url"], code) == 0
    answer = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert answer["device_id"] == device_id == answer["previous_device_id"] and answer["sync"]["outbox"] == 0
    assert till(["sync", "--data", str(path.parent)]) == 0
    assert_all_there_once(path, restored["where"], device_id)


def test_a_code_of_another_store_is_refused_and_nothing_is_written_to_the_till(restored, capsys):
    path, _, device_id = restored["stray"]
    http, retailer = restored["http"], restored["world"]["demo"]["retailer_id"]
    other = http.post("/stores", json={"retailer_id": retailer, "name": "Otra tienda"}).json()["id"]
    code = http.post("/enrollment-codes", json={"store_id": other}).json()["code"]
    before = till_state(path)
    capsys.readouterr()
    assert again(path, restored["url"], code) == 1
    err = capsys.readouterr().err
    assert "not this till's store" in err and "unused device" in err and "nothing was written" in err
    assert till_state(path) == before
    with TillStore(path) as store:
        assert store.device_id == device_id and store.outbox_size() == 2


def test_again_is_refused_while_the_backend_still_takes_the_tills_token(restored, capsys):
    path = restored["early"]
    before = till_state(path)
    capsys.readouterr()
    assert again(path, restored["url"], "ABCD-EFGH-J") == 2
    assert "token still works: nothing to do" in capsys.readouterr().err
    assert till_state(path) == before
