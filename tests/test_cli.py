"""The headless commands as scripts use them: exit codes, JSON out, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, input=stdin, capture_output=True, timeout=60)


def test_usage_errors_exit_2(tmp_path):
    assert run("pos_app").returncode == 2
    assert run("pos_app", "redeem").returncode == 2  # argparse: --data missing
    not_enrolled = run("pos_app", "redeem", "--data", str(tmp_path / "till"), "--offline", "CAFE50")
    assert not_enrolled.returncode == 2
    assert b"not enrolled" in not_enrolled.stderr
    assert run("server_stub").returncode == 2


def test_enroll_against_nothing_fails_cleanly(tmp_path):
    proc = run("pos_app", "enroll", "--data", str(tmp_path / "till"), "--server", "http://127.0.0.1:9",
               "--code", "AAAA-AAAA-A")
    assert proc.returncode == 1
    assert b"cannot reach" in proc.stderr and b"Traceback" not in proc.stderr


def test_backend_init_twice_is_refused(tmp_path):
    first = run("server_stub", "init", "--data", str(tmp_path))
    assert first.returncode == 0
    assert set(json.loads(first.stdout)) == {"admin_token", "kid"}
    key_files = list((tmp_path / "keys").glob("*.pem"))
    assert len(key_files) == 1 and key_files[0].stat().st_mode & 0o777 == 0o600
    again = run("server_stub", "init", "--data", str(tmp_path))
    assert again.returncode == 1 and b"already holds a backend" in again.stderr
    assert list((tmp_path / "keys").glob("*.pem")) == key_files  # the key was not replaced


def test_serve_without_init_says_so(tmp_path):
    proc = run("server_stub", "serve", "--data", str(tmp_path / "nothing"), "--port", "1")
    assert proc.returncode == 1 and b"init" in proc.stderr


def test_redeem_refuses_hostile_input_offline(tmp_path):
    """An enrolled till (by hand, from a real enrollment answer) refuses garbage with exit 3."""
    from pos_app.store import TillStore
    from server_stub.backend import Backend
    from server_stub.datadir import DataDir
    from server_stub.demo import add_demo_data

    DataDir(tmp_path / "backend").init()
    backend = Backend(tmp_path / "backend")
    try:
        info = add_demo_data(backend)
        answer = backend.enroll(info["enrollment_codes"][0], "Caja 1")
        device = backend.require_device(answer["device_token"])
        catalog = backend.catalog(device)
    finally:
        backend.close()
    (tmp_path / "till").mkdir()
    with TillStore(tmp_path / "till" / "till.sqlite3") as store:
        store.save_enrollment(answer, "http://127.0.0.1:9")
        store.apply_catalog(catalog)
    data = str(tmp_path / "till")
    for stdin in (b"\xff\xfe\x00garbage", b"A" * 100_000, "🎟️💸".encode()):
        proc = run("pos_app", "redeem", "--data", data, "--offline", "-", stdin=stdin)
        assert proc.returncode == 3, proc.stderr
        assert json.loads(proc.stdout)["reason"] == "malformed"
    printed = run("pos_app", "redeem", "--data", data, "--offline", "--printed", " cafe 50 ")
    assert printed.returncode == 0 and json.loads(printed.stdout)["kind"] == "printed"
    # Online with the backend unreachable: decided here all the same, and said so.
    online = run("pos_app", "redeem", "--data", data, "--printed", "CAFE50")
    result = json.loads(online.stdout)
    assert online.returncode == 0 and result["decided"] == "offline" and result["note"]
    sync = run("pos_app", "sync", "--data", data)
    assert sync.returncode == 1 and json.loads(sync.stdout)["outbox"] == 5


def test_a_damaged_store_is_said_plainly(tmp_path):
    till = tmp_path / "till"
    till.mkdir()
    (till / "till.sqlite3").write_bytes(b"this is not a database" * 100)
    proc = run("pos_app", "redeem", "--data", str(till), "--offline", "CAFE50")
    assert proc.returncode == 1
    assert b"cannot be used" in proc.stderr and b"Traceback" not in proc.stderr
    backend = tmp_path / "backend"
    assert run("server_stub", "init", "--data", str(backend)).returncode == 0
    (backend / "backend.sqlite3").write_bytes(b"garbage" * 1000)
    for name in ("backend.sqlite3-wal", "backend.sqlite3-shm"):
        (backend / name).unlink(missing_ok=True)
    proc = run("server_stub", "demo-data", "--data", str(backend))
    assert proc.returncode == 1
    assert b"cannot be used" in proc.stderr and b"Traceback" not in proc.stderr
