"""Fixtures for the HTTP API tests: a real backend in a temporary folder, with
demo data, answered in-process through the real WSGI app.

Registered as a pytest plugin in conftest.py: tests name the fixtures (`api`,
`module_api`) and import only the helpers they call (`Api`, `bearer`, `new_key`).

Every test that names `api`, `module_api` or `backend_database` runs twice:
over SQLite in the backend's folder and over PostgreSQL (a throwaway cluster,
pg_fixtures.py), the two storages the backend can run on.

Making a backend costs half a second (a signing key, three PIN hashes), so
one is made per session and engine, and each test gets a copy: of its folder,
and over PostgreSQL of its database too (`CREATE DATABASE … TEMPLATE`).
"""

from __future__ import annotations

import shutil
import sqlite3
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from server_stub.app import API, App
from server_stub.backend import Backend
from server_stub.datadir import DB_NAME, DataDir
from server_stub.demo import add_demo_data

ENGINES = ("sqlite", "postgresql")

BASE_URL = "http://t"
TABLES = ("retailers", "stores", "vouchers", "printed_codes", "claims", "staff", "enrollment_codes",
          "devices", "admin_tokens", "signing_keys", "attempts", "events", "voids")


def new_key() -> str:
    """A fresh idempotency key, as a till makes one."""
    return uuid.uuid4().hex


def make_client(app, **kwargs) -> httpx.Client:
    return httpx.Client(transport=httpx.WSGITransport(app=app), base_url=f"{BASE_URL}{API}", **kwargs)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Till:
    id: str
    token: str
    name: str
    store_id: str

    @property
    def auth(self) -> dict[str, str]:
        return bearer(self.token)


class Api:
    """One backend, its app, and a client; helpers that go through the API itself."""

    def __init__(self, path: Path, admin_token: str, demo: dict, **client_kwargs):
        self.path = Path(path)
        self.db_path = self.path / DB_NAME
        self.admin_token = admin_token
        self.demo = demo
        self.backend = Backend(self.path)
        self.database = self.backend.database  # None: SQLite in the folder
        self.app = App(self.backend)
        self.client = make_client(self.app, **client_kwargs)

    # --- the demo's things ---------------------------------------------------------

    @property
    def admin(self) -> dict[str, str]:
        return bearer(self.admin_token)

    @property
    def retailer_id(self) -> str:
        return self.demo["retailer_id"]

    @property
    def store_id(self) -> str:
        return self.demo["store_id"]

    def demo_voucher(self, kind: str) -> dict:
        return next(v for v in self.demo["vouchers"] if v["kind"] == kind)

    @property
    def printed_code(self) -> str:
        return self.demo_voucher("printed")["code"]

    # --- made through the API ---------------------------------------------------

    def ok(self, response: httpx.Response, status: int = 200) -> Any:
        assert response.status_code == status, response.text
        return response.json()

    def enroll(self, name: str = "Caja 1") -> Till:
        code = self.ok(self.client.post("/enrollment-codes", headers=self.admin, json={"store_id": self.store_id}),
                       201)["code"]
        body = self.ok(self.client.post("/devices/enroll", json={"code": code, "name": name}), 201)
        return Till(body["device_id"], body["device_token"], name, body["store_id"])

    def voucher(self, kind: str = "personal", publish: bool = True, **extra) -> dict:
        body = {"retailer_id": self.retailer_id, "kind": kind,
                "texts": {"es": {"title": "Prueba", "terms": "Una por persona."}},
                "discount": {"kind": "percent", "value": 10}, **extra}
        voucher = self.ok(self.client.post("/vouchers", headers=self.admin, json=body), 201)
        if publish:
            voucher = self.ok(self.client.post(f"/vouchers/{voucher['id']}/publish", headers=self.admin))
        return voucher

    def claim(self, voucher_id: str | None = None, customer_id: str = "cust-1") -> dict:
        voucher_id = voucher_id or self.demo_voucher("personal")["id"]
        return self.ok(self.client.post("/claims", headers=self.admin,
                                        json={"voucher_id": voucher_id, "customer_id": customer_id}), 201)

    def redeem(self, till: Till, text: str, method: str = "camera", key: str | None = None) -> httpx.Response:
        return self.client.post("/redemptions", headers={**till.auth, "Idempotency-Key": key or new_key()},
                                json={"input": text, "method": method})

    # --- what is on disk ------------------------------------------------------------

    def _query(self, fn):
        """fn(connection) on a connection of the test's own, read-only, beside the backend's: `?` placeholders
        on either engine (PostgreSQL's through the backend's own translation)."""
        if self.database is not None:
            return pg_query(self.database, fn)
        conn = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True)
        try:
            return fn(conn)
        finally:
            conn.close()

    def counts(self) -> dict[str, int]:
        return self._query(lambda c: {t: c.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES})

    def snapshot(self) -> dict[str, list]:
        """Every row of every table: equal before and after means nothing was written."""
        return self._query(lambda c: {t: sorted(map(repr, c.execute(f"SELECT * FROM {t}"))) for t in TABLES})

    def tables(self) -> dict[str, list[str]]:
        """Every table of the backend's schema and its columns (the migrations' own table left out)."""
        if self.database is not None:
            sql = ("SELECT table_name, column_name FROM information_schema.columns "
                   "WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position")
            pairs = self._query(lambda c: c.execute(sql).fetchall())
        else:
            def read(c):
                names = [r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
                return [(t, r[1]) for t in names for r in c.execute(f"PRAGMA table_info({t})")]
            pairs = self._query(read)
        out: dict[str, list[str]] = {}
        for table, column in pairs:
            if not table.startswith(("_", "sqlite_")):
                out.setdefault(table, []).append(column)
        return out

    def rows(self, sql: str, params=()) -> list[tuple]:
        return self._query(lambda c: c.execute(sql, params).fetchall())

    def execute(self, sqlite_sql: str, pg_sql: str | None = None) -> None:
        """Change the database behind the backend's back (a fault injected): `sqlite_sql`, or over
        PostgreSQL `pg_sql` where its dialect differs."""
        if self.database is not None:
            import psycopg

            with psycopg.connect(self.database, autocommit=True) as raw:
                raw.execute(pg_sql or sqlite_sql)
            return
        conn = sqlite3.connect(self.db_path, timeout=10)
        try:
            conn.executescript(sqlite_sql)
        finally:
            conn.close()

    def close(self) -> None:
        self.client.close()
        self.backend.close()


def pg_query(url: str, fn):
    """fn(connection) over a read-only PostgreSQL connection of its own that speaks SQLite's placeholders."""
    import psycopg

    from server_stub.storage.pg_connection import PgConnection

    raw = psycopg.connect(url, autocommit=True)
    try:
        raw.execute("SET default_transaction_read_only = on")
        return fn(PgConnection(raw))
    finally:
        raw.close()


@dataclass
class Template:
    """A backend with demo data, made once per session and engine, copied for each test."""

    path: Path
    admin_token: str
    demo: dict
    pg_template: str | None = None  # the PostgreSQL database each test's is made from


def make_template(path: Path, database: str | None = None, pg_template: str | None = None) -> Template:
    admin_token = DataDir(path).init(database)["admin_token"]
    backend = Backend(path)
    try:
        demo = add_demo_data(backend)
    finally:
        backend.close()
    if database is None:
        conn = sqlite3.connect(path / DB_NAME)  # fold the WAL in, so the folder copies as one file
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()
    return Template(path, admin_token, demo, pg_template)


@pytest.fixture(scope="session")
def api_template(tmp_path_factory) -> Template:
    """The SQLite backend folder with demo data."""
    return make_template(tmp_path_factory.mktemp("api-template") / "backend")


@pytest.fixture(scope="session")
def pg_api_template(tmp_path_factory, pg_cluster) -> Template:
    """The PostgreSQL backend: its folder (keys, config) and a template database, both with demo data."""
    name = pg_cluster.create_database()
    return make_template(tmp_path_factory.mktemp("pg-api-template") / "backend", pg_cluster.dsn(name), name)


def copy_backend(template: Template, target: Path, pg_cluster=None, **client_kwargs) -> Api:
    """A test's own backend: the template's folder copied, and over PostgreSQL its database too."""
    shutil.copytree(template.path, target)
    if template.pg_template is not None:
        name = pg_cluster.create_database(template=template.pg_template)
        DataDir(target).set_config(database=pg_cluster.dsn(name))
    return Api(target, template.admin_token,
               {**template.demo, "enrollment_codes": list(template.demo["enrollment_codes"])}, **client_kwargs)


def drop_backend(api: Api, pg_cluster=None) -> None:
    api.close()
    if api.database is not None:
        pg_cluster.drop_database(api.database.rsplit("/", 1)[1])


def engine_template(request, engine: str) -> tuple[Template, Any]:
    """The template for `engine`, and the cluster when it is PostgreSQL (asked only then, so a run of
    SQLite tests alone starts no PostgreSQL)."""
    if engine == "sqlite":
        return request.getfixturevalue("api_template"), None
    return request.getfixturevalue("pg_api_template"), request.getfixturevalue("pg_cluster")


@pytest.fixture(params=ENGINES)
def engine(request) -> str:
    """The database the backend under test runs on: a test that names it runs once on each."""
    return request.param


@pytest.fixture
def backend_database(engine, request) -> str | None:
    """Where a test's own backend keeps its data: None (SQLite in its folder) or a fresh, empty
    PostgreSQL database's URL; for `DataDir(path).init(backend_database)`."""
    if engine == "sqlite":
        return None
    return request.getfixturevalue("pg_database")


@pytest.fixture(scope="module", params=ENGINES)
def module_backend_database(request):
    """backend_database for a module's one backend: its tests run once over each engine."""
    if request.param == "sqlite":
        yield None
        return
    cluster = request.getfixturevalue("pg_cluster")
    name = cluster.create_database()
    yield cluster.dsn(name)
    cluster.drop_database(name)


@pytest.fixture
def api(engine, request, tmp_path) -> Api:
    template, cluster = engine_template(request, engine)
    api = copy_backend(template, tmp_path / "backend", cluster)
    yield api
    drop_backend(api, cluster)


@pytest.fixture(scope="module", params=ENGINES)
def module_api(request, tmp_path_factory) -> Api:
    """One backend for a whole module (property tests, which may not use per-test fixtures), on each engine."""
    template, cluster = engine_template(request, request.param)
    api = copy_backend(template, tmp_path_factory.mktemp("module-api") / "backend", cluster)
    yield api
    drop_backend(api, cluster)
