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



def m003_booklet_editions(db: sqlite_utils.Database) -> None:
    # The monthly booklet: an edition, what is sold or listed in it, and its PDF.
    db.execute(
        """CREATE TABLE booklet_editions (
            id TEXT PRIMARY KEY,
            month TEXT NOT NULL,
            title TEXT NOT NULL,
            paper TEXT NOT NULL CHECK (paper IN ('A5', 'A6')),
            languages TEXT NOT NULL,
            pages INTEGER,
            origin TEXT NOT NULL CHECK (origin IN ('admin', 'schedule')),
            status TEXT NOT NULL CHECK (status IN ('draft', 'pending', 'rendering', 'done', 'failed')),
            error TEXT,
            layout TEXT,
            render_count INTEGER NOT NULL DEFAULT 0,
            render_started_at REAL,
            rendered_at REAL,
            created_at REAL NOT NULL
        )"""
    )
    db.execute("CREATE INDEX booklet_editions_month ON booklet_editions (month)")
    # One scheduled edition per month, whichever process gets there first.
    db.execute("CREATE UNIQUE INDEX booklet_one_scheduled_per_month ON booklet_editions (month) "
               "WHERE origin = 'schedule'")
    db.execute(
        """CREATE TABLE booklet_placements (
            id TEXT PRIMARY KEY,
            edition_id TEXT NOT NULL REFERENCES booklet_editions (id),
            size TEXT NOT NULL CHECK (size IN ('single', 'quarter', 'half', 'full')),
            content TEXT NOT NULL CHECK (content IN ('voucher', 'image', 'ad', 'sponsored')),
            voucher_id TEXT REFERENCES vouchers (id),
            code TEXT,
            advertiser TEXT NOT NULL,
            texts TEXT NOT NULL,
            image BLOB,
            premium INTEGER NOT NULL DEFAULT 0,
            price INTEGER NOT NULL,
            currency TEXT NOT NULL DEFAULT 'PYG',
            lock_page INTEGER,
            lock_position INTEGER,
            cover TEXT CHECK (cover IN ('front', 'inside_front', 'inside_back', 'back')),
            created_at REAL NOT NULL
        )"""
    )
    db.execute("CREATE INDEX booklet_placements_edition ON booklet_placements (edition_id)")
    db.execute("CREATE UNIQUE INDEX booklet_one_per_cover ON booklet_placements (edition_id, cover) "
               "WHERE cover IS NOT NULL")
    db.execute(
        """CREATE TABLE booklet_pdfs (
            edition_id TEXT PRIMARY KEY REFERENCES booklet_editions (id),
            pdf BLOB NOT NULL,
            sha256 TEXT NOT NULL,
            rendered_at REAL NOT NULL
        )"""
    )


def m004_voids(db: sqlite_utils.Database) -> None:
    # A manager's void of an accepted redemption, beside it (the attempt row
    # is never changed): one per redemption. `key` is the void's own
    # idempotency key (a till's outbox key, or made here for a void at the
    # backend); device_id is NULL for a void made at the backend, staff_id
    # NULL for one made with the admin token.
    db.execute(
        """CREATE TABLE voids (
            id INTEGER PRIMARY KEY,
            key TEXT NOT NULL UNIQUE,
            attempt_id INTEGER NOT NULL UNIQUE REFERENCES attempts (id),
            retailer_id TEXT NOT NULL,
            store_id TEXT NOT NULL,
            device_id TEXT,
            staff_id TEXT,
            reason TEXT NOT NULL,
            at REAL NOT NULL,
            received_at REAL NOT NULL
        )"""
    )


def m005_trust_no_till(db: sqlite_utils.Database) -> None:
    # Entries are proofs: what the till scanned (`input`) is judged here again.
    # The attempt's own columns are the backend's verdict; what the till said
    # is kept beside it (`till_verdict`, JSON: accepted, reason, kind,
    # voucher_id, jti, code; `till_at`, the time the till gave), and where the
    # two differ `dispute` names how (NULL: they agree). `time_flag` marks an
    # attempt whose claimed time lay outside what the backend could believe.
    # `body_hash`: an online redemption's request, so a key sent again with
    # another body is refused, not answered with the first.
    for column in ("input TEXT", "till_verdict TEXT", "till_at REAL", "dispute TEXT", "time_flag TEXT",
                   "body_hash TEXT"):
        db.execute(f"ALTER TABLE attempts ADD COLUMN {column}")
    db.execute("CREATE INDEX attempts_disputes ON attempts (retailer_id, received_at) WHERE dispute IS NOT NULL")
    # A till's void proves its manager with a MAC keyed by a second derivation
    # of the PIN (pos_app.core.pins): 1 proven, 0 not proven, NULL made before
    # proofs existed (or at the backend, where the caller was checked in person).
    db.execute("ALTER TABLE voids ADD COLUMN verified INTEGER")
    # The second derivation of a PIN, which tills never receive, and its salt, which they do.
    db.execute("ALTER TABLE staff ADD COLUMN proof_salt TEXT")
    db.execute("ALTER TABLE staff ADD COLUMN proof_key TEXT")
    # Whether a retailer's staff of no single store (head office) may log in at every till.
    db.execute("ALTER TABLE retailers ADD COLUMN staff_anywhere INTEGER NOT NULL DEFAULT 1")
    # An event for one store's tills only (a staff member of that store); NULL: every till of the retailer.
    db.execute("ALTER TABLE events ADD COLUMN store_id TEXT")
    # Staff events written before the scope: a member of one store is that store's tills' business only.
    db.execute("UPDATE events SET store_id = json_extract(data, '$.store_id') WHERE type = 'staff'")
    # Times tills take are bounded now (pos_app.core.wire.is_time): a voucher's window or a
    # claim's end set past them before would make every till refuse the whole catalog.
    from pos_app.core.wire import LATEST_TIME

    for table, column in (("vouchers", "valid_from"), ("vouchers", "valid_until"), ("claims", "expires_at")):
        db.execute(f"UPDATE {table} SET {column} = max(0, min({column}, ?)) WHERE {column} NOT BETWEEN 0 AND ?",
                   (int(LATEST_TIME), int(LATEST_TIME)))
    # Scoped admin tokens: 'all' (the platform operator) or 'claims' (the customer app).
    db.execute("ALTER TABLE admin_tokens ADD COLUMN scope TEXT NOT NULL DEFAULT 'all'")
    db.execute("ALTER TABLE admin_tokens ADD COLUMN name TEXT")
    # Wrong PINs per till and staff member, shared by every worker and kept over restarts;
    # bounded: only staff who exist get a row, one per (till, member).
    db.execute(
        """CREATE TABLE pin_failures (
            device_id TEXT NOT NULL,
            staff_id TEXT NOT NULL,
            failures INTEGER NOT NULL,
            first_at REAL NOT NULL,
            locked_until REAL,
            PRIMARY KEY (device_id, staff_id)
        )"""
    )
    # Tills know a claim's short code only by its digest (pos_app.core.codes.claim_digest);
    # the claims still outstanding get theirs now, later ones when they are made.
    db.execute("ALTER TABLE claims ADD COLUMN code_digest TEXT")
    import time

    from pos_app.core.codes import claim_digest

    rows = db.execute("SELECT jti, short_code, retailer_id FROM claims WHERE expires_at > ? AND revoked_at IS NULL",
                      (time.time() - 24 * 3600,)).fetchall()
    db.conn.executemany("UPDATE claims SET code_digest = ? WHERE jti = ?",
                        [(claim_digest(code, retailer), jti) for jti, code, retailer in rows])
    # Failed enrollments per client address, kept for a window (bounded by pruning).
    db.execute(
        """CREATE TABLE enrollment_failures (
            address TEXT PRIMARY KEY,
            failures INTEGER NOT NULL,
            first_at REAL NOT NULL,
            locked_until REAL
        )"""
    )


def m006_run_it_for_real(db: sqlite_utils.Database) -> None:
    """Issue 15: what lets an operator withdraw a till, a member of staff, a key or a token, and restore."""
    # A till's life as the operator sees it: withdrawn (`revoked_at`), its token replaced (`rolled_at`),
    # and what it last told us (`last_seen_at`, its version, its outbox's size and oldest entry).
    for column in ("revoked_at REAL", "revoked_by TEXT", "rolled_at REAL", "last_seen_at REAL",
                   "app_version TEXT", "outbox_size INTEGER", "outbox_oldest_at REAL"):
        db.execute(f"ALTER TABLE devices ADD COLUMN {column}")
    # A code that gives an enrolled till a new token (a roll), keeping its id, name and records.
    db.execute("ALTER TABLE enrollment_codes ADD COLUMN for_device TEXT")
    db.execute("ALTER TABLE staff ADD COLUMN disabled_at REAL")
    db.execute("ALTER TABLE staff ADD COLUMN updated_at REAL")
    # How long a till may decide personal codes offline without hearing from the backend.
    db.execute("ALTER TABLE retailers ADD COLUMN offline_days INTEGER NOT NULL DEFAULT 7")
    db.execute("ALTER TABLE admin_tokens ADD COLUMN expires_at REAL")
    # A signing key stops signing when retired, and stops verifying after `expires_at` (its last token's end).
    db.execute("ALTER TABLE signing_keys ADD COLUMN retired_at REAL")
    db.execute("ALTER TABLE signing_keys ADD COLUMN expires_at REAL")
    # Who did what: every admin and manager action, with what changed (JSON).
    db.execute(
        """CREATE TABLE audit_log (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at REAL NOT NULL,
            retailer_id TEXT,
            actor_kind TEXT NOT NULL,
            actor TEXT NOT NULL,
            address TEXT,
            action TEXT NOT NULL,
            target TEXT,
            detail TEXT
        )"""
    )
    db.execute("CREATE INDEX audit_log_retailer ON audit_log (retailer_id, id)")
    # The backend's identity and epoch: a restore gives it a new epoch, which tills notice (backup.md).
    db.execute("CREATE TABLE backend_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    import secrets

    db.execute("INSERT INTO backend_meta (key, value) VALUES ('backend_id', ?), ('epoch', ?), ('epoch_since', '0')",
               (secrets.token_hex(16), secrets.token_hex(8)))


def m007_web_console(db: sqlite_utils.Database) -> None:
    """Issue 16: the web console's sessions and forms, and the web till (a device of its own kind)."""
    # 'till': the program at a counter; 'web': the shop page in a browser, enrolled from the console.
    db.execute("ALTER TABLE devices ADD COLUMN kind TEXT NOT NULL DEFAULT 'till'")
    # A signed-in browser: the cookie's id kept only as a hash; who it is (an admin token's hash, a staff
    # member, a web till and its cashier), its form key, and when it was made and last used.
    db.execute(
        """CREATE TABLE console_sessions (
            id_hash TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            token_hash TEXT,
            staff_id TEXT,
            device_id TEXT,
            language TEXT NOT NULL,
            form_key TEXT NOT NULL,
            created_at REAL NOT NULL,
            seen_at REAL NOT NULL,
            expires_at REAL NOT NULL
        )"""
    )
    db.execute("CREATE INDEX console_sessions_expiry ON console_sessions (expires_at)")
    # Each form's token is good once: a second sending (a replay, a double click) is refused.
    db.execute(
        """CREATE TABLE console_form_uses (
            session_hash TEXT NOT NULL,
            nonce TEXT NOT NULL,
            at REAL NOT NULL,
            PRIMARY KEY (session_hash, nonce)
        )"""
    )
    db.execute("CREATE INDEX console_form_uses_at ON console_form_uses (at)")


def m008_tills_keep_each_other_honest(db: sqlite_utils.Database) -> None:
    """Issue 18: a till's tamper-evident log, its store's LAN keys, and the findings reconciliation raises."""
    # The till's own Ed25519 key (its public half, base64 of the 32 raw bytes), and what the backend holds of
    # its log: the last verified record (`log_seq`, `log_head`, the till's signature of it `log_head_sig`),
    # the head the till last signed and claimed (`log_claimed_seq`, at `log_claimed_at`), and what it reports
    # of entries the backend refused for good.
    for column in ("log_key TEXT", "log_seq INTEGER NOT NULL DEFAULT 0", "log_head TEXT",
                   "log_head_sig TEXT", "log_claimed_seq INTEGER", "log_claimed_at REAL", "parked_size INTEGER",
                   "parked_oldest_at REAL"):
        db.execute(f"ALTER TABLE devices ADD COLUMN {column}")
    # Every record of every till's log, as the till chained it (`body` the exact text hashed).
    db.execute(
        """CREATE TABLE till_log (
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
    db.execute("CREATE INDEX till_log_key ON till_log (device_id, key)")
    # Records the backend held and cut off because the till's chain differed from them (an edit, a rewind):
    # kept, never deleted, so a till cannot erase what the backend checked by sending another chain.
    db.execute(
        """CREATE TABLE till_log_cut (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            device_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            kind TEXT NOT NULL,
            key TEXT NOT NULL,
            body TEXT NOT NULL,
            hash TEXT NOT NULL,
            received_at REAL NOT NULL,
            cut_at REAL NOT NULL
        )"""
    )
    db.execute("CREATE INDEX till_log_cut_device ON till_log_cut (device_id, seq)")
    # The keys a store's tills authenticate each other with on the shop's LAN; the newest unretired one is
    # active, a retired one still verifies until `expires_at` (tills that have not yet heard of the new one).
    db.execute(
        """CREATE TABLE store_lan_keys (
            kid TEXT PRIMARY KEY,
            store_id TEXT NOT NULL,
            secret TEXT NOT NULL,
            created_at REAL NOT NULL,
            retired_at REAL,
            expires_at REAL
        )"""
    )
    db.execute("CREATE INDEX store_lan_keys_store ON store_lan_keys (store_id, created_at)")
    # What a check found wrong (a till's log, reconciliation's counts): open until a person resolves it.
    # `subject` names the thing found (one open finding per code and subject); `gone_at`: the condition was
    # no longer seen since (the finding stays until resolved).
    db.execute(
        """CREATE TABLE findings (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            retailer_id TEXT,
            store_id TEXT,
            device_id TEXT,
            code TEXT NOT NULL,
            subject TEXT NOT NULL,
            detail TEXT NOT NULL,
            opened_at REAL NOT NULL,
            seen_at REAL NOT NULL,
            gone_at REAL,
            resolved_at REAL,
            resolved_by TEXT,
            resolution TEXT
        )"""
    )
    db.execute("CREATE UNIQUE INDEX findings_one_open ON findings (code, subject) WHERE resolved_at IS NULL")
    db.execute("CREATE INDEX findings_retailer ON findings (retailer_id, id)")
    # The feed's redemption event names its attempt's key: a till that heard of it over the LAN counts it once.
    db.execute("DROP TRIGGER attempts_feed_event")
    db.execute(
        """CREATE TRIGGER attempts_feed_event AFTER INSERT ON attempts
        WHEN NEW.status = 'accepted'
        BEGIN
            INSERT INTO events (retailer_id, type, origin_device, data, at)
            VALUES (NEW.retailer_id, 'redemption', NEW.device_id,
                    json_object('jti', NEW.jti, 'voucher_id', NEW.voucher_id, 'kind', NEW.kind,
                                'code', NEW.code, 'store_id', NEW.store_id,
                                'till', (SELECT name FROM devices WHERE id = NEW.device_id),
                                'at', NEW.at, 'key', NEW.key),
                    NEW.received_at);
        END"""
    )


MIGRATIONS = [m001_initial, m002_redemption_events_by_trigger, m003_booklet_editions, m004_voids,
              m005_trust_no_till, m006_run_it_for_real, m007_web_console, m008_tills_keep_each_other_honest]
