"""A throwaway PostgreSQL cluster from the system's package: initdb and pg_ctl in a folder of its own.

On 127.0.0.1 and a free port, with its socket in its folder; as the Debian
package's `postgres` user when run as root (PostgreSQL refuses root). Durable
by default — fsync, full_page_writes and synchronous_commit at their
defaults — since the benches' figures are about durable commits; the tests'
cluster (tests/pg_fixtures.py, built on this one) checks behaviour, not power
cuts, and runs with `durable=False`.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import subprocess
import uuid
from pathlib import Path

import psycopg

POSTGRES_ROOT = Path("/usr/lib/postgresql")
UNPRIVILEGED = "postgres"
SUPERUSER = "bench"  # the cluster's superuser (trust on its loopback and socket); its sessions are titled so


def postgres_bin() -> Path:
    """The bin folder of the newest PostgreSQL the package installed."""
    versions = sorted((p for p in POSTGRES_ROOT.glob("*/bin") if (p / "initdb").exists()),
                      key=lambda p: [int(n) for n in re.findall(r"\d+", p.parent.name)])
    if not versions:
        raise RuntimeError(f"no PostgreSQL under {POSTGRES_ROOT}: run `bash packaging/install.sh`")
    return versions[-1]


class Cluster:
    """One server in `root` (made if missing; removed by stop()), reachable by the server's own user."""

    def __init__(self, root: Path, max_connections: int = 300, *, durable: bool = True,
                 superuser: str = SUPERUSER):
        self.bin = postgres_bin()
        self.root, self.data, self.log = Path(root), Path(root) / "data", Path(root) / "server.log"
        self.max_connections, self.durable, self.superuser = max_connections, durable, superuser
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.as_user = UNPRIVILEGED if os.geteuid() == 0 else None

    def _command(self, *args: str) -> list[str]:
        command = [str(self.bin / args[0]), *args[1:]]
        return ["runuser", "-u", self.as_user, "--", *command] if self.as_user else command

    def _run(self, *args: str) -> str:
        done = subprocess.run(self._command(*args), capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{args[0]} failed: {done.stderr.strip()}\n{log}")
        return done.stdout

    def start(self) -> "Cluster":
        self.root.mkdir(parents=True, exist_ok=True)
        if self.as_user:
            user = pwd.getpwnam(self.as_user)
            os.chown(self.root, user.pw_uid, user.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", self.superuser, "--auth=trust", "--encoding=UTF8",
                  "--locale=C.UTF-8", *(() if self.durable else ("--no-sync",)))
        options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} "
                   f"-c max_connections={self.max_connections}"
                   + ("" if self.durable else " -c fsync=off -c full_page_writes=off"))
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60", "start")
        return self

    def stop(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                # A durable cluster shuts down cleanly; a throwaway one's data goes anyway.
                mode = "fast" if self.durable else "immediate"
                self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://{self.superuser}@127.0.0.1:{self.port}/{database}"

    def pid(self) -> int:
        """The postmaster's process id (its children are every session and background process)."""
        return int((self.data / "postmaster.pid").read_text().splitlines()[0])

    def new_database(self) -> str:
        """A fresh, empty database's URL."""
        name = f"bench_{uuid.uuid4().hex[:10]}"
        self.sql(f"CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8'")
        return self.dsn(name)

    def sql(self, statement: str, database: str = "postgres"):
        with psycopg.connect(self.dsn(database), autocommit=True) as conn:
            cur = conn.execute(statement)
            return cur.fetchall() if cur.description else None

    def fdatasync_us(self) -> float:
        """What one 8 kB write + fdatasync of the WAL costs on this disk (pg_test_fsync, in the cluster's
        folder): the least a durable commit waits."""
        out = self._run("pg_test_fsync", "-s", "1", "-f", str(self.root / "fsync.test"))
        return float(re.search(r"fdatasync\s+[\d.]+ ops/sec\s+(\d+) usecs/op", out).group(1))
