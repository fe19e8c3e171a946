"""The till store's schema, as numbered migrations for `pos_app.core.migrate.apply`.

Append new migrations to `MIGRATIONS`; never edit or reorder one that has
shipped, because tills in the field have recorded it as applied.
"""

from __future__ import annotations

import sqlite_utils


def initial_schema(db: sqlite_utils.Database) -> None:
    # Settings and the catalog (replaced whole by each catalog download).
    db["settings"].create({"key": str, "value": str}, pk="key")
    db["keys"].create({"kid": str, "pem": str}, pk="kid")
    db["vouchers"].create({"id": str, "data": str, "kind": str, "status": str}, pk="id")
    db["printed_codes"].create({"code": str, "voucher_id": str}, pk="code")
    db["claims"].create(
        {"short_code": str, "jti": str, "voucher_id": str, "expires_at": float}, pk="short_code"
    )
    db["staff"].create(
        {"id": str, "name": str, "role": str, "pin_hash": str, "store_id": str}, pk="id"
    )
    db["revoked"].create({"jti": str}, pk="jti")

    # What was redeemed, here or (through the feed) at the retailer's other tills.
    db["used_tokens"].create(
        {"jti": str, "at": float, "till": str, "store_id": str, "origin": str},
        pk="jti", not_null=["origin"],
    )
    db["printed_uses"].create(
        {"voucher_id": str, "store_id": str, "day": str, "count": int},
        pk=("voucher_id", "store_id", "day"), not_null=["count"], defaults={"count": 0},
    )
    # Feed redemptions already counted, so a re-applied feed page counts nothing twice.
    db["feed_seen"].create({"seq": int}, pk="seq")

    db["attempts"].create(
        {
            "id": str, "key": str, "at": float, "input": str, "method": str, "staff_id": str,
            "state": str, "accepted": int, "reason": str, "kind": str, "source": str,
            "voucher_id": str, "jti": str, "code": str, "decided": str, "status": str,
            "conflict": str, "verdict": str, "finished_at": float,
        },
        pk="id", not_null=["key", "at", "method", "state"],
    )
    db["attempts"].create_index(["key"], unique=True)
    db["attempts"].create_index(["at"])

    # Raw SQL: sqlite-utils cannot say AUTOINCREMENT, and a seq that is never
    # reused keeps FIFO order and log lines unambiguous.
    db.execute(
        """CREATE TABLE outbox (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            key TEXT NOT NULL UNIQUE,
            payload TEXT NOT NULL,
            created_at REAL NOT NULL,
            tries INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            parked_reason TEXT
        )"""
    )


def sync_figures(db: sqlite_utils.Database) -> None:
    # When the backend had each attempt (delay figures), and a printed-code
    # limit the backend found overshot by offline redemptions (reported, kept).
    db.execute("ALTER TABLE attempts ADD COLUMN synced_at REAL")
    db.execute("ALTER TABLE attempts ADD COLUMN over_limit TEXT")
    db.execute("UPDATE attempts SET synced_at = finished_at WHERE decided = 'online' AND state = 'done'")
    db.execute("CREATE INDEX attempts_synced_at ON attempts (synced_at) WHERE synced_at IS NOT NULL")
    db.execute("CREATE INDEX attempts_status ON attempts (status)")


def voids(db: sqlite_utils.Database) -> None:
    # A manager's void of an accepted redemption: a record beside the attempt,
    # which stays as it was. `id` is the void's own idempotency key (its outbox
    # key); one void per attempt. origin: 'local' (made here, synced through
    # the outbox) or 'feed' (made at the backend, heard of through the feed).
    db.execute(
        """CREATE TABLE voids (
            id TEXT PRIMARY KEY,
            redemption_key TEXT NOT NULL UNIQUE REFERENCES attempts (key),
            reason TEXT NOT NULL,
            staff_id TEXT,
            at REAL NOT NULL,
            origin TEXT NOT NULL CHECK (origin IN ('local', 'feed')),
            synced_at REAL
        )"""
    )
    db.execute("CREATE INDEX voids_at ON voids (at)")


def printed_limits(db: sqlite_utils.Database) -> None:
    # A printed voucher's limit the backend answered `limit_reached` for online: the
    # backend counts every till, this till only what the feed told it, so the count
    # here may lag. `bound` (the limit then in force) is what the count was at
    # least at `at`, `own_since` this till's uses since: the offline verdict counts
    # max(its own count, bound + own_since). `scope` 'store_day' holds for `day`
    # only, 'total' (day '') until a raised limit passes it (docs/sync.md).
    db.execute(
        """CREATE TABLE printed_limits (
            voucher_id TEXT NOT NULL,
            scope TEXT NOT NULL CHECK (scope IN ('store_day', 'total')),
            store_id TEXT NOT NULL,
            day TEXT NOT NULL,
            bound INTEGER NOT NULL,
            own_since INTEGER NOT NULL DEFAULT 0,
            at REAL NOT NULL,
            PRIMARY KEY (voucher_id, scope, store_id, day)
        )"""
    )


def trust_no_till(db: sqlite_utils.Database) -> None:
    # A feed event this till could not apply: set aside with its reason (the
    # cursor moves on, the sync panel shows it), never retried for ever.
    db.execute(
        """CREATE TABLE feed_parked (
            seq INTEGER PRIMARY KEY,
            type TEXT,
            reason TEXT NOT NULL,
            data TEXT,
            at REAL NOT NULL
        )"""
    )
    # Claims are known by their short code's digest (pos_app.core.codes.claim_digest),
    # never the code: the table is refilled by the next catalog download, which
    # forgetting when the last one came asks for.
    db.execute("DROP TABLE claims")
    db.execute("CREATE TABLE claims (code_digest TEXT PRIMARY KEY, jti TEXT, voucher_id TEXT, expires_at FLOAT)")
    db.execute("DELETE FROM settings WHERE key = 'catalog_at'")
    # The salt of a staff member's second PIN derivation: a void made here
    # carries a MAC keyed by it, which proves the manager typed the PIN here.
    db.execute("ALTER TABLE staff ADD COLUMN proof_salt TEXT")
    # Wrong PINs at this till's login, kept over restarts.
    db.execute(
        """CREATE TABLE pin_failures (
            staff_id TEXT PRIMARY KEY,
            failures INTEGER NOT NULL,
            last_at REAL NOT NULL,
            locked_until REAL
        )"""
    )
    # The backend's judgement of an offline redemption, kept from its sync answer:
    # `dispute` (till_accepted | unproven | till_refused) where its verdict differs
    # from this till's, `backend_reason` its reason, `time_flag` (future | too_old)
    # where it could not believe the attempt's time (docs/sync.md, Entries are proofs).
    for column in ("dispute TEXT", "backend_reason TEXT", "time_flag TEXT"):
        db.execute(f"ALTER TABLE attempts ADD COLUMN {column}")
    # Whether the backend found this till's void proven by its manager's PIN
    # (1 / 0, from the sync answer); NULL: not yet answered, or synced before proofs.
    db.execute("ALTER TABLE voids ADD COLUMN verified INTEGER")


def kept_entries(db: sqlite_utils.Database) -> None:
    # Outbox entries the backend confirmed, kept for the retention period (setting
    # `retention_days`) instead of forgotten: a backend restored from a backup may
    # have lost them, and a till that sees its new epoch sends them again
    # (store/retention.py). `payload` is the entry as it was sent.
    db.execute(
        """CREATE TABLE kept_entries (
            key TEXT PRIMARY KEY,
            payload TEXT NOT NULL,
            confirmed_at REAL NOT NULL
        )"""
    )
    db.execute("CREATE INDEX kept_entries_confirmed_at ON kept_entries (confirmed_at)")


def honest_tills(db: sqlite_utils.Database) -> None:
    # The till's tamper-evident log: every attempt it finished and every void it made, in order, each
    # chained to the one before (`hash` = H(previous hash, `body`), pos_app.core.till_log). Written in the
    # record's own transaction; never updated or deleted.
    db.execute(
        """CREATE TABLE log_chain (
            seq INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,
            key TEXT NOT NULL,
            body TEXT NOT NULL,
            hash TEXT NOT NULL
        )"""
    )
    # The logs of this store's other tills as heard over the shop's LAN (pos_app/lan), each record checked
    # against the one before it: a copy of their chains, and what their records used up.
    db.execute(
        """CREATE TABLE lan_records (
            device_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            kind TEXT NOT NULL,
            key TEXT NOT NULL,
            body TEXT NOT NULL,
            hash TEXT NOT NULL,
            received_at REAL NOT NULL,
            PRIMARY KEY (device_id, seq)
        )"""
    )
    # A peer's printed-code use heard over the LAN, counted until the feed brings the same attempt (by its
    # key), which then counts it instead (`counted_by_feed` = 1; a feed that came first leaves such a row
    # too, so the LAN's copy arriving later counts nothing): never twice.
    db.execute(
        """CREATE TABLE lan_printed (
            key TEXT PRIMARY KEY,
            voucher_id TEXT NOT NULL,
            store_id TEXT NOT NULL,
            day TEXT NOT NULL,
            device_id TEXT,
            at REAL NOT NULL,
            counted_by_feed INTEGER NOT NULL DEFAULT 0
        )"""
    )
    db.execute("CREATE INDEX lan_printed_voucher ON lan_printed (voucher_id, store_id, day)")


MIGRATIONS = [initial_schema, sync_figures, voids, printed_limits, trust_no_till, kept_entries, honest_tills]
