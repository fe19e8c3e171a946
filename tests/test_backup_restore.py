"""`backup` and `restore` (issue 15, item 7): a consistent copy while serving, checked whole before a restore,
another backend's or a damaged archive refused with nothing changed, a full disk leaving no file, and a new
epoch that the feed and the catalog tell tills of."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import httpx
import pytest

from server_stub.__main__ import main
from server_stub.backend import Backend
from server_stub.datadir import DB_NAME, DataDir

from api_fixtures import Api, new_key

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from sync_kill_soak import BackendProcess  # noqa: E402


def cli(capsys, *argv: str) -> tuple[int, dict | None, str]:
    # In this process a backup keeps the caller's priority: a niced pytest would stay niced.
    code = main([*argv, "--nice", "0"] if argv[0] == "backup" else list(argv))
    out, err = capsys.readouterr()
    return code, json.loads(out) if out.strip() else None, err


def members(archive: Path) -> dict[str, bytes]:
    with tarfile.open(archive) as tar:
        return {info.name: tar.extractfile(info).read() for info in tar}


def rewrite(archive: Path, target: Path, change) -> None:
    """A copy of `archive` with its members passed through `change(name, data) -> data`."""
    with tarfile.open(target, "w:") as out:
        for name, data in members(archive).items():
            data = change(name, data)
            info = tarfile.TarInfo(name)
            info.size = len(data)
            out.addfile(info, io.BytesIO(data))


def folder_state(path: Path) -> dict[str, str]:
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file() and not p.name.endswith(("-shm", "-wal"))}


def restore_args(tmp_path: Path, api: Api, request, name: str) -> list[str]:
    """A restore into a new folder, and over PostgreSQL into a new, empty database."""
    args = ["restore", "--data", str(tmp_path / name)]
    if api.database is not None:
        cluster = request.getfixturevalue("pg_cluster")
        args += ["--database", cluster.dsn(cluster.create_database())]
    return args


def test_a_backup_restores_as_the_same_backend_with_a_new_epoch_the_feed_tells(api, tmp_path, capsys, request):
    till = api.enroll()
    for n in range(3):
        api.ok(api.redeem(till, api.claim(customer_id=f"c{n}")["token"]), 201)
    before = api.ok(api.client.get("/feed", headers=till.auth))
    assert before["epoch"] and before["epoch_since"] == 0 and before["head"] >= before["cursor"]
    archive = tmp_path / "pika.backup"
    code, made, err = cli(capsys, "backup", "--data", str(api.path), "--out", str(archive))
    assert code == 0, err
    assert os.stat(archive).st_mode & 0o777 == 0o600
    assert made["attempts"] == 3 and made["epoch"] == before["epoch"]
    api.ok(api.redeem(till, api.claim(customer_id="late")["token"]), 201)  # after the backup: not in it

    inside = members(archive)
    manifest = json.loads(inside.pop("manifest.json"))
    assert manifest["engine"] == ("sqlite" if api.database is None else "postgresql")
    assert manifest["backend_id"] == made["backend_id"] and manifest["feed_head"] == made["feed_head"]
    assert {name: {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()} for name, data in inside.items()} \
        == manifest["members"]
    assert any(name.startswith("keys/") for name in inside)
    assert not list(tmp_path.glob(".pika.backup*")), "no part of the backup is left beside it"

    code, restored, err = cli(capsys, *restore_args(tmp_path, api, request, "again"), "--from", str(archive))
    assert code == 0, err
    assert restored["backend_id"] == made["backend_id"] and restored["epoch"] != made["epoch"]
    assert restored["epoch_since"] == manifest["taken_at"] and restored["replaced"] is None
    again = Api(tmp_path / "again", api.admin_token, api.demo)
    try:
        assert again.rows("SELECT count(*) FROM attempts") == [(3,)]
        feed = again.ok(again.client.get("/feed", headers=till.auth))  # the till's token is in the copy
        catalog = again.ok(again.client.get("/catalog", headers=till.auth))
        assert feed["epoch"] == catalog["epoch"] == restored["epoch"]
        assert feed["epoch_since"] == catalog["epoch_since"] == manifest["taken_at"]
        assert feed["head"] == made["feed_head"] < before["head"] + 1  # the log as it was at the backup
        audit = again.rows("SELECT action, target, detail FROM audit_log WHERE action = 'backend.restore'")
        assert [(a, t) for a, t, _ in audit] == [("backend.restore", made["backend_id"])]
        assert json.loads(audit[0][2])["epoch"] == restored["epoch"]
    finally:
        again.close()


def test_a_restore_over_the_same_folder_keeps_what_it_replaced(tmp_path, capsys):
    data = tmp_path / "backend"
    DataDir(data).init()
    archive = tmp_path / "b.tar"
    assert cli(capsys, "backup", "--data", str(data), "--out", str(archive))[0] == 0
    backend = Backend(data)  # a serve holding the database open
    try:
        code, _, err = cli(capsys, "restore", "--data", str(data), "--from", str(archive))
        assert code == 1 and "(backend_running)" in err
    finally:
        backend.close()
    old = folder_state(data)
    code, restored, err = cli(capsys, "restore", "--data", str(data), "--from", str(archive))
    assert code == 0, err
    aside = Path(restored["replaced"])
    assert aside.parent == data and folder_state(aside)[DB_NAME] == old[DB_NAME]
    assert (aside / "keys").is_dir() and os.stat(data / "keys").st_mode & 0o777 == 0o700


def test_a_restore_says_which_withdrawals_since_the_backup_it_takes_back(tmp_path, capsys):
    """A till revoked after the backup is active again once the backup is restored: the operator is told."""
    data = tmp_path / "backend"
    DataDir(data).init()
    backend = Backend(data)
    try:
        store = backend.create_store(backend.create_retailer("Kiosco")["id"], "Centro")
        till = backend.enroll(backend.create_enrollment_code(store["id"])["code"], "Caja 1")
    finally:
        backend.close()
    archive = tmp_path / "b.tar"
    assert cli(capsys, "backup", "--data", str(data), "--out", str(archive))[0] == 0
    backend = Backend(data)
    try:
        backend.revoke_device(till["device_id"])
        backend.create_retailer("after the backup")  # taken back too, but nothing to make again for safety
    finally:
        backend.close()
    code, restored, err = cli(capsys, "restore", "--data", str(data), "--from", str(archive))
    assert code == 0, err
    back = restored["taken_back"]
    assert back["count"] == 2
    assert [(w["action"], w["target"]) for w in back["withdrawals"]] == [("device.revoke", till["device_id"])]
    assert err.startswith("warning: the restore takes back 1 withdrawal(s)")
    backend = Backend(data)
    try:  # as the warning says: the till is active again until the operator revokes it once more
        assert backend.get_device(till["device_id"])["status"] != "revoked"
    finally:
        backend.close()


def test_damaged_foreign_and_too_new_archives_are_refused_and_nothing_changes(tmp_path, capsys):
    mine, other = tmp_path / "mine", tmp_path / "other"
    DataDir(mine).init()
    DataDir(other).init()
    archive, foreign = tmp_path / "mine.tar", tmp_path / "other.tar"
    assert cli(capsys, "backup", "--data", str(mine), "--out", str(archive))[0] == 0
    assert cli(capsys, "backup", "--data", str(other), "--out", str(foreign))[0] == 0
    code, _, err = cli(capsys, "backup", "--data", str(mine), "--out", str(archive))
    assert code == 1 and "(backup_exists)" in err

    whole = archive.read_bytes()
    (tmp_path / "truncated.tar").write_bytes(whole[: len(whole) // 2])
    (tmp_path / "noise.tar").write_bytes(os.urandom(5000))

    def flip(name, data):
        return data[:5000] + bytes([data[5000] ^ 1]) + data[5001:] if name == DB_NAME else data
    rewrite(archive, tmp_path / "altered.tar", flip)

    def newer(name, data):
        return json.dumps(dict(json.loads(data), schema_version=99)).encode() if name == "manifest.json" else data
    rewrite(archive, tmp_path / "newer.tar", newer)

    with tarfile.open(tmp_path / "stranger.tar", "w:") as out:
        for name, data in [("../evil.pem", b"x"), *members(archive).items()]:  # a path out of the folder
            info = tarfile.TarInfo(name)
            info.size = len(data)
            out.addfile(info, io.BytesIO(data))
    with tarfile.open(tmp_path / "nomanifest.tar", "w:") as out:
        for name, data in members(archive).items():
            if name != "manifest.json":
                info = tarfile.TarInfo(name)
                info.size = len(data)
                out.addfile(info, io.BytesIO(data))

    before = folder_state(mine)
    for name, code_word in (("truncated.tar", "backup_unreadable"), ("noise.tar", "backup_unreadable"),
                            ("altered.tar", "backup_altered"), ("newer.tar", "backup_too_new"),
                            ("stranger.tar", "backup_format"), ("nomanifest.tar", "backup_unreadable"),
                            ("other.tar", "other_backend")):
        code, _, err = cli(capsys, "restore", "--data", str(mine), "--from", str(tmp_path / name))
        assert code == 1 and f"({code_word})" in err, (name, err)
        assert folder_state(mine) == before, name
        assert not [p for p in mine.iterdir() if p.name.startswith((".restore-", "replaced-"))], name
    # Told so, the other backend replaces this one (which is kept aside).
    code, restored, err = cli(capsys, "restore", "--data", str(mine), "--from", str(foreign), "--force")
    assert code == 0, err
    assert restored["backend_id"] == json.loads(members(foreign)["manifest.json"])["backend_id"]
    assert folder_state(Path(restored["replaced"]))[DB_NAME] == before[DB_NAME]


@pytest.mark.parametrize("size", ["160k", "420k"])  # the database's copy does not fit / the archive does not
def test_a_backup_onto_a_full_disk_fails_cleanly_and_leaves_no_file(tmp_path, capsys, size):
    if os.getuid() != 0:
        pytest.skip("a tiny tmpfs needs root to mount; nothing else makes a disk full without filling this one")
    data = tmp_path / "backend"
    DataDir(data).init()
    small = tmp_path / "small"
    small.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(small)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"tmpfs cannot be mounted here: {mounted.stderr.strip()}")
    try:
        before = folder_state(data)
        code, _, err = cli(capsys, "backup", "--data", str(data), "--out", str(small / "b.tar"))
        assert code == 1 and "(storage_full)" in err, err
        assert list(small.iterdir()) == []
        assert folder_state(data) == before
        assert Backend(data).close() is None  # the served backend is as it was
    finally:
        subprocess.run(["umount", str(small)], check=True)


def test_a_backup_while_serve_takes_redemptions_holds_every_one_answered_before_it(
        backend_database, tmp_path, capsys, request):
    data = tmp_path / "backend"
    DataDir(data).init(backend_database)
    from server_stub.demo import add_demo_data
    backend = Backend(data)
    try:
        demo = add_demo_data(backend)
    finally:
        backend.close()
    DataDir(data).set_config(velocity_limit=0, limits={"enabled": False})  # one till, as fast as it can
    server = BackendProcess(data).start()
    answered: list[tuple[float, str]] = []
    stop = threading.Event()
    try:
        with httpx.Client(base_url=server.url + "/api/v1", timeout=10) as http:
            code = demo["enrollment_codes"][0]
            token = http.post("/devices/enroll", json={"code": code, "name": "Caja"}).json()["device_token"]

            def redeem_until_stopped():
                with httpx.Client(base_url=server.url + "/api/v1", timeout=10,
                                  headers={"Authorization": f"Bearer {token}"}) as till:
                    while not stop.is_set():
                        key = new_key()
                        answer = till.post("/redemptions", headers={"Idempotency-Key": key},
                                           json={"input": f"NOPE{len(answered)}", "method": "typed"})
                        assert answer.status_code in (201, 422), answer.text  # accepted, or refused: both recorded
                        answered.append((time.time(), key))
            worker = threading.Thread(target=redeem_until_stopped)
            worker.start()
            time.sleep(1.0)
            began = time.time()
            archive = tmp_path / "live.tar"
            code, made, err = cli(capsys, "backup", "--data", str(data), "--out", str(archive))
            ended = time.time()
            time.sleep(0.3)
            stop.set()
            worker.join(10)
    finally:
        stop.set()
        server.stop()
    assert code == 0, err
    before = {key for at, key in answered if at < began}
    after = {key for at, key in answered if at > ended}
    assert len(before) > 20 and after, "redemptions went on during the backup"
    args = ["restore", "--data", str(tmp_path / "copy")]
    if backend_database is not None:
        cluster = request.getfixturevalue("pg_cluster")
        args += ["--database", cluster.dsn(cluster.create_database())]
    code, _, err = cli(capsys, *args, "--from", str(archive))
    assert code == 0, err
    copy = Backend(tmp_path / "copy")
    try:
        keys = {row[0] for row in copy.storage.read().execute("SELECT key FROM attempts").fetchall()}
    finally:
        copy.close()
    assert before <= keys, f"{len(before - keys)} answered before the backup are missing"
    assert not after & keys and len(keys) == made["attempts"]
