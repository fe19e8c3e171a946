"""Fixtures for the HTTP API tests: a real backend in a temporary folder, with
demo data, answered in-process through the real WSGI app.

Registered as a pytest plugin in conftest.py: tests name the fixtures (`api`,
`module_api`) and import only the helpers they call (`Api`, `bearer`, `new_key`).

Making a backend costs half a second (a signing key, three PIN hashes), so
one is made per session and each test gets a copy of its folder.
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

    def rows(self, sql: str, params=()) -> list[tuple]:
        return self._query(lambda c: c.execute(sql, params).fetchall())

    def close(self) -> None:
        self.client.close()
        self.backend.close()


@pytest.fixture(scope="session")
def api_template(tmp_path_factory) -> tuple[Path, str, dict]:
    """A backend folder with demo data, made once and copied for each test."""
    path = tmp_path_factory.mktemp("api-template") / "backend"
    admin_token = DataDir(path).init()["admin_token"]
    backend = Backend(path)
    try:
        demo = add_demo_data(backend)
    finally:
        backend.close()
    conn = sqlite3.connect(path / DB_NAME)  # fold the WAL in, so the folder copies as one file
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return path, admin_token, demo


def copy_backend(template: tuple[Path, str, dict], target: Path, **client_kwargs) -> Api:
    path, admin_token, demo = template
    shutil.copytree(path, target)
    return Api(target, admin_token, {**demo, "enrollment_codes": list(demo["enrollment_codes"])}, **client_kwargs)


@pytest.fixture
def api(api_template, tmp_path) -> Api:
    api = copy_backend(api_template, tmp_path / "backend")
    yield api
    api.close()


@pytest.fixture(scope="module")
def module_api(api_template, tmp_path_factory) -> Api:
    """One backend for a whole module (property tests, which may not use per-test fixtures)."""
    api = copy_backend(api_template, tmp_path_factory.mktemp("module-api") / "backend")
    yield api
    api.close()
