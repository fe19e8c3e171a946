"""`python -m server_stub migrate-to-postgres`: a real SQLite backend's day copied into PostgreSQL (issue 17).

A chain's day made through the real app and two real tills on one clock:
online redemptions, an offline batch with a conflict and a dispute, a void, a
printed code over its limit, wrong PINs, a failed enrollment, the demo's
booklet rendered. The command runs as a subprocess; then both engines must
hold the same rows, give the same day report (JSON and CSV), and the
PostgreSQL copy must go on where SQLite stopped: a new redemption takes the
next ids and the next feed seq, and a till's old cursor reads on.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from datetime import date
from pathlib import Path

import httpx
import psycopg
import pytest

from pos_app.core.domain import Method
from server_stub.app import API, App
from server_stub.backend import Backend
from server_stub.datadir import DataDir
from server_stub.demo import add_demo_data
from server_stub.storage import pg_migrate, pg_schema
from report_fixtures import World, local

D = date(2025, 6, 3)
EVERY_TABLE = ("retailers", "stores", "vouchers", "printed_codes", "claims", "staff", "enrollment_codes", "devices",
               "admin_tokens", "signing_keys", "attempts", "events", "voids", "booklet_editions",
               "booklet_placements", "booklet_pdfs", "pin_failures", "enrollment_failures", "backend_meta",
               "audit_log", "console_sessions", "console_form_uses", "till_log", "till_log_cut", "store_lan_keys", "findings")
# The day's failed enrollment is logged (at the module's fixture, made by the first test).
pytestmark = pytest.mark.allow_log_warnings(r"^enrollment refused from ")


def migrate(data: Path, url: str, *more: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "server_stub", "migrate-to-postgres", "--data", str(data),
                           "--database", url, *more], capture_output=True, text=True, timeout=600)


def sqlite_counts(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in EVERY_TABLE}
    finally:
        conn.close()


def pg_counts(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in EVERY_TABLE}


def client(backend: Backend) -> httpx.Client:
    return httpx.Client(transport=httpx.WSGITransport(app=App(backend)), base_url=f"http://t{API}")


class Chain:
    """The world after its day, its tills closed, its SQLite backend closed (as a stopped `serve`)."""

    def __init__(self, root: Path):
        world = self.world = World(root, local(D, 8))
        one, two = world.till("Caja 1"), world.till("Caja 2")
        cashier = world.staff("cashier")
        http, admin = world.http, world.admin_headers()
        for hour in (9, 10):  # online
            assert one.redeem(local(D, hour), world.claim(world.coffee, f"c{hour}")["token"], Method.CAMERA,
                              staff=cashier["id"]).verdict.accepted
        assert one.redeem(local(D, 10, 5), "CAFE50", Method.PRINTED).verdict.accepted
        # A printed code allowed once a store a day: the second use is refused.
        world.clock.t = local(D, 10, 10)
        once = world.backend.create_voucher({"retailer_id": world.info["retailer_id"], "kind": "printed",
                                             "texts": {"es": {"title": "Una vez"}}, "store_day_limit": 1,
                                             "discount": {"kind": "percent", "value": 5}})
        world.backend.change_voucher(once["id"], "publish")
        world.backend.create_printed_code(once["id"], "UNAVEZ")
        one.sync()
        assert one.redeem(local(D, 10, 20), "UNAVEZ", Method.PRINTED).verdict.accepted
        assert one.redeem(local(D, 10, 21), "UNAVEZ", Method.PRINTED).verdict.accepted is False
        # Offline on both tills: the same claim twice (a conflict), and a claim revoked meanwhile (a dispute).
        shared = world.claim(world.coffee, "shared")["token"]
        revoked = world.claim(world.coffee, "revoked")
        two.sync()
        world.clock.t = local(D, 11)
        assert http.post(f"/claims/{revoked['jti']}/revoke", headers=admin).status_code == 200
        assert one.redeem(local(D, 11, 30), shared, Method.SCANNER, online=False).verdict.accepted
        assert two.redeem(local(D, 11, 31), shared, Method.CAMERA, online=False).verdict.accepted
        assert two.redeem(local(D, 11, 32), revoked["token"], Method.CAMERA, online=False).verdict.accepted
        world.clock.t = local(D, 12)
        one.sync()
        assert two.sync().conflicts == 1
        # A manager voids one at the backend; a wrong PIN, a wrong enrollment code.
        world.clock.t = local(D, 13)
        voided = one.key_at(local(D, 9))
        answer = http.post(f"/redemptions/{voided}/void", headers=world.manager_headers(one), json={"reason": "anulada"})
        assert answer.status_code == 201, answer.text
        wrong = {**world.manager_headers(two), "X-Pika-Pin": "000000"}
        assert http.get("/reports/daily", headers=wrong, params={"date": D.isoformat()}).status_code in (401, 403)
        assert http.post("/devices/enroll", json={"code": "NOPE-NOPE", "name": "x"}).status_code >= 400
        edition = world.info["booklet"]["edition_id"]
        assert http.post(f"/booklets/{edition}/render", headers=admin, json={}).status_code == 200
        # Caja 2 syncs now; then Caja 1 redeems on, so Caja 2's cursor is behind the head.
        two.sync()
        self.cursor = two.store.feed_cursor
        assert one.redeem(local(D, 14), world.claim(world.coffee, "late")["token"], Method.CAMERA).verdict.accepted
        self.one, self.two = one, two
        self.path = world.root / "backend"
        self.report = {fmt: http.get("/reports/daily", headers=world.manager_headers(one),
                                     params={"date": D.isoformat(), "format": fmt}).content for fmt in ("json", "csv")}
        self.feed = http.get("/feed", headers={"Authorization": f"Bearer {two.token}"},
                             params={"after": self.cursor}).json()
        # The manager on the web console: a session, and a form of it taken once; both move with the rest.
        manager = world.staff("manager")
        with httpx.Client(transport=httpx.WSGITransport(app=App(world.backend)), base_url="http://t") as web:
            token = re.findall(r'name="csrf" value="([^"]+)"', web.get("/console/sign-in").text)[-1]
            assert web.post("/console/sign-in", data={"csrf": token, "how": "staff", "staff_id": manager["id"],
                                                      "pin": manager["pin"]}).status_code == 303
            token = re.findall(r'name="csrf" value="([^"]+)"', web.get("/console/").text)[-1]
            assert web.post("/console/language", data={"csrf": token, "language": "gn"}).status_code == 303
        # Reconciliation's check: the day's store-day overshoot or a silent till, a finding to carry over.
        from server_stub.operations import findings

        world.backend.ctx.storage.submit(lambda db: findings.raise_finding(
            db, code="till_silent", subject=two.store.device_id, detail={"hours": 30}, now=world.clock.t,
            retailer_id=world.info["retailer_id"], device_id=two.store.device_id))
        # A record the backend cut off a till's copy (a rewind), kept beside it: as POST /till-log keeps one.
        world.backend.ctx.storage.submit(lambda db: db.execute(
            "INSERT INTO till_log_cut (device_id, seq, kind, key, body, hash, received_at, cut_at)"
            " SELECT device_id, seq, kind, key, body, hash, received_at, ? FROM till_log ORDER BY seq LIMIT 1",
            (world.clock.t,)))
        world.close()
        self.counts = sqlite_counts(self.path / "backend.sqlite3")


@pytest.fixture(scope="module")
def chain(tmp_path_factory) -> Chain:
    return Chain(tmp_path_factory.mktemp("moving"))


def test_every_table_has_rows_to_copy(chain):
    assert all(n > 0 for n in chain.counts.values()), chain.counts
    assert chain.counts["attempts"] >= 8 and chain.feed["events"]


def test_the_copy_holds_every_row_gives_the_same_reports_and_goes_on(chain, pg_database):
    done = migrate(chain.path, pg_database)
    assert done.returncode == 0, done.stderr
    said = json.loads(done.stdout)
    assert said["tables"] == chain.counts == pg_counts(pg_database)
    with sqlite3.connect(f"file:{chain.path / 'backend.sqlite3'}?mode=ro", uri=True) as source, \
            psycopg.connect(pg_database) as target:
        meta = "SELECT key, value FROM backend_meta ORDER BY key"
        assert source.execute(meta).fetchall() == target.execute(meta).fetchall()  # the same backend, moved
    assert said["verified"] is True and said["switched"] is False
    with sqlite3.connect(chain.path / "backend.sqlite3") as conn:
        head = conn.execute("SELECT max(seq) FROM events").fetchone()[0]
    assert said["event_head"] == head
    assert DataDir(chain.path).database() is None  # not switched: serve still uses SQLite

    world = chain.world
    backend = Backend(chain.path, clock=world.clock, database=pg_database)
    http = client(backend)
    try:
        for fmt, body in chain.report.items():
            answer = http.get("/reports/daily", headers=world.manager_headers(chain.one),
                              params={"date": D.isoformat(), "format": fmt})
            assert answer.status_code == 200 and answer.content == body, fmt
        auth = {"Authorization": f"Bearer {chain.two.token}"}
        assert http.get("/feed", headers=auth, params={"after": chain.cursor}).json() == chain.feed
        # A new redemption: the next attempt id, the next feed seq, no clash with what was copied.
        world.clock.t = local(D, 15)
        answer = http.post("/redemptions", headers={"Authorization": f"Bearer {chain.one.token}",
                                                    "Idempotency-Key": "after-the-move"},
                           json={"input": "CAFE50", "method": "printed"})
        assert answer.status_code == 201, answer.text
        events = http.get("/feed", headers=auth, params={"after": head}).json()["events"]
        assert [(e["seq"], e["type"]) for e in events] == [(head + 1, "redemption")]
        answer = http.post("/redemptions/after-the-move/void", headers=world.manager_headers(chain.one),
                           json={"reason": "probando"})
        assert answer.status_code == 201, answer.text
        with psycopg.connect(pg_database) as conn:
            assert conn.execute("SELECT max(id) FROM attempts").fetchone()[0] == chain.counts["attempts"] + 1
            assert conn.execute("SELECT max(id) FROM voids").fetchone()[0] == chain.counts["voids"] + 1
    finally:
        http.close()
        backend.close()


def test_switch_names_the_database_in_the_folder_and_a_second_copy_is_refused(chain, pg_database, tmp_path):
    folder = tmp_path / "backend"
    shutil.copytree(chain.path, folder)
    done = migrate(folder, pg_database, "--switch")
    assert done.returncode == 0, done.stderr
    said = json.loads(done.stdout)
    assert said["switched"] is True and said["written_since"] == {}
    assert DataDir(folder).database() == pg_database
    assert (folder / "config.json").stat().st_mode & 0o077 == 0
    again = migrate(folder, pg_database)
    assert again.returncode == 1 and "(already_postgres)" in again.stderr


def test_a_database_that_holds_a_backend_is_refused_and_left_alone(chain, pg_database, tmp_path):
    other = tmp_path / "other"
    DataDir(other).init(database=pg_database)
    before = pg_counts(pg_database)
    done = migrate(chain.path, pg_database)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith("error: ") and "(target_not_empty)" in done.stderr
    assert pg_counts(pg_database) == before


def indexes(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' "
                            "ORDER BY indexname").fetchall()


def test_a_migrated_empty_database_is_fine_and_keeps_its_indexes(chain, pg_database):
    with psycopg.connect(pg_database, autocommit=True) as conn:
        pg_migrate.apply(conn, pg_schema.MIGRATIONS)
    made = indexes(pg_database)
    done = migrate(chain.path, pg_database)
    assert done.returncode == 0, done.stderr
    assert pg_counts(pg_database) == chain.counts
    assert indexes(pg_database) == made  # dropped for the load, made again alike


def test_a_copy_that_fails_halfway_leaves_the_target_as_it_was(chain, pg_database, tmp_path):
    folder = tmp_path / "backend"
    shutil.copytree(chain.path, folder)
    # SQLite keeps it; PostgreSQL's bigint refuses it, in voids, copied after the attempts and the feed.
    with sqlite3.connect(folder / "backend.sqlite3") as conn:
        conn.execute("UPDATE voids SET verified = 'many'")
    with psycopg.connect(pg_database, autocommit=True) as conn:
        pg_migrate.apply(conn, pg_schema.MIGRATIONS)
    made = indexes(pg_database)
    done = migrate(folder, pg_database)
    assert done.returncode == 1 and "(copy_failed)" in done.stderr and "COPY voids" in done.stderr, done.stderr
    assert done.stderr.count("\n") == 1
    left = pg_counts(pg_database)
    assert left.pop("backend_meta") == 3  # the target's own identity, as its migrations made it
    assert set(left.values()) == {0} and indexes(pg_database) == made
    with psycopg.connect(pg_database) as conn:
        assert conn.execute("SELECT last FROM event_counter").fetchone() == (0,)
        # The triggers are on again: the feed numbers events itself.
        conn.execute("INSERT INTO events (retailer_id, type, data, at) VALUES ('r', 'voucher', '{}', 0)")
        assert conn.execute("SELECT seq FROM events").fetchone() == (1,)


def test_a_folder_without_a_sqlite_backend_is_refused(pg_database, tmp_path):
    done = migrate(tmp_path / "nothing", pg_database)
    assert done.returncode == 1 and "(no_sqlite_backend)" in done.stderr
    assert not (tmp_path / "nothing").exists()


def test_an_older_schema_is_refused_until_migrated(chain, pg_database, tmp_path):
    folder = tmp_path / "backend"
    shutil.copytree(chain.path, folder)
    with sqlite3.connect(folder / "backend.sqlite3") as conn:
        conn.execute("DELETE FROM _migrations WHERE version = (SELECT max(version) FROM _migrations)")
    done = migrate(folder, pg_database)
    assert done.returncode == 1 and "(schema_version)" in done.stderr
    with psycopg.connect(pg_database) as conn:
        assert pg_migrate.version(conn) == 0  # nothing written, not even the schema


@pytest.mark.parametrize("damage", ["garbage", "truncated", "one_page_short"])
def test_a_damaged_sqlite_file_is_refused(chain, pg_database, tmp_path, damage):
    folder = tmp_path / "backend"
    shutil.copytree(chain.path, folder)
    db = folder / "backend.sqlite3"
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    for leftover in folder.glob("backend.sqlite3-*"):
        leftover.unlink()
    if damage == "garbage":
        db.write_bytes(b"this is no database at all" * 1000)
    elif damage == "truncated":
        db.write_bytes(db.read_bytes()[: db.stat().st_size // 2])
    else:  # its last page gone, whatever it held (an index's, perhaps, which reading the rows would not miss)
        db.write_bytes(db.read_bytes()[:-4096])
    done = migrate(folder, pg_database)
    assert done.returncode == 1 and done.stderr.startswith("error: ") and "(sqlite_damaged)" in done.stderr, done.stderr
    assert set(pg_counts_or_none(pg_database).values()) <= {0}


def pg_counts_or_none(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        if pg_migrate.version(conn) == 0:
            return {}
    return pg_counts(url)


def test_an_unreachable_database_and_a_url_that_is_none(chain, pg_cluster):
    done = migrate(chain.path, pg_cluster.dsn("no_such_database"))
    assert done.returncode == 1 and done.stderr.startswith("error: cannot reach the database"), done.stderr
    assert done.stderr.count("\n") == 1
    done = migrate(chain.path, "sqlite:///somewhere.db")
    assert done.returncode == 1 and "is a PostgreSQL URL" in done.stderr, done.stderr


def test_a_copy_while_the_backend_writes_is_one_consistent_state(pg_cluster, pg_database, tmp_path):
    """The backend goes on committing redemptions (attempt and feed event in one statement) while the copy
    runs: a copy that read the attempts and the events at different moments would hold more of one."""
    folder = tmp_path / "live"
    DataDir(folder).init()
    backend = Backend(folder)
    demo = add_demo_data(backend)
    device = backend.enroll(demo["enrollment_codes"][0], "Caja 1")["device_id"]
    columns = ("key", "retailer_id", "store_id", "device_id", "at", "received_at", "status", "kind", "jti",
               "decided")

    def row(i: int):
        return (uuid.uuid4().hex, demo["retailer_id"], demo["store_id"], device, float(i), time.time(), "accepted",
                "personal", uuid.uuid4().hex, "online")
    with sqlite3.connect(folder / "backend.sqlite3") as conn:  # enough rows that the copy takes a while
        conn.executemany(f"INSERT INTO attempts ({', '.join(columns)}) VALUES ({', '.join('?' * 10)})",
                         (row(i) for i in range(20000)))
    stop = threading.Event()

    def serve():
        i = 0
        while not stop.is_set():
            backend.storage.insert_row("attempts", columns, row(i))
            i += 1
    writer = threading.Thread(target=serve)
    writer.start()
    second = pg_cluster.create_database()
    try:
        done = migrate(folder, pg_database)
        switched = migrate(folder, pg_cluster.dsn(second), "--switch")
    finally:
        stop.set()
        writer.join(30)
        backend.close()
    assert done.returncode == 0, done.stderr
    said = json.loads(done.stdout)
    with psycopg.connect(pg_database) as conn:
        accepted = conn.execute("SELECT count(*) FROM attempts WHERE status = 'accepted'").fetchone()[0]
        feed = conn.execute("SELECT count(*), max(seq) FROM events WHERE type = 'redemption'").fetchone()
    assert said["tables"]["attempts"] == accepted == feed[0] > 20000
    assert sqlite_counts(folder / "backend.sqlite3")["attempts"] > accepted  # it did write during the copy
    assert said["written_since"]["attempts"] > 0 and said["switched"] is False
    # Switching while it writes would strand what came in after the snapshot: refused.
    assert switched.returncode == 1 and "(written_during_copy)" in switched.stderr, switched.stderr
    assert DataDir(folder).database() is None
    pg_cluster.drop_database(second)


def test_a_row_changed_in_place_after_the_copy_is_written_since_it(chain, pg_database, tmp_path):
    """A revoke, a PIN changed, an enrollment code used: no table gains a row, yet a switch then would
    leave the change behind in SQLite; the rows' sums find it."""
    from server_stub.storage import pg_copy

    folder = tmp_path / "backend"
    shutil.copytree(chain.path, folder)
    copied = pg_copy.copy(folder / "backend.sqlite3", pg_database)
    assert pg_copy.written_since(folder / "backend.sqlite3", copied) == {}
    with sqlite3.connect(folder / "backend.sqlite3") as conn:
        conn.execute("UPDATE vouchers SET status = 'revoked' WHERE id = (SELECT min(id) FROM vouchers)")
    assert pg_copy.written_since(folder / "backend.sqlite3", copied) == {"vouchers": 0}
