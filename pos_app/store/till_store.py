"""The till's embedded store: what a till must know to decide offline, and
what it must never lose once a cashier has seen a verdict.

One SQLite file holds the catalog, the used token ids, every redemption
attempt and the sync outbox. A verdict and everything it implies (attempt,
used `jti`, printed count, outbox entry) are written in one transaction, so
a crash, a power cut or a full disk leaves either all of it or none.

A store belongs to the thread that opened it (sqlite's check_same_thread):
the GUI gives all store work to one worker thread.
"""

from __future__ import annotations

import bisect
import json
import logging
import math
import sqlite3
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping

from .. import resources
from ..core import migrate, pins, tokens, voids as void_rules
from ..core.domain import IDEMPOTENCY_KEY, Claim, Method, UsedToken, Verdict, Voucher
from ..core.verdict import STORE_DAY_LIMIT, Context, decide, local_day, reached_limit

from . import settings, wire
from .wire import DEFAULT_TIMEZONE
from .schema import MIGRATIONS

log = logging.getLogger(__name__)

# Public keys shipped with the till (assets/keys in a checkout, the package's own copy when installed).
ASSET_KEYS_DIR = resources.directory("keys")
MAX_INPUT_STORED = 4096
# Accepted attempt times kept in memory for the scan-velocity check.
_RECENT_KEPT = 1024
# A measured skew below this is the request's own latency, not a wrong clock.
SKEW_NOISE_S = 1.0
MAX_REQUEUED = 1_000_000  # entries put back from a damaged store: far past any real outbox
MAX_LIMIT = 1_000_000_000  # a remembered limit beyond any real one is a broken answer: ignored
# Attempts sampled for the delay percentiles: the recent past, at a bounded cost.
DELAY_SAMPLE = 1000


class TillStore:
    """The till's SQLite store; also the `RedemptionState` offline verdicts read."""

    def __init__(self, path: str | Path, *, device_name: str = "",
                 asset_keys_dir: Path | None = ASSET_KEYS_DIR):
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
        self._default_device_name = device_name
        self._asset_keys_dir = asset_keys_dir
        self._trust: tokens.TrustSet | None = None
        # Decoded caches: the verdict reads these on every scan, so they must
        # cost a dict lookup, not a query and a JSON decode.
        self._settings: dict[str, Any] = {}
        self._vouchers: dict[str, Voucher] = {}
        self._printed: dict[str, str] = {}
        self._revoked: set[str] = set()
        # Times of accepted attempts, sorted; it holds every one later than
        # `_accepts_floor`, so the velocity check needs no query.
        self._accepts: list[float] = []
        self._accepts_floor = float("-inf")
        self._load_settings()
        self._load_catalog_caches()
        self._load_accepts()

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> "TillStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[None]:
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

    # --- settings -------------------------------------------------------------

    def _load_settings(self) -> None:
        rows = self._conn.execute("SELECT key, value FROM settings").fetchall()
        self._settings = {key: json.loads(value) for key, value in rows}

    def _put(self, key: str, value: Any) -> str:
        text = json.dumps(value)
        self._conn.execute(
            "INSERT INTO settings (key, value) VALUES (?, ?)"
            " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, text),
        )
        return text

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
        self._settings[key] = json.loads(self._put(key, value))

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
        return self._settings.get("device_name") or self._default_device_name

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

    def save_enrollment(self, enroll_json: Mapping[str, Any], server_url: str, *,
                        name: str | None = None) -> None:
        """Keep the answer of `POST /devices/enroll`: identity, token and keys.

        `name` is the name the till enrolled with (the answer does not repeat it).
        """
        facts, keys = wire.parse_enrollment(enroll_json)
        name = name or enroll_json.get("name") or self._default_device_name
        with self._transaction():
            self._put("server_url", str(server_url))
            for setting, value in facts.items():
                self._put(setting, value)
            self._put("device_name", str(name))
            self._conn.executemany("INSERT OR REPLACE INTO keys (kid, pem) VALUES (?, ?)", keys)
        self._load_settings()
        self._trust = None

    # --- catalog and feed -----------------------------------------------------

    def _load_catalog_caches(self) -> None:
        self._vouchers = {vid: Voucher.from_json(json.loads(data))
                          for vid, data in self._conn.execute("SELECT id, data FROM vouchers")}
        self._printed = dict(self._conn.execute("SELECT code, voucher_id FROM printed_codes"))
        self._revoked = {jti for (jti,) in self._conn.execute("SELECT jti FROM revoked")}

    def apply_catalog(self, catalog: Mapping[str, Any]) -> None:
        """Replace the catalog with `GET /catalog`'s answer; ValueError if malformed."""
        parsed = wire.parse_catalog(catalog, known_retailer=self.retailer_id, known_store=self.store_id)
        with self._transaction():
            for table in ("keys", "vouchers", "printed_codes", "claims", "staff", "revoked"):
                self._conn.execute(f"DELETE FROM {table}")
            self._conn.executemany("INSERT OR REPLACE INTO keys (kid, pem) VALUES (?, ?)", parsed.keys)
            self._conn.executemany(
                "INSERT OR REPLACE INTO vouchers (id, data, kind, status) VALUES (?, ?, ?, ?)",
                [_voucher_row(v) for v in parsed.vouchers])
            self._conn.executemany(
                "INSERT OR REPLACE INTO printed_codes (code, voucher_id) VALUES (?, ?)", parsed.printed_codes)
            self._conn.executemany(
                "INSERT OR REPLACE INTO claims (short_code, jti, voucher_id, expires_at)"
                " VALUES (?, ?, ?, ?)", parsed.claims)
            self._conn.executemany(
                "INSERT OR REPLACE INTO staff (id, name, role, pin_hash, store_id)"
                " VALUES (?, ?, ?, ?, ?)", parsed.staff)
            self._conn.executemany("INSERT OR IGNORE INTO revoked (jti) VALUES (?)",
                                   [(jti,) for jti in parsed.revoked])
            self._put("retailer_id", parsed.retailer_id)
            self._put("retailer_name", parsed.retailer_name)
            self._put("store_id", parsed.store_id)
            self._put("store_name", parsed.store_name)
            self._put("store_timezone", parsed.timezone)
            self._put("catalog_at", time.time())
            if parsed.server_time is not None:
                self._put("catalog_server_time", parsed.server_time)
        self._load_settings()
        self._load_catalog_caches()
        self._trust = None

    def apply_feed(self, events: list[Mapping[str, Any]], cursor: int) -> None:
        """Apply a page of `GET /feed` and keep its cursor, in one transaction.

        Re-applying a page changes nothing; unknown event types are skipped.
        """
        parsed = wire.parse_feed(events, cursor)
        timezone = self.store_timezone
        with self._transaction():
            for seq, kind, data in parsed:
                if kind == "redemption":
                    self._feed_redemption(seq, data, timezone)
                elif kind == "voucher":
                    self._conn.execute(
                        "INSERT OR REPLACE INTO vouchers (id, data, kind, status) VALUES (?, ?, ?, ?)",
                        _voucher_row(data))
                elif kind == "claim":
                    self._conn.execute(
                        "INSERT OR REPLACE INTO claims (short_code, jti, voucher_id, expires_at)"
                        " VALUES (?, ?, ?, ?)", data)
                elif kind == "printed_code":
                    self._conn.execute(
                        "INSERT OR REPLACE INTO printed_codes (code, voucher_id) VALUES (?, ?)", data)
                elif kind == "revocation":
                    self._conn.execute("INSERT OR IGNORE INTO revoked (jti) VALUES (?)", (data,))
                elif kind == "staff":
                    self._conn.execute(
                        "INSERT OR REPLACE INTO staff (id, name, role, pin_hash, store_id)"
                        " VALUES (?, ?, ?, ?, ?)", data)
                elif kind == "void":
                    self._feed_void(data)
            self._put("feed_cursor", cursor)
        self._settings["feed_cursor"] = cursor
        if any(kind in ("voucher", "printed_code", "revocation") for _, kind, _ in parsed):
            self._load_catalog_caches()

    def _feed_redemption(self, seq: int, data: Mapping[str, Any], timezone: str) -> None:
        seen = self._conn.execute("INSERT OR IGNORE INTO feed_seen (seq) VALUES (?)", (seq,))
        if seen.rowcount == 0:
            return
        at = float(data["at"])
        if data.get("kind") == "printed":
            # Counted on our store's calendar: only our store's per-day count
            # is ever checked here, and the total ignores days.
            self._count_printed_use(data["voucher_id"], data.get("store_id") or "",
                                    local_day(at, timezone))
        elif data.get("jti"):
            # The first redemption we heard of stays: it is what the cashier is told.
            self._conn.execute(
                "INSERT OR IGNORE INTO used_tokens (jti, at, till, store_id, origin)"
                " VALUES (?, ?, ?, ?, 'feed')",
                (data["jti"], at, str(data.get("till") or ""), str(data.get("store_id") or "")))

    def _feed_void(self, data: Mapping[str, Any]) -> None:
        """A void made at the backend (a manager there, or another till) of one of this till's
        redemptions, kept so this till's report agrees with the backend's. Voids of other tills'
        redemptions change nothing here: their codes stay used (see `void`)."""
        self._conn.execute(
            "INSERT OR IGNORE INTO voids (id, redemption_key, reason, staff_id, at, origin, synced_at)"
            " SELECT ?, key, ?, ?, ?, 'feed', ? FROM attempts WHERE key = ?",
            (data["id"], data["reason"], data.get("staff_id"), float(data["at"]), float(data["at"]),
             data["redemption_key"]))

    def _count_printed_use(self, voucher_id: str, store_id: str, day: str) -> None:
        self._conn.execute(
            "INSERT INTO printed_uses (voucher_id, store_id, day, count) VALUES (?, ?, ?, 1)"
            " ON CONFLICT(voucher_id, store_id, day) DO UPDATE SET count = count + 1",
            (voucher_id, store_id, day))

    # --- deciding ---------------------------------------------------------------

    def trust_set(self) -> tokens.TrustSet:
        """The keys tokens may be signed with: enrolled/catalog keys plus bundled ones."""
        if self._trust is None:
            pems = [pem for (pem,) in self._conn.execute("SELECT pem FROM keys")]
            if self._asset_keys_dir is not None and self._asset_keys_dir.is_dir():
                for file in sorted(self._asset_keys_dir.glob("*.pem")):
                    try:
                        pem = file.read_text()
                        tokens.TrustSet.from_pems([pem])
                    except (ValueError, OSError):
                        # One bad bundled file must not stop the till trusting the others.
                        log.error("ignoring unusable key file %s", file)
                        continue
                    pems.append(pem)
            self._trust = tokens.TrustSet.from_pems(pems)
        return self._trust

    def context(self, now: float | None = None, leeway: float | None = None) -> Context:
        """Who decides, and when, for an offline verdict (settings: leeway_s, velocity_limit)."""
        # Token and voucher times are the backend's: judge them on its clock.
        now = (time.time() if now is None else float(now)) - self.clock_skew()
        if leeway is None:
            leeway = settings.value(self, "leeway_s")
        return Context(trust=self.trust_set(), retailer_id=self.retailer_id, store_id=self.store_id,
                       now=now, day=local_day(now, self.store_timezone), leeway=leeway,
                       velocity_limit=settings.value(self, "velocity_limit"))

    def clock_skew(self) -> float:
        """This till's clock minus the backend's, as last measured; 0 when unknown or within noise."""
        skew = self._settings.get("clock_skew_s")
        if isinstance(skew, bool) or not isinstance(skew, (int, float)) or not math.isfinite(skew):
            return 0.0
        return float(skew) if abs(skew) >= SKEW_NOISE_S else 0.0

    def voucher(self, voucher_id: str) -> Voucher | None:
        return self._vouchers.get(voucher_id)

    def vouchers(self) -> list[Voucher]:
        return list(self._vouchers.values())

    def printed_voucher(self, code: str) -> Voucher | None:
        voucher_id = self._printed.get(code)
        return None if voucher_id is None else self._vouchers.get(voucher_id)

    def claim(self, short_code: str) -> Claim | None:
        row = self._conn.execute(
            "SELECT jti, voucher_id, expires_at FROM claims WHERE short_code = ?", (short_code,)
        ).fetchone()
        return None if row is None else Claim(short_code, row[0], row[1], row[2])

    def used(self, jti: str) -> UsedToken | None:
        row = self._conn.execute(
            "SELECT at, till, store_id FROM used_tokens WHERE jti = ?", (jti,)).fetchone()
        return None if row is None else UsedToken(jti, row[0], row[1] or "", row[2] or "")

    def revoked(self, jti: str) -> bool:
        return jti in self._revoked

    def printed_uses(self, voucher_id: str, store_id: str, day: str) -> tuple[int, int]:
        """(uses at this store on this day, uses in all) of a printed voucher.

        Each is at least what the backend last said it was, plus this till's uses
        since: a limit it answered `limit_reached` for online (`printed_limits`), as
        the feed may not have brought every till's uses yet. A raised limit passes
        that bound; the feed's uses, once heard, are not counted twice."""
        row = self._conn.execute(
            "SELECT coalesce(sum(count), 0),"
            " coalesce(sum(CASE WHEN store_id = ? AND day = ? THEN count END), 0)"
            " FROM printed_uses WHERE voucher_id = ?", (store_id, day, voucher_id)).fetchone()
        at_store_today, in_all = row[1], row[0]
        for scope, bound in self._conn.execute(
                "SELECT scope, bound + own_since FROM printed_limits WHERE voucher_id = ?"
                " AND ((scope = 'store_day' AND store_id = ? AND day = ?) OR scope = 'total')",
                (voucher_id, store_id, day)):
            if scope == "total":
                in_all = max(in_all, bound)
            else:
                at_store_today = max(at_store_today, bound)
        return at_store_today, in_all

    def printed_limits(self) -> list[dict]:
        """The limits the backend answered `limit_reached` for, as this till keeps them (oldest first)."""
        cursor = self._conn.execute(
            "SELECT voucher_id, scope, store_id, day, bound, own_since, at FROM printed_limits ORDER BY at, voucher_id")
        return [dict(zip(("voucher_id", "scope", "store_id", "day", "bound", "own_since", "at"), row))
                for row in cursor]

    def _remember_limit(self, verdict: Verdict, at: float) -> None:
        """Keep the backend's `limit_reached` for a printed voucher, so the offline verdict refuses it too."""
        name = reached_limit(verdict)
        if name is None:
            return
        voucher = verdict.voucher
        # The bound is the limit the backend judged by: its voucher, else ours.
        bound = getattr(voucher, name)
        if not isinstance(bound, int) or isinstance(bound, bool) or not 0 <= bound <= MAX_LIMIT:
            return
        day = local_day(at - self.clock_skew(), self.store_timezone)  # the day context() judges by
        scope = "store_day" if name == STORE_DAY_LIMIT else "total"
        self._conn.execute(
            "INSERT INTO printed_limits (voucher_id, scope, store_id, day, bound, at) VALUES (?, ?, ?, ?, ?, ?)"
            " ON CONFLICT(voucher_id, scope, store_id, day) DO UPDATE SET bound = excluded.bound,"
            " own_since = 0, at = excluded.at",
            (voucher.id, scope, self.store_id, day if scope == "store_day" else "", bound, at))
        # A day's limit says nothing about another day: earlier days' are dropped.
        self._conn.execute("DELETE FROM printed_limits WHERE scope = 'store_day' AND day < ?", (day,))

    def recent_accepts(self, since: float) -> int:
        """Accepted redemptions at this till since an epoch time (on the backend's clock, as context())."""
        # Attempts keep this till's own clock; context() moved `now` to the backend's.
        since += self.clock_skew()
        if since > self._accepts_floor:
            return len(self._accepts) - bisect.bisect_left(self._accepts, since)
        return self._conn.execute(
            "SELECT count(*) FROM attempts WHERE at >= ? AND accepted = 1", (since,)).fetchone()[0]

    def _load_accepts(self) -> None:
        times = [at for (at,) in self._conn.execute(
            "SELECT at FROM attempts WHERE accepted = 1 ORDER BY at DESC LIMIT ?", (_RECENT_KEPT + 1,))]
        if len(times) > _RECENT_KEPT:
            self._accepts_floor = times.pop()
        self._accepts = times[::-1]

    def _note_accept(self, at: float) -> None:
        """Remember a committed acceptance for `recent_accepts`."""
        if at > self._accepts_floor:
            bisect.insort(self._accepts, at)
        if len(self._accepts) > 2 * _RECENT_KEPT:
            self._accepts_floor = self._accepts[_RECENT_KEPT - 1]
            del self._accepts[:_RECENT_KEPT]

    # --- redeeming --------------------------------------------------------------

    def redeem_offline(self, text: str | bytes, *, method: str, staff_id: str | None = None,
                       now: float | None = None, printed_only: bool = False,
                       key: str | None = None) -> tuple[Verdict, str]:
        """Decide locally and record the verdict; returns it and the attempt id.

        With `key` of a pending online attempt, that attempt is decided and
        finished; with the key of a finished one, its verdict is returned again.
        """
        _check_method(method)
        if key is not None:
            _check_key(key)
        now = time.time() if now is None else float(now)
        with self._transaction():
            row = None if key is None else self._attempt_row(key)
            if row is not None and row["state"] == "done":
                return Verdict.from_json(json.loads(row["verdict"])), row["id"]
            ctx = self.context(now)
            verdict = decide(text, self, ctx, printed_only=printed_only)
            attempt = _attempt_values(verdict)
            if row is None:
                attempt_id, key, at = uuid.uuid4().hex, key or uuid.uuid4().hex, now
                self._conn.execute(
                    "INSERT INTO attempts (id, key, at, input, method, staff_id, state)"
                    " VALUES (?, ?, ?, ?, ?, ?, 'pending')",
                    (attempt_id, key, at, _stored_input(text), method, staff_id))
            else:
                # Keep the scan's own time: the fallback happens later than the scan.
                attempt_id, at = row["id"], row["at"]
            self._finish(attempt_id, attempt, verdict, "offline", now)
            self._record_effects(verdict, at, ctx.day)
            entry = dict(attempt, key=key, at=at, method=method, staff_id=staff_id, decided="offline")
            self._conn.execute(
                "INSERT INTO outbox (key, payload, created_at) VALUES (?, ?, ?)",
                (key, json.dumps({name: entry[name] for name in wire.ENTRY_FIELDS}), now))
        if verdict.accepted:
            self._note_accept(at)
        return verdict, attempt_id

    def begin_online(self, text: str | bytes, *, method: str, staff_id: str | None = None,
                     now: float | None = None) -> str:
        """Write a pending attempt before asking the backend; returns its idempotency key."""
        _check_method(method)
        now = time.time() if now is None else float(now)
        key = uuid.uuid4().hex
        with self._transaction():
            self._conn.execute(
                "INSERT INTO attempts (id, key, at, input, method, staff_id, state)"
                " VALUES (?, ?, ?, ?, ?, ?, 'pending')",
                (uuid.uuid4().hex, key, now, _stored_input(text), method, staff_id))
        return key

    def finish_online(self, key: str, verdict: Verdict, *, now: float | None = None) -> str:
        """Record the backend's verdict for a pending attempt; returns the attempt id.

        Nothing goes to the outbox: the backend has it already. A finished
        attempt is left as it is.
        """
        now = time.time() if now is None else float(now)
        with self._transaction():
            row = self._attempt_row(key)
            if row is None:
                raise KeyError(f"no attempt has the key {key!r}")
            if row["state"] == "done":
                return row["id"]
            self._finish(row["id"], _attempt_values(verdict), verdict, "online", now, synced_at=now)
            self._record_effects(verdict, row["at"], local_day(row["at"], self.store_timezone))
            self._remember_limit(verdict, row["at"])
            if verdict.used is not None and verdict.jti:
                # The backend's knowledge of an earlier redemption is ours now too.
                used = verdict.used
                self._conn.execute(
                    "INSERT OR IGNORE INTO used_tokens (jti, at, till, store_id, origin)"
                    " VALUES (?, ?, ?, ?, 'feed')",
                    (used.jti or verdict.jti, used.at, used.till, used.store_id))
        if verdict.accepted:
            self._note_accept(row["at"])
        return row["id"]

    def pending_online(self, begun_before: float | None = None) -> list[dict]:
        """Attempts begun online but never finished (a crash, a lost answer), oldest first;
        only those begun before `begun_before` when given."""
        cursor = self._conn.execute(
            "SELECT key, input, method, staff_id, at FROM attempts WHERE state = 'pending' AND at < ? ORDER BY at",
            (float("inf") if begun_before is None else begun_before,))
        return [dict(zip(("key", "input", "method", "staff_id", "at"), row)) for row in cursor]

    def abandon_pending(self, key: str, *, now: float | None = None) -> None:
        """Close a pending attempt the backend never received: no verdict was
        ever shown for it, so it becomes no redemption (and nothing to sync)."""
        with self._transaction():
            self._conn.execute(
                "UPDATE attempts SET state = 'abandoned', finished_at = ? WHERE key = ? AND state = 'pending'",
                (time.time() if now is None else now, key))

    def _attempt_row(self, key: str) -> dict | None:
        cursor = self._conn.execute("SELECT id, at, state, verdict FROM attempts WHERE key = ?", (key,))
        row = cursor.fetchone()
        return None if row is None else dict(zip(("id", "at", "state", "verdict"), row))

    def _finish(self, attempt_id: str, attempt: dict, verdict: Verdict, decided: str, now: float,
                synced_at: float | None = None) -> None:
        self._conn.execute(
            "UPDATE attempts SET state = 'done', accepted = :accepted, reason = :reason, kind = :kind,"
            " source = :source, voucher_id = :voucher_id, jti = :jti, code = :code,"
            " decided = :decided, status = :status, verdict = :verdict, finished_at = :now,"
            " synced_at = :synced_at WHERE id = :id",
            dict(attempt, source=verdict.source, decided=decided, id=attempt_id, now=now, synced_at=synced_at,
                 status="accepted" if verdict.accepted else "refused",
                 verdict=json.dumps(verdict.to_json())))

    def _record_effects(self, verdict: Verdict, at: float, day: str) -> None:
        if not verdict.accepted:
            return
        if verdict.kind == "personal" and verdict.jti:
            # REPLACE: offline, decide() has just seen no row; online, the
            # backend's acceptance outranks whatever the feed told us.
            self._conn.execute(
                "INSERT OR REPLACE INTO used_tokens (jti, at, till, store_id, origin) VALUES (?, ?, ?, ?, 'local')",
                (verdict.jti, at, self.device_name, self.store_id))
        elif verdict.kind == "printed" and verdict.voucher is not None:
            self._count_printed_use(verdict.voucher.id, self.store_id, day)
            self._conn.execute(
                "UPDATE printed_limits SET own_since = own_since + 1 WHERE voucher_id = ?"
                " AND (scope = 'total' OR (store_id = ? AND day = ?))", (verdict.voucher.id, self.store_id, day))

    # --- voids --------------------------------------------------------------------

    def void(self, key: str, *, reason: str, staff_id: str, now: float | None = None) -> dict:
        """Void this till's accepted redemption `key`: the void record, queued for the backend.

        The attempt row is never changed. A voided redemption does not make
        its code usable again (nor a printed code's use uncounted): the
        discount was given, and voiding only corrects the accounts.
        Raises `pos_app.core.voids.VoidError` (codes forbidden, invalid_value,
        not_found, not_accepted, already_voided).
        """
        member = self.staff_member(staff_id) if isinstance(staff_id, str) else None
        if member is not None and member["store_id"] not in (None, self.store_id):
            member = None  # another store's staff cannot log in here either
        void_rules.check_staff(member["role"] if member else None)
        text = void_rules.check_reason(reason)
        if not isinstance(key, str):
            raise void_rules.VoidError(void_rules.VoidError.INVALID_VALUE, "a redemption key is a text")
        now = time.time() if now is None else float(now)
        void_id = uuid.uuid4().hex
        with self._transaction():
            row = self._conn.execute(
                "SELECT a.state, a.status, v.id FROM attempts a LEFT JOIN voids v ON v.redemption_key = a.key"
                " WHERE a.key = ?", (key,)).fetchone()
            status = None if row is None else (row[1] if row[0] == "done" else "pending")
            void_rules.check_target(status, voided=row is not None and row[2] is not None)
            self._conn.execute(
                "INSERT INTO voids (id, redemption_key, reason, staff_id, at, origin) VALUES (?, ?, ?, ?, ?, 'local')",
                (void_id, key, text, staff_id, now))
            entry = {"type": "void", "key": void_id, "at": now, "redemption_key": key, "void_reason": text,
                     "staff_id": staff_id}
            self._conn.execute("INSERT INTO outbox (key, payload, created_at) VALUES (?, ?, ?)",
                               (void_id, json.dumps(entry), now))
        return self._void_rows("v.id = ?", (void_id,))[0]

    def voids(self, since: float | None = None, until: float | None = None) -> list[dict]:
        """Voids made with since <= at < until, oldest first, each with its sync state:
        queued, synced, parked (refused by the backend; `parked_reason` says why)."""
        return self._void_rows("v.at >= ? AND v.at < ?",
                               (float("-inf") if since is None else since, float("inf") if until is None else until))

    def _void_rows(self, where: str, params: tuple) -> list[dict]:
        cursor = self._conn.execute(
            "SELECT v.id, v.redemption_key, v.reason, v.staff_id, v.at, v.origin, v.synced_at, o.parked_reason,"
            " o.seq IS NOT NULL FROM voids v LEFT JOIN outbox o ON o.key = v.id"
            f" WHERE {where} ORDER BY v.at, v.id", params)
        out = []
        for void_id, redemption_key, reason, staff_id, at, origin, synced_at, parked, queued in cursor:
            state = "parked" if parked is not None else ("queued" if queued else "synced")
            out.append({"id": void_id, "redemption_key": redemption_key, "reason": reason, "staff_id": staff_id,
                        "at": at, "origin": origin, "synced_at": synced_at, "state": state,
                        "parked_reason": parked})
        return out

    # --- outbox -------------------------------------------------------------------

    def requeue(self, entries: list[Mapping[str, Any]], *, now: float | None = None) -> int:
        """Put back outbox entries exported from this till's damaged store (store/recovery.py); returns how many.

        Each goes to the outbox as it was, key and all: the backend keeps a key it already has only once
        (`duplicate`), so sending one twice is harmless, while not sending it would lose a redemption. An
        accepted personal code is marked used here and a printed code's use counted, so the fresh store
        does not redeem them again offline before the backend has them. An entry that is not one this
        till could have written (the file was damaged) is left out; the exported file keeps it."""
        now = time.time() if now is None else float(now)
        put = 0
        with self._transaction():
            for entry in entries[:MAX_REQUEUED]:
                payload = entry.get("payload") if isinstance(entry, Mapping) else None
                if not wire.is_outbox_entry(payload):
                    continue
                added = self._conn.execute(
                    "INSERT OR IGNORE INTO outbox (key, payload, created_at) VALUES (?, ?, ?)",
                    (payload["key"], json.dumps(payload), now)).rowcount
                put += added
                if not added or payload.get("type") == "void" or payload.get("accepted") is not True:
                    continue
                if payload.get("kind") == "personal" and isinstance(payload.get("jti"), str):
                    self._conn.execute(
                        "INSERT OR IGNORE INTO used_tokens (jti, at, till, store_id, origin)"
                        " VALUES (?, ?, ?, ?, 'local')", (payload["jti"], payload["at"], self.device_name,
                                                          self.store_id))
                elif payload.get("kind") == "printed" and isinstance(payload.get("voucher_id"), str):
                    self._count_printed_use(payload["voucher_id"], self.store_id,
                                            local_day(payload["at"], self.store_timezone))
        return put

    def outbox_batch(self, limit: int = 500) -> list[dict]:
        """The next sync Entries to send, oldest first, parked ones left out."""
        cursor = self._conn.execute(
            "SELECT payload FROM outbox WHERE parked_reason IS NULL ORDER BY seq LIMIT ?", (limit,))
        return [json.loads(payload) for (payload,) in cursor]

    def outbox_confirm(self, results: list[Mapping[str, Any]], *, now: float | None = None) -> None:
        """Take the backend's `/sync` results: confirmed entries leave the outbox."""
        now = time.time() if now is None else float(now)
        with self._transaction():
            for result in results:
                key, status = result.get("key"), result.get("status")
                if status in ("recorded", "duplicate", "conflict"):
                    over_limit = result.get("over_limit")
                    self._conn.execute(
                        "UPDATE attempts SET synced_at = coalesce(synced_at, ?),"
                        " over_limit = coalesce(?, over_limit) WHERE key = ?",
                        (now, over_limit if isinstance(over_limit, str) else None, key))
                if status in ("recorded", "duplicate"):
                    self._conn.execute("DELETE FROM outbox WHERE key = ?", (key,))
                    self._conn.execute("UPDATE voids SET synced_at = coalesce(synced_at, ?) WHERE id = ?",
                                       (now, key))
                elif status == "conflict":
                    winner = result.get("winner") or {}
                    self._conn.execute("DELETE FROM outbox WHERE key = ?", (key,))
                    self._conn.execute(
                        "UPDATE attempts SET status = 'conflict', conflict = ? WHERE key = ?",
                        (json.dumps(winner), key))
                    if winner.get("jti"):
                        # The backend's first redemption is the one every till should tell of.
                        self._conn.execute(
                            "INSERT OR REPLACE INTO used_tokens (jti, at, till, store_id, origin)"
                            " VALUES (?, ?, ?, ?, 'feed')",
                            (winner["jti"], winner.get("at"), winner.get("till") or "",
                             winner.get("store_id") or ""))
                else:
                    log.warning("sync result %r for %r left in the outbox", status, key)

    def outbox_park(self, key: str, reason: str) -> None:
        """Set an entry aside that the backend refused for good (a permanent 4xx)."""
        self._conn.execute("UPDATE outbox SET parked_reason = ? WHERE key = ?", (reason, key))

    def outbox_unpark(self, keys: list[str] | None = None) -> int:
        """Put parked entries (all, or these keys) back in line, e.g. after the backend was fixed."""
        with self._transaction():
            if keys is None:
                cursor = self._conn.execute("UPDATE outbox SET parked_reason = NULL WHERE parked_reason IS NOT NULL")
                return cursor.rowcount
            return sum(self._conn.execute("UPDATE outbox SET parked_reason = NULL WHERE key = ?", (key,)).rowcount
                       for key in keys)

    def outbox_note_failure(self, keys: list[str], error: str) -> None:
        with self._transaction():
            self._conn.executemany(
                "UPDATE outbox SET tries = tries + 1, last_error = ? WHERE key = ?",
                [(error, key) for key in keys])

    def outbox_size(self) -> int:
        return self._conn.execute(
            "SELECT count(*) FROM outbox WHERE parked_reason IS NULL").fetchone()[0]

    def parked(self) -> list[dict]:
        cursor = self._conn.execute(
            "SELECT seq, key, payload, created_at, tries, last_error, parked_reason"
            " FROM outbox WHERE parked_reason IS NOT NULL ORDER BY seq")
        names = ("seq", "key", "payload", "created_at", "tries", "last_error", "parked_reason")
        rows = [dict(zip(names, row)) for row in cursor]
        for row in rows:
            row["payload"] = json.loads(row["payload"])
        return rows

    # --- reports and staff ------------------------------------------------------

    def attempts(self, since: float | None = None, until: float | None = None) -> list[dict]:
        """Attempts with since <= at < until, oldest first, JSON columns decoded."""
        cursor = self._conn.execute(
            "SELECT * FROM attempts WHERE at >= ? AND at < ? ORDER BY at",
            (float("-inf") if since is None else since, float("inf") if until is None else until))
        names = [column[0] for column in cursor.description]
        rows = [dict(zip(names, row)) for row in cursor]
        for row in rows:
            for name in ("verdict", "conflict"):
                if row[name] is not None:
                    row[name] = json.loads(row[name])
            if row["accepted"] is not None:
                row["accepted"] = bool(row["accepted"])
        return rows

    def stats(self) -> dict:
        """Figures for the sync panel."""
        one = lambda sql: self._conn.execute(sql).fetchone()[0]  # noqa: E731
        return {
            "outbox": self.outbox_size(),
            "parked": one("SELECT count(*) FROM outbox WHERE parked_reason IS NOT NULL"),
            "pending_online": one("SELECT count(*) FROM attempts WHERE state = 'pending'"),
            "conflicts": one("SELECT count(*) FROM attempts WHERE status = 'conflict'"),
            "last_sync": self.stored("last_sync").get("last_sync"),
        }

    def conflicts(self, limit: int = 200) -> list[dict]:
        """Redemptions another till won first, newest first, each with its winner {jti, at, till, store_id}."""
        cursor = self._conn.execute(
            "SELECT key, at, jti, voucher_id, staff_id, decided, conflict FROM attempts"
            " WHERE status = 'conflict' ORDER BY at DESC LIMIT ?", (limit,))
        names = ("key", "at", "jti", "voucher_id", "staff_id", "decided", "winner")
        rows = [dict(zip(names, row)) for row in cursor]
        for row in rows:
            row["winner"] = json.loads(row["winner"]) if row["winner"] else {}
        return rows

    def report_rows(self, since: float, until: float, *, batch: int = 5000) -> Iterator[list[tuple]]:
        """Finished attempts with since <= at < until, as tuples for the day report (`pos_app.store.report`):
        key, at, status, decided, method, staff_id, reason, kind, voucher_id, code, jti, finished_at, conflict,
        then its void's reason, staff_id and at (None when not voided), and the limit the backend said its use
        went past (`over_limit`, or None).

        Oldest first (by at, then key: the report's own order, so its sorts find the work done), in lists of
        up to `batch` rows: a busy day is read a piece at a time, and a caller can let other threads run
        between pieces instead of waiting for one list of 100,000.
        """
        cursor = self._conn.execute(
            "SELECT a.key, a.at, a.status, a.decided, a.method, a.staff_id, a.reason, a.kind, a.voucher_id, a.code,"
            " a.jti, a.finished_at, a.conflict, v.reason, v.staff_id, v.at, a.over_limit FROM attempts a"
            " LEFT JOIN voids v ON v.redemption_key = a.key"
            " WHERE a.at >= ? AND a.at < ? AND a.state = 'done' ORDER BY a.at, a.key", (since, until))
        try:
            while rows := cursor.fetchmany(batch):
                yield rows
        finally:
            cursor.close()

    def note_sync_run(self, ok: bool, error: str | None = None, *, now: float | None = None) -> None:
        """Count a sync round for the success rate; a failed one is also the last error."""
        now = time.time() if now is None else float(now)
        with self._transaction():
            name = "sync_runs_ok" if ok else "sync_runs_failed"
            self._settings[name] = int(self._settings.get(name) or 0) + 1
            self._put(name, self._settings[name])
            if ok:
                self._settings["last_sync"] = now
                self._put("last_sync", now)
            else:
                self._settings["last_error"] = {"at": now, "error": str(error)[:500]}
                self._put("last_error", self._settings["last_error"])

    def sync_figures(self) -> dict:
        """What the sync panel and `status` show besides the queue (docs/sync.md)."""
        one = lambda sql: self._conn.execute(sql).fetchone()[0]  # noqa: E731
        done = one("SELECT count(*) FROM attempts WHERE state = 'done'")
        offline = one("SELECT count(*) FROM attempts WHERE state = 'done' AND decided = 'offline'")
        accepted = one("SELECT count(*) FROM attempts WHERE accepted = 1")
        conflicts = one("SELECT count(*) FROM attempts WHERE status = 'conflict'")
        delays = sorted(max(0.0, d) for (d,) in self._conn.execute(
            "SELECT synced_at - at FROM attempts WHERE synced_at IS NOT NULL ORDER BY synced_at DESC LIMIT ?",
            (DELAY_SAMPLE,)))
        now = self.stored("sync_runs_ok", "sync_runs_failed", "last_sync", "last_error", "clock_skew_s")
        ok, failed = int(now.get("sync_runs_ok") or 0), int(now.get("sync_runs_failed") or 0)
        oldest = one("SELECT min(created_at) FROM outbox WHERE parked_reason IS NULL")
        return {
            "outbox": self.outbox_size(),
            "outbox_oldest_at": oldest,
            "parked": one("SELECT count(*) FROM outbox WHERE parked_reason IS NOT NULL"),
            "pending_online": one("SELECT count(*) FROM attempts WHERE state = 'pending'"),
            "last_sync": now.get("last_sync"),
            "last_error": now.get("last_error"),
            "clock_skew_s": now.get("clock_skew_s"),
            "redemptions": done,
            "accepted": accepted,
            "conflicts": conflicts,
            "conflict_rate": round(conflicts / accepted, 4) if accepted else 0.0,
            "offline_share": round(offline / done, 4) if done else 0.0,
            "over_limit": one("SELECT count(*) FROM attempts WHERE over_limit IS NOT NULL"),
            "sync_runs": ok + failed,
            "sync_success_rate": round(ok / (ok + failed), 4) if ok + failed else None,
            "delay_p50_s": _percentile(delays, 0.50),
            "delay_p95_s": _percentile(delays, 0.95),
            "feed_cursor": self.feed_cursor,
        }

    def staff_member(self, staff_id: str) -> dict | None:
        """A staff member without the PIN hash, or None."""
        row = self._conn.execute(
            "SELECT id, name, role, store_id FROM staff WHERE id = ?", (staff_id,)).fetchone()
        return None if row is None else dict(zip(("id", "name", "role", "store_id"), row))

    def staff_members(self) -> list[dict]:
        """Everyone who may log in at this till (its store's staff and retailer-wide staff), by name."""
        rows = self._conn.execute(
            "SELECT id, name, role, store_id FROM staff WHERE store_id IS NULL OR store_id = ? ORDER BY name, id",
            (self.get("store_id") or "",)).fetchall()
        return [dict(zip(("id", "name", "role", "store_id"), row)) for row in rows]

    def check_staff_pin(self, staff_id: str, pin: str) -> dict | None:
        """The staff member if the PIN is theirs, else None."""
        row = self._conn.execute("SELECT pin_hash FROM staff WHERE id = ?", (staff_id,)).fetchone()
        if row is None or not pins.check_pin(pin, row[0] or ""):
            return None
        return self.staff_member(staff_id)


# --- shapes -------------------------------------------------------------------------


def _percentile(ordered: list[float], q: float) -> float | None:
    """Nearest-rank percentile of sorted values, rounded to the millisecond."""
    if not ordered:
        return None
    return round(ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))], 3)


def _check_method(method: str) -> None:
    if method not in Method.ALL:
        raise ValueError(f"unknown input method {method!r}")


def _check_key(key: str) -> None:
    if not isinstance(key, str) or not IDEMPOTENCY_KEY.match(key):
        raise ValueError("an idempotency key is 8 to 64 of A-Z a-z 0-9 _ -")


def _stored_input(raw: str | bytes) -> str:
    """The input as text SQLite can hold: bounded, and valid UTF-8 whatever came in."""
    if isinstance(raw, (bytes, bytearray)):
        return bytes(raw[:MAX_INPUT_STORED]).decode("utf-8", "backslashreplace")
    text = str(raw)[:MAX_INPUT_STORED]
    # Lone surrogates cannot be encoded; sqlite3 would raise on binding them.
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _attempt_values(verdict: Verdict) -> dict:
    return {
        "accepted": bool(verdict.accepted), "reason": verdict.reason, "kind": verdict.kind,
        "voucher_id": verdict.voucher.id if verdict.voucher else None,
        "jti": verdict.jti, "code": verdict.code,
    }


def _voucher_row(voucher: Voucher) -> tuple[str, str, str, str]:
    return voucher.id, json.dumps(voucher.to_json()), voucher.kind, voucher.status
