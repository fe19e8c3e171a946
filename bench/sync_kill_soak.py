"""kill -9 of a till process at random points while it redeems and syncs.

A real backend process on a loopback port; one till's store file; a child
process (forked from this one, so a kill cycle costs milliseconds, not an
interpreter start) redeems personal and printed codes online and offline and
runs sync rounds until it is killed with SIGKILL after a random short delay.
After all kills, one clean sync, then the check: the backend holds exactly
the attempts the till recorded (same keys, same acceptance), none twice,
one accepted redemption per token id, nothing left pending or queued.

    python bench/sync_kill_soak.py --kills 1000      # prints a JSON line
    python bench/sync_kill_soak.py --database postgresql://…/empty_db   # the backend over PostgreSQL
tests/test_reliability.py runs it with 200 kills.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from pos_app.sync.client import BackendClient  # noqa: E402
from pos_app.core.domain import Method  # noqa: E402
from pos_app.sync.redeem import NotRecorded, redeem  # noqa: E402
from pos_app.store import TillStore  # noqa: E402
from pos_app.sync.round import sync_once  # noqa: E402
from server_stub.datadir import DB_NAME, DataDir  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli(*args: str) -> dict:
    done = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


class BackendProcess:
    """`python -m server_stub serve` on a loopback port; kill -9 and start again at will.
    With `database` (a PostgreSQL URL), over that database instead of the folder's SQLite."""

    def __init__(self, data: Path, port: int | None = None, database: str | None = None):
        self.data = data
        self.database = database
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 30) -> "BackendProcess":
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "server_stub", "serve", "--data", str(self.data), "--port", str(self.port),
             "--workers", "1", "--threads", "4", *(["--database", self.database] if self.database else [])],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            try:
                httpx.get(self.url + "/api/v1/health", timeout=1).raise_for_status()
                return self
            except httpx.HTTPError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the backend did not come up")
                time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL to the whole server (granian's workers too)."""
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(10)
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
            self.proc = None


def make_world(root: Path, *, claims: int, tills: int = 1, database: str | None = None) -> dict:
    """A backend with demo data, `claims` personal codes, and enrolled tills (synced once).
    With `database` (a PostgreSQL URL), the backend runs over it; "database" in the answer."""
    data = root / "backend"
    over = ["--database", database] if database else []
    admin = cli("server_stub", "init", "--data", str(data), *over)["admin_token"]
    demo = cli("server_stub", "demo-data", "--data", str(data), *over)
    # Tills here redeem thousands a minute on purpose (no velocity limit), and the backend,
    # which judges their entries again, must not refuse them for it.
    DataDir(data).set_config(velocity_limit=0)
    backend = BackendProcess(data, database=database).start()
    personal = next(v for v in demo["vouchers"] if v["kind"] == "personal")["id"]
    printed = next(v for v in demo["vouchers"] if v["kind"] == "printed")["code"]
    codes = []
    with httpx.Client(base_url=backend.url + "/api/v1", headers={"Authorization": f"Bearer {admin}"}) as http:
        for n in range(claims):
            answer = http.post("/claims", json={"voucher_id": personal, "customer_id": f"c{n}"}).json()
            codes.append(answer["token"] if n % 2 else answer["short_code"])
        codes_extra = []
        for n in range(tills - 3):  # demo data makes three enrollment codes
            store_id = demo["store_id"]
            codes_extra.append(http.post("/enrollment-codes", json={"store_id": store_id}).json()["code"])
    stores = [enroll_till(root / f"till{n + 1}" / "till.sqlite3", backend.url, code, f"Caja {n + 1}")
              for n, code in enumerate((demo["enrollment_codes"] + codes_extra)[:tills])]
    return {"backend": backend, "codes": codes, "printed": printed, "tills": stores, "admin": admin,
            "demo": demo, "data": data, "database": database}


def enroll_till(path: Path, url: str, code: str, name: str) -> tuple[Path, str, str]:
    """A till's store at `path`, enrolled with `code` at `url` and synced once: (path, device token, device id)."""
    with BackendClient(url, timeout=10) as anonymous:
        answer = anonymous.enroll(code, name)
    with TillStore(path) as store:
        store.save_enrollment(answer, url)
        store.set("velocity_limit", 0)
        with BackendClient(url, answer["device_token"], timeout=10) as client:
            sync_once(store, client)
    return path, answer["device_token"], answer["device_id"]


def child(store_path: Path, url: str, token: str, inputs: list[str], seed: int) -> None:
    """Redeem and sync until killed (runs in a forked process)."""
    rng = random.Random(seed)
    store = TillStore(store_path)
    client = BackendClient(url, token, timeout=1.5)
    while True:
        choice = rng.random()
        text = rng.choice(inputs)
        method = Method.PRINTED if text.isalpha() and len(text) < 12 else Method.CAMERA
        try:
            if choice < 0.4:
                redeem(store, text, method=method, client=client)
            elif choice < 0.8:
                redeem(store, text, method=method)
            else:
                sync_once(store, client, pending_begun_before=time.time() - 2)
        except NotRecorded:
            pass


def settle(store: TillStore, client: BackendClient) -> dict:
    """Sync until nothing is queued or pending (the backend has had time to finish every request)."""
    for _ in range(20):
        summary = sync_once(store, client)
        if summary.error is None and store.outbox_size() == 0 and not store.pending_online():
            return summary
        time.sleep(0.2)
    raise AssertionError(f"the till did not settle: {summary}")


def backend_query(backend_db: Path | str, sql: str, params: tuple = ()) -> list[tuple]:
    """Rows of `sql` (with `?` placeholders) from the backend's database: its SQLite file, or a PostgreSQL URL."""
    if isinstance(backend_db, str) and backend_db.startswith(("postgresql://", "postgres://")):
        import psycopg  # only where PostgreSQL is used

        with psycopg.connect(backend_db, autocommit=True) as conn:
            return conn.execute(sql.replace("?", "%s"), params).fetchall()
    import sqlite3

    db = sqlite3.connect(backend_db)
    try:
        return db.execute(sql, params).fetchall()
    finally:
        db.close()


def compare(store: TillStore, backend_db: Path | str, device_id: str) -> dict:
    """The till's finished attempts against the backend's (its SQLite file or PostgreSQL URL), key by key."""
    till = {a["key"]: bool(a["accepted"]) for a in store.attempts() if a["state"] == "done"}
    abandoned = {a["key"] for a in store.attempts() if a["state"] == "abandoned"}
    rows = backend_query(backend_db, "SELECT key, status FROM attempts WHERE device_id = ?", (device_id,))
    twice = backend_query(backend_db, "SELECT count(*) FROM (SELECT jti FROM attempts WHERE status = 'accepted' "
                          "AND jti IS NOT NULL GROUP BY jti HAVING count(*) > 1) AS twice")[0][0]
    backend = {key: status != "refused" for key, status in rows}
    return {
        "till_attempts": len(till), "backend_attempts": len(rows),
        "missing_at_backend": sorted(set(till) - set(backend))[:5],
        "unknown_to_till": sorted(set(backend) - set(till))[:5],
        "acceptance_differs": sorted(k for k in set(till) & set(backend) if till[k] != backend[k])[:5],
        "abandoned_at_backend": sorted(abandoned & set(backend))[:5],
        "jti_accepted_twice": twice,
        "outbox": store.outbox_size(), "parked": len(store.parked()), "pending": len(store.pending_online()),
        "abandoned": len(abandoned),
    }


def soak(kills: int, *, seed: int = 7, min_delay: float = 0.02, max_delay: float = 0.25,
         database: str | None = None) -> dict:
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        world = make_world(Path(tmp), claims=max(40, kills // 2), database=database)
        backend = world["backend"]
        try:
            store_path, token, device_id = world["tills"][0]
            inputs = world["codes"] + [world["printed"]] * 10 + ["garbage ☃"]
            started = time.monotonic()
            for n in range(kills):
                pid = os.fork()
                if pid == 0:  # the till
                    try:
                        child(store_path, backend.url, token, inputs, seed * 100_003 + n)
                    finally:
                        os._exit(1)
                time.sleep(rng.uniform(min_delay, max_delay))
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            killing_s = time.monotonic() - started
            time.sleep(1.0)  # requests of killed tills finish at the backend
            with TillStore(store_path) as store, BackendClient(backend.url, token, timeout=10) as client:
                settle(store, client)
                result = compare(store, database or Path(tmp) / "backend" / DB_NAME, device_id)
            result.update(kills=kills, killing_s=round(killing_s, 1))
            result["ok"] = not (result["missing_at_backend"] or result["unknown_to_till"]
                                or result["acceptance_differs"] or result["abandoned_at_backend"]
                                or result["jti_accepted_twice"] or result["outbox"] or result["pending"])
            return result
        finally:
            backend.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--database", metavar="URL", help="an empty PostgreSQL database for the backend")
    args = parser.parse_args()
    result = soak(args.kills, seed=args.seed, database=args.database)
    print(json.dumps(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
