"""A throwaway PostgreSQL cluster for the tests, and a fresh database for each test that asks.

The cluster comes from Debian's `postgresql` package (packaging/install.sh
installs it): `initdb` and `pg_ctl` in a temporary folder, listening on
127.0.0.1 only, on a free port, with its socket in that folder. PostgreSQL
refuses to run as root, so when the suite runs as root (CI does) the cluster
runs as the package's unprivileged `postgres` user. Made once per session
(`initdb` ~0.5 s, start ~0.1 s); each test gets a database of its own, made
and dropped around it.

Durability is switched off in this cluster only (`fsync=off`): tests check
behaviour, not power cuts; the figures come from bench/ on a real setup.

Registered as a pytest plugin in conftest.py: tests name `pg_cluster` or
`pg_database` (a connection string).
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

POSTGRES_ROOT = Path("/usr/lib/postgresql")
UNPRIVILEGED = "postgres"  # the Debian package's user, for a suite run as root
SUPERUSER = "pika"  # the cluster's own superuser name (trust on its loopback and socket)


def postgres_bin() -> Path:
    """The bin folder of the newest PostgreSQL the package installed."""
    versions = sorted((p for p in POSTGRES_ROOT.glob("*/bin") if (p / "initdb").exists()),
                      key=lambda p: [int(n) for n in re.findall(r"\d+", p.parent.name)])
    if not versions:
        raise RuntimeError(f"no PostgreSQL under {POSTGRES_ROOT}: run `bash packaging/install.sh`")
    return versions[-1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """One PostgreSQL server in a folder of its own."""

    def __init__(self) -> None:
        self.bin = postgres_bin()
        # Not under pytest's tmp folder: it is private to root, and the server may run as another user.
        self.root = Path(tempfile.mkdtemp(prefix="pika-pg-"))
        self.data = self.root / "data"
        self.run_dir = self.root / "run"
        self.log = self.root / "server.log"
        self.port = _free_port()
        self.as_user: str | None = UNPRIVILEGED if os.geteuid() == 0 else None

    def _command(self, *args: str) -> list[str]:
        command = [str(self.bin / args[0]), *args[1:]]
        return ["runuser", "-u", self.as_user, "--", *command] if self.as_user else command

    def _run(self, *args: str) -> None:
        done = subprocess.run(self._command(*args), capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{args[0]} failed ({done.returncode}): {done.stderr.strip()}\n{log}")

    def start(self) -> "Cluster":
        self.run_dir.mkdir()
        if self.as_user:
            user = pwd.getpwnam(self.as_user)
            for path in (self.root, self.run_dir):
                os.chown(path, user.pw_uid, user.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, "--auth=trust", "--encoding=UTF8",
                  "--locale=C.UTF-8", "--no-sync")
        options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.run_dir} "
                   "-c fsync=off -c full_page_writes=off -c max_connections=200")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60", "start")
        return self

    def stop(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def pid(self) -> int:
        """The server's (postmaster's) process id."""
        return int((self.data / "postmaster.pid").read_text().splitlines()[0])

    def create_database(self, template: str = "template0") -> str:
        """A new database's name: empty, or a copy of `template` (which must have no session open)."""
        import psycopg

        name = f"test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}" ENCODING \'UTF8\'')
        return name

    def drop_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


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
