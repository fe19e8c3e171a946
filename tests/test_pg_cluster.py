"""The throwaway PostgreSQL cluster the backend's PostgreSQL tests run on (tests/pg_fixtures.py):
a real server from the system's package, on loopback only, never as root, a database per test."""

from __future__ import annotations

import os
from pathlib import Path

import psycopg
import pytest


def test_a_database_of_its_own_on_a_real_server_on_loopback(pg_cluster, pg_database):
    with psycopg.connect(pg_database) as conn:
        assert conn.info.server_version >= 150000
        assert conn.execute("SHOW listen_addresses").fetchone() == ("127.0.0.1",)
        conn.execute("CREATE TABLE t (id bigint PRIMARY KEY, text text NOT NULL)")
        conn.execute("INSERT INTO t VALUES (1, 'Ñandutí ☃')")
        conn.commit()
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("INSERT INTO t VALUES (1, 'again')")
        conn.rollback()
        assert conn.execute("SELECT text FROM t").fetchall() == [("Ñandutí ☃",)]
    with psycopg.connect(pg_cluster.dsn()) as other:  # another database sees none of it
        assert other.execute("SELECT to_regclass('public.t')").fetchone() == (None,)


def test_the_server_runs_as_an_unprivileged_user(pg_cluster):
    status = Path(f"/proc/{pg_cluster.pid()}/status").read_text()
    uid = int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])
    assert uid != 0
    assert uid == os.geteuid() or os.geteuid() == 0  # run as ourselves, or dropped from root


def test_each_test_gets_an_empty_database(pg_database):
    with psycopg.connect(pg_database) as conn:
        tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()
    assert tables == (0,)
