"""A backend restored from an older backup, end to end: real `serve`, real tills, nothing lost or counted twice.

Three tills redeem online and offline; a backup is taken; they redeem more
(online, offline and synced, offline and still queued); the backend is
stopped and the old copy restored; a till redeems at once, getting a seq the
others' cursors had already passed. Once the tills sync, the backend holds
every redemption exactly once, and each till knows every code the others used.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from pos_app.core.domain import Method
from pos_app.store import TillStore
from pos_app.sync.client import BackendClient
from pos_app.sync.redeem import redeem
from server_stub.__main__ import main
from server_stub.datadir import DB_NAME

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
import sync_kill_soak as soak  # noqa: E402

TILLS = 3
RESTORED = r"^the backend was restored"


def redeem_at(till, codes: list[str], printed: str, *, online: bool, sync: bool) -> None:
    path, token, _ = till["till"]
    with TillStore(path) as store, BackendClient(till["url"], token, timeout=5) as client:
        for code in codes:
            redeem(store, code, method=Method.CAMERA, client=client if online else None)
        redeem(store, printed, method=Method.PRINTED, client=client if online else None)
        redeem(store, "NOT-A-CODE", method=Method.TYPED, client=client if online else None)  # refusals count too
        if sync:
            soak.settle(store, client)


def sync_all(world, url: str) -> list:
    summaries = []
    for path, token, _ in world["tills"]:
        with TillStore(path) as store, BackendClient(url, token, timeout=5) as client:
            summaries.append(soak.settle(store, client))
    return summaries


@pytest.mark.allow_log_warnings(RESTORED)
def test_tills_resync_with_a_restored_backend_and_it_holds_every_redemption_once(
        backend_database, tmp_path, request, capsys):
    world = soak.make_world(tmp_path, claims=11 * TILLS, tills=TILLS, database=backend_database)
    backend = world["backend"]
    codes, printed = world["codes"], world["printed"]
    tills = [{"till": t, "url": backend.url} for t in world["tills"]]
    try:
        for n, till in enumerate(tills):  # before the backup: online and offline, all synced
            redeem_at(till, codes[n * 11: n * 11 + 2], printed, online=True, sync=False)
            redeem_at(till, codes[n * 11 + 2: n * 11 + 4], printed, online=False, sync=True)
        sync_all(world, backend.url)
        archive = tmp_path / "before.backup"
        assert main(["backup", "--data", str(world["data"]), "--out", str(archive), "--nice", "0"]) == 0
        for n, till in enumerate(tills):  # after it: lost by the restore unless the tills send them again
            redeem_at(till, codes[n * 11 + 4: n * 11 + 6], printed, online=True, sync=False)
            redeem_at(till, codes[n * 11 + 6: n * 11 + 8], printed, online=False, sync=True)
            redeem_at(till, codes[n * 11 + 8: n * 11 + 9], printed, online=False, sync=False)  # still queued
        cursors = []
        for path, _, _ in world["tills"][1:]:
            with TillStore(path) as store:
                cursors.append(store.feed_cursor)
        backend.stop()
        capsys.readouterr()
        args = ["restore", "--data", str(world["data"]), "--from", str(archive)]
        database = backend_database
        if backend_database is not None:
            cluster = request.getfixturevalue("pg_cluster")
            database = cluster.dsn(cluster.create_database())
            args += ["--database", database]
        assert main(args) == 0, capsys.readouterr().err
        restored_head = json.loads(capsys.readouterr().out)["feed_head"]
        backend.database = database
        backend.start()
        # A redemption at once, before the others sync: its event takes a seq their cursors passed already.
        redeem_at(tills[0], codes[9:11], printed, online=True, sync=False)
        first = sync_all(world, backend.url)
        second = sync_all(world, backend.url)
    finally:
        backend.stop()
    assert all(s.error is None for s in first + second)
    where = database or world["data"] / DB_NAME
    accepted = {jti for (jti,) in soak.backend_query(
        where, "SELECT jti FROM attempts WHERE status = 'accepted' AND jti IS NOT NULL")}
    printed_uses = soak.backend_query(where, "SELECT count(*) FROM attempts WHERE status = 'accepted' AND kind = "
                                      "'printed'")[0][0]
    assert printed_uses == 5 * TILLS + 1  # one in each of a till's five batches, and one after the restore
    assert len(accepted) == 9 * TILLS + 2
    # The restored log's next events took seqs the other tills' cursors had passed: read as new all the same.
    assert min(cursors) > restored_head + 3
    for path, _, device_id in world["tills"]:
        with TillStore(path) as store:
            result = soak.compare(store, where, device_id)
            assert not (result["missing_at_backend"] or result["unknown_to_till"] or result["acceptance_differs"]
                        or result["jti_accepted_twice"]), result
            assert result["outbox"] == 0 and result["till_attempts"] == result["backend_attempts"], result
            known = {jti for (jti,) in store.conn.execute("SELECT jti FROM used_tokens")}
            assert accepted <= known, f"{len(accepted - known)} codes used elsewhere unknown to {device_id}"
            counted = store.conn.execute("SELECT coalesce(sum(count), 0) FROM printed_uses").fetchone()[0]
            assert counted == printed_uses, "printed codes counted once each, own and the feed's"
    keys = soak.backend_query(where, "SELECT count(*), count(DISTINCT key) FROM attempts")[0]
    assert keys[0] == keys[1]


# --- the till's part, alone ---------------------------------------------------------------------------------


def _queue(store: TillStore, key: str, at: float) -> None:
    entry = {"key": key, "at": at, "accepted": True, "reason": None, "kind": "printed", "voucher_id": "v1",
             "jti": None, "code": "CAFE50", "method": "printed", "staff_id": None, "decided": "offline",
             "input": "CAFE50"}
    store.conn.execute("INSERT INTO outbox (key, payload, created_at) VALUES (?, ?, ?)",
                       (key, json.dumps(entry), at))


def test_the_epoch_fields_are_checked_and_an_older_backend_may_leave_them_out():
    from pos_app.core import wire

    assert wire.parse_epoch({}, "feed") == wire.Epoch(None, None, None)
    assert wire.parse_epoch({"epoch": "ab12", "epoch_since": 0, "head": 7}, "feed") == wire.Epoch("ab12", 0.0, 7)
    for bad in ({"epoch": 5}, {"epoch": ""}, {"epoch": "x" * 65}, {"epoch_since": float("nan")},
                {"epoch_since": -1}, {"head": -1}, {"head": True}, {"head": 2**60}):
        with pytest.raises(ValueError):
            wire.parse_epoch(bad, "feed")


@pytest.mark.allow_log_warnings(RESTORED)
def test_a_till_keeps_what_was_confirmed_and_sends_it_again_only_for_a_new_epoch_or_a_rewound_log(tmp_path):
    from pos_app.core.wire import Epoch

    t = 1_800_000_000.0
    with TillStore(tmp_path / "till.sqlite3") as store:
        _queue(store, "early-entry", t - 3600)
        _queue(store, "late-entry1", t + 60)
        store.outbox_confirm([{"key": "early-entry", "status": "recorded"}], now=t - 3600)
        store.outbox_confirm([{"key": "late-entry1", "status": "duplicate"}], now=t + 60)
        assert store.outbox_size() == 0 and store.kept_count() == 2
        assert store.notice_epoch(Epoch("e1", 0.0, 0)) is None  # the first epoch heard: nothing to compare
        assert store.notice_epoch(Epoch("e1", 0.0, 0)) is None and store.get("backend_epoch") == "e1"
        store.apply_feed([], 40)
        assert store.notice_epoch(Epoch("e2", t, 40), now=t + 120) == 1  # confirmed since the backup, less a margin
        assert [row[0] for row in store.conn.execute("SELECT key FROM outbox")] == ["late-entry1"]
        assert store.feed_cursor == 0 and store.get("backend_epoch") == "e2"
        assert store.notice_epoch(Epoch("e2", t, 0), now=t + 130) is None
        store.apply_feed([], 40)
        assert store.notice_epoch(Epoch("e2", t, 12), now=t + 140) == 0  # the log rewound, the epoch the same
        assert store.feed_cursor == 0
        # Kept for `retention_days`, then forgotten.
        store.set("retention_days", 1)
        store.outbox_confirm([{"key": "late-entry1", "status": "duplicate"}], now=t + 2 * 86_400)
        assert [row[0] for row in store.conn.execute("SELECT key FROM kept_entries")] == ["late-entry1"]
