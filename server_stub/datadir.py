"""A backend's data folder: the database, the signing key and the settings.

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
}


class NotInitialised(RuntimeError):
    pass


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class DataDir:
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.db_path = self.path / DB_NAME
        self.keys_path = self.path / KEYS_DIR

    @property
    def initialised(self) -> bool:
        return self.db_path.exists() and any(self.keys_path.glob("*.pem"))

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
        path.write_text(json.dumps(current, indent=2))

    def migrate(self) -> None:
        db = open_database(str(self.db_path))
        try:
            apply(db, MIGRATIONS)
        finally:
            db.conn.close()

    def init(self) -> dict:
        """Create a new backend here; refuses to overwrite one."""
        if self.initialised:
            raise FileExistsError(f"{self.path} already holds a backend")
        self.path.mkdir(parents=True, exist_ok=True)
        self.keys_path.mkdir(mode=0o700, exist_ok=True)
        self.migrate()
        key = tokens.generate_private_key()
        kid = tokens.key_id(key.public_key())
        key_file = self.keys_path / f"{kid}.pem"
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(tokens.private_pem(key))
        admin_token = secrets.token_urlsafe(32)
        db = open_database(str(self.db_path))
        try:
            # One transaction: the connection is in autocommit, where `with conn` alone begins none.
            with db.conn:
                db.execute("BEGIN")
                db.execute("INSERT INTO signing_keys (kid, public_pem, active, created_at) VALUES (?, ?, 1, ?)",
                           (kid, tokens.public_pem(key.public_key()), time.time()))
                db.execute("INSERT INTO admin_tokens (token_hash, created_at, scope, name) "
                           "VALUES (?, ?, 'all', 'operator')", (token_hash(admin_token), time.time()))
        finally:
            db.conn.close()
        return {"admin_token": admin_token, "kid": kid}

    def signing_key(self, kid: str):
        return tokens.load_private_pem((self.keys_path / f"{kid}.pem").read_bytes())
