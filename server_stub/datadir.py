"""A backend's data folder: the signing keys, the settings, and the database or the way to it.

The database is SQLite in the folder (`backend.sqlite3`, the embedded
default) or PostgreSQL, named by a `postgresql://` URL in the folder's
config (`"database"`) or given to `serve --database`: then several backend
processes, on one host or several, each with a copy of the folder, share it.

`init` makes one: a fresh ES256 signing key (mode 0600, never served) and the
operator's admin token (scope 'all'), printed once and kept only as a hash.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import time
from pathlib import Path

from pos_app.core import tokens
from pos_app.core.migrate import apply, open_database

from .limits.config import DEFAULT_LIMITS, DEFAULT_TRUSTED_PROXIES
from .storage.base import Storage, shown_dsn
from .storage.schema import MIGRATIONS

DB_NAME = "backend.sqlite3"
KEYS_DIR = "keys"
CONFIG_NAME = "config.json"
DEFAULT_CONFIG = {
    "issuer": "pika",
    "claim_ttl_s": 7 * 24 * 3600,  # a claim's token lives a week, never past the voucher
    "velocity_limit": 40,  # accepted redemptions per till per minute before rate_limited
    "leeway_s": 60,
    # The monthly booklet: rendered on `day` at `hour`:`minute` (timezone) for the month `months_ahead` on.
    "booklet": {"schedule": True, "day": 1, "hour": 6, "minute": 0, "months_ahead": 1,
                "timezone": "America/Asuncion", "paper": "A5"},
    # Token buckets per till and per client address (limits/; docs/operating.md, "Rate limits"); a
    # `"limits"` of the folder's own keeps these for what it leaves out.
    "limits": DEFAULT_LIMITS,
    # Connections whose X-Real-IP names the client (the nginx front on this host): http.client_address.
    "trusted_proxies": DEFAULT_TRUSTED_PROXIES,
}


POSTGRES_SCHEMES = ("postgresql://", "postgres://")


class NotInitialised(RuntimeError):
    pass


class BadDatabaseURL(ValueError):
    pass


def check_database_url(url: str) -> str:
    """A PostgreSQL URL as given, or ValueError: SQLite needs none (it lives in the folder)."""
    if not isinstance(url, str) or not url.startswith(POSTGRES_SCHEMES):
        raise BadDatabaseURL("the database is a PostgreSQL URL, postgresql://user@host:port/name")
    return url


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class DataDir:
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.db_path = self.path / DB_NAME
        self.keys_path = self.path / KEYS_DIR

    @property
    def initialised(self) -> bool:
        """Keys here, and a database: the folder's SQLite file, or PostgreSQL named in its config."""
        if not any(self.keys_path.glob("*.pem")):
            return False
        return self.db_path.exists() or (self.path / CONFIG_NAME).exists() and bool(self.config().get("database"))

    def database(self, override: str | None = None) -> str | None:
        """The PostgreSQL URL this backend runs over (`override`, then the config), or None for SQLite."""
        url = override or self.config().get("database")
        return check_database_url(url) if url else None

    def open_storage(self, database: str | None = None) -> Storage:
        """The backend's storage, its migrations applied: PostgreSQL if a URL is given or configured."""
        url = self.database(database)
        if url is None:
            self._migrate_sqlite()
            from .storage.sqlite import SQLiteStorage
            return SQLiteStorage(str(self.db_path))
        from .storage.postgres import PostgresStorage  # psycopg only where PostgreSQL is used
        return PostgresStorage(url)

    def config(self) -> dict:
        config = dict(DEFAULT_CONFIG)
        path = self.path / CONFIG_NAME
        if path.exists():
            config.update(json.loads(path.read_text()))
        return config

    def set_config(self, **values) -> None:
        path = self.path / CONFIG_NAME
        current = json.loads(path.read_text()) if path.exists() else {}
        current.update(values)
        _write_private(path, json.dumps(current, indent=2))

    def migrate(self, database: str | None = None) -> None:
        """Apply pending migrations to the backend's database (and find a damaged one), then let it go."""
        self.open_storage(database).close()

    def _migrate_sqlite(self) -> None:
        db = open_database(str(self.db_path))
        try:
            apply(db, MIGRATIONS)
        finally:
            db.conn.close()

    def init(self, database: str | None = None) -> dict:
        """Create a new backend here, over SQLite in the folder or the PostgreSQL `database` (which must
        hold no backend yet); refuses to overwrite one."""
        if self.initialised:
            raise FileExistsError(f"{self.path} already holds a backend")
        url = check_database_url(database) if database else None
        self.path.mkdir(parents=True, exist_ok=True)
        self.keys_path.mkdir(mode=0o700, exist_ok=True)
        key = tokens.generate_private_key()
        kid = tokens.key_id(key.public_key())
        admin_token = secrets.token_urlsafe(32)
        storage = self.open_storage(url)
        try:
            def first_rows(db) -> None:
                if db.execute("SELECT count(*) FROM signing_keys").fetchone()[0]:
                    raise FileExistsError(f"the database {shown_dsn(url or str(self.db_path))} already holds a "
                                          "backend: copy that backend's data folder instead")
                db.execute("INSERT INTO signing_keys (kid, public_pem, active, created_at) VALUES (?, ?, 1, ?)",
                           (kid, tokens.public_pem(key.public_key()), time.time()))
                db.execute("INSERT INTO admin_tokens (token_hash, created_at, scope, name) "
                           "VALUES (?, ?, 'all', 'operator')", (token_hash(admin_token), time.time()))
            storage.submit(first_rows)  # one transaction: both rows or neither
        finally:
            storage.close()
        # The key file last: a folder with a key but no database rows would count as made.
        self.save_signing_key(key)
        if url:
            self.set_config(database=url)
        return {"admin_token": admin_token, "kid": kid}

    def signing_key(self, kid: str):
        return tokens.load_private_pem((self.keys_path / f"{kid}.pem").read_bytes())

    def save_signing_key(self, key) -> Path:
        """A private key into the keys folder as `KID.pem`, readable by its owner only; never overwrites."""
        self.keys_path.mkdir(mode=0o700, exist_ok=True)
        key_file = self.keys_path / f"{tokens.key_id(key.public_key())}.pem"
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(tokens.private_pem(key))
            fh.flush()
            os.fsync(fh.fileno())  # on disk before any row names it: a crash must not leave a key signing unsaved
        return key_file


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (the config may hold a database password), replacing it whole."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
