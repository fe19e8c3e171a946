"""A throwaway PostgreSQL cluster for the tests, and a fresh database for each test that asks.

The cluster comes from Debian's `postgresql` package (packaging/install.sh
installs it): `initdb` and `pg_ctl` in a temporary folder, listening on
127.0.0.1 only, on a free port, with its socket in that folder. PostgreSQL
refuses to run as root, so when the suite runs as root (CI does) the cluster
runs as the package's unprivileged `postgres` user. Made once per session
(`initdb` ~0.5 s, start ~0.1 s); each test gets a database of its own, made
and dropped around it.

The cluster itself is bench/pg_cluster.py's, started not durable
(`durable=False`: fsync and full_page_writes off) in this suite only: tests
check behaviour, not power cuts; the benches' figures come from a durable one.

Registered as a pytest plugin in conftest.py: tests name `pg_cluster` or
`pg_database` (a connection string).
"""

from __future__ import annotations

import sys
import tempfile
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import pg_cluster as cluster_module  # noqa: E402  (the benches' cluster; this is its throwaway kind)

SUPERUSER = "pika"  # the cluster's own superuser name (trust on its loopback and socket)


class Cluster(cluster_module.Cluster):
    """One PostgreSQL server in a folder of its own, not durable, with a database per test."""

    def __init__(self) -> None:
        # Not under pytest's tmp folder: it is private to root, and the server may run as another user.
        super().__init__(Path(tempfile.mkdtemp(prefix="pika-pg-")), max_connections=200, durable=False,
                         superuser=SUPERUSER)

    def create_database(self, template: str = "template0") -> str:
        """A new database's name: empty, or a copy of `template` (which must have no session open)."""
        name = f"test_{uuid.uuid4().hex[:12]}"
        self.sql(f'CREATE DATABASE "{name}" TEMPLATE "{template}" ENCODING \'UTF8\'')
        return name

    def drop_database(self, name: str) -> None:
        self.sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_cluster():
    cluster = Cluster().start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def pg_database(pg_cluster) -> str:
    """A connection string to an empty database of this test's own, dropped after it."""
    name = pg_cluster.create_database()
    try:
        yield pg_cluster.dsn(name)
    finally:
        pg_cluster.drop_database(name)
