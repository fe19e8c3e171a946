"""The backend's numbered schema migrations (applied by pos_app.core.migrate)."""

from __future__ import annotations

import sqlite_utils


def m001_initial(db: sqlite_utils.Database) -> None:
    db["retailers"].create({"id": str, "name": str, "created_at": float}, pk="id")
    db["stores"].create(
        {"id": str, "retailer_id": str, "name": str, "timezone": str, "created_at": float},
        pk="id", foreign_keys=[("retailer_id", "retailers", "id")],
    )
    db["stores"].create_index(["retailer_id"])
    db["vouchers"].create(
        {
            "id": str, "retailer_id": str, "kind": str, "status": str,
            "discount_kind": str, "discount_value": int, "currency": str,
            "texts": str, "valid_from": int, "valid_until": int,
            "total_limit": int, "store_day_limit": int, "claim_ttl_s": int,
            "created_at": float, "updated_at": float,
        },
        pk="id", foreign_keys=[("retailer_id", "retailers", "id")],
    )
    db["vouchers"].create_index(["retailer_id"])
    db["printed_codes"].create(
        {"code": str, "retailer_id": str, "voucher_id": str, "created_at": float},
        pk="code", foreign_keys=[("voucher_id", "vouchers", "id")],
    )
    db["printed_codes"].create_index(["voucher_id"])
    db["claims"].create(
        {
            "jti": str, "retailer_id": str, "voucher_id": str, "customer_id": str,
            "short_code": str, "issued_at": float, "expires_at": int, "revoked_at": float,
        },
        pk="jti", foreign_keys=[("voucher_id", "vouchers", "id")],
    )
    db["claims"].create_index(["short_code"], unique=True)
    db["claims"].create_index(["retailer_id", "expires_at"])
    db["staff"].create(
        {"id": str, "retailer_id": str, "store_id": str, "name": str, "role": str,
         "pin_hash": str, "created_at": float},
        pk="id", foreign_keys=[("retailer_id", "retailers", "id")],
    )
    db["enrollment_codes"].create(
        {"code_hash": str, "retailer_id": str, "store_id": str, "created_at": float,
         "expires_at": float, "used_at": float, "device_id": str},
        pk="code_hash",
    )
    db["devices"].create(
        {"id": str, "retailer_id": str, "store_id": str, "name": str, "token_hash": str,
         "enrolled_at": float},
        pk="id",
    )
    db["devices"].create_index(["token_hash"], unique=True)
    db["admin_tokens"].create({"token_hash": str, "created_at": float}, pk="token_hash")
    db["signing_keys"].create(
        {"kid": str, "public_pem": str, "active": int, "created_at": float}, pk="kid"
    )
    # Every attempt a till reports, accepted or not: the ledger reports read.
    db.execute(
        """CREATE TABLE attempts (
            id INTEGER PRIMARY KEY,
            key TEXT NOT NULL UNIQUE,
            retailer_id TEXT NOT NULL,
            store_id TEXT NOT NULL,
            device_id TEXT NOT NULL,
            at REAL NOT NULL,
            received_at REAL NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('accepted', 'refused', 'conflict')),
            reason TEXT,
            kind TEXT,
            voucher_id TEXT,
            jti TEXT,
            code TEXT,
            method TEXT,
            staff_id TEXT,
            decided TEXT NOT NULL CHECK (decided IN ('online', 'offline')),
            conflict_with INTEGER,
            answer TEXT
        )"""
    )
    # First accepted redemption of a jti wins: the database itself says so.
    db.execute(
        "CREATE UNIQUE INDEX attempts_one_accept_per_jti ON attempts (retailer_id, jti) "
        "WHERE status = 'accepted' AND jti IS NOT NULL"
    )
    db.execute("CREATE INDEX attempts_store_at ON attempts (store_id, at)")
    db.execute("CREATE INDEX attempts_device_at ON attempts (device_id, at)")
    db.execute(
        "CREATE INDEX attempts_printed ON attempts (voucher_id, store_id, at) "
        "WHERE status = 'accepted' AND kind = 'printed'"
    )
    # What tills pull to hear of each other: one ordered log per backend.
    db.execute(
        """CREATE TABLE events (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            retailer_id TEXT NOT NULL,
            type TEXT NOT NULL,
            origin_device TEXT,
            data TEXT NOT NULL,
            at REAL NOT NULL
        )"""
    )
    db.execute("CREATE INDEX events_retailer_seq ON events (retailer_id, seq)")


def m002_redemption_events_by_trigger(db: sqlite_utils.Database) -> None:
    # The feed event of an accepted redemption is written by the database in
    # the same statement as the attempt: one statement less per redemption in
    # the single writer, and no way to record one without the other.
    db.execute(
        """CREATE TRIGGER attempts_feed_event AFTER INSERT ON attempts
        WHEN NEW.status = 'accepted'
        BEGIN
            INSERT INTO events (retailer_id, type, origin_device, data, at)
            VALUES (NEW.retailer_id, 'redemption', NEW.device_id,
                    json_object('jti', NEW.jti, 'voucher_id', NEW.voucher_id, 'kind', NEW.kind,
                                'code', NEW.code, 'store_id', NEW.store_id,
                                'till', (SELECT name FROM devices WHERE id = NEW.device_id),
                                'at', NEW.at),
                    NEW.received_at);
        END"""
    )


MIGRATIONS = [m001_initial, m002_redemption_events_by_trigger]
