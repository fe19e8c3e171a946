"""What every part of the till's store shares: its SQLite file and connection, its
transactions, and its settings (read from a cache that costs a dict lookup).

`TillStore` (till_store.py) is this plus one part per job, each in its own
module (catalog, uses, outbox, voids, figures); the parts reach the file only
through the public names here (`conn`, `transaction()`, `write_setting()`...).
"""

from __future__ import annotations

import json
import logging
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from ..core import migrate
from .schema import MIGRATIONS
from ..core.wire import DEFAULT_TIMEZONE

log = logging.getLogger(__name__)


class StoreBase:
    """One till store file, open: its connection, transactions and settings."""

    def __init__(self, path: str | Path, *, device_name: str = ""):
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = migrate.open_database(str(path))
        self._conn: sqlite3.Connection = self.db.conn
        try:
            migrate.apply(self.db, MIGRATIONS)
        except BaseException:
            self._conn.close()
            raise
        self.default_device_name = device_name  # until the enrollment names the till
        # Decoded, as the catalog's caches are: the verdict reads settings on every scan.
        self._settings: dict[str, Any] = {}
        self.reload_settings()

    @property
    def conn(self) -> sqlite3.Connection:
        """The store's connection, for its parts; looked up at each use, so whatever
        `_conn` is now (bench/till_verdict.py swaps in a timing proxy) sees every statement."""
        return self._conn

    def close(self) -> None:
        self._conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction; rolled back if anything in it fails."""
        # IMMEDIATE takes the write lock up front, so what a verdict read
        # cannot change before its record is written.
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
            self._conn.execute("COMMIT")
        except BaseException:
            # A full disk may already have rolled the transaction back.
            if self._conn.in_transaction:
                try:
                    self._conn.execute("ROLLBACK")
                except sqlite3.Error:
                    log.exception("rollback failed")
            raise

    def reload_settings(self) -> None:
        rows = self._conn.execute("SELECT key, value FROM settings").fetchall()
        self._settings = {key: json.loads(value) for key, value in rows}

    def write_setting(self, key: str, value: Any) -> str:
        """Write a setting inside the caller's transaction, leaving the cache as it was: the caller
        reloads it (`reload_settings`) or keeps the value (`keep_setting`) once the transaction committed."""
        text = json.dumps(value)
        self._conn.execute(
            "INSERT INTO settings (key, value) VALUES (?, ?)"
            " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, text),
        )
        return text

    def keep_setting(self, key: str, value: Any) -> None:
        """Cache a setting's value, written (or to be written) with `write_setting`."""
        self._settings[key] = value

    def get(self, key: str, default: Any = None) -> Any:
        return self._settings.get(key, default)

    def stored(self, *keys: str) -> dict[str, Any]:
        """Settings as the file holds them now, not as this connection last saw them: the sync
        engine writes its figures (last sync, skew, errors) through a connection of its own."""
        marks = ", ".join("?" * len(keys))
        rows = self._conn.execute(f"SELECT key, value FROM settings WHERE key IN ({marks})", keys)
        return {key: json.loads(value) for key, value in rows}

    def set(self, key: str, value: Any) -> None:
        """Store a JSON value under a setting name."""
        # Cache what a reader after a restart would get back (tuples as lists...).
        self._settings[key] = json.loads(self.write_setting(key, value))

    @property
    def enrolled(self) -> bool:
        return bool(self._settings.get("device_token"))

    @property
    def server_url(self) -> str:
        return self._settings.get("server_url") or ""

    @property
    def device_token(self) -> str:
        return self._settings.get("device_token") or ""

    @property
    def device_id(self) -> str:
        return self._settings.get("device_id") or ""

    @property
    def device_name(self) -> str:
        return self._settings.get("device_name") or self.default_device_name

    @property
    def retailer_id(self) -> str:
        return self._settings.get("retailer_id") or ""

    @property
    def store_id(self) -> str:
        return self._settings.get("store_id") or ""

    @property
    def store_timezone(self) -> str:
        return self._settings.get("store_timezone") or DEFAULT_TIMEZONE

    @property
    def feed_cursor(self) -> int:
        return int(self._settings.get("feed_cursor") or 0)
