"""The backend's answers to the verdict's questions, read from its database.

Used inside the writer's transaction, so a decision sees every write that
committed before it, and the writes of its own batch.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, time as dtime, timedelta
from zoneinfo import ZoneInfo

import sqlite_utils

from pos_app.core.domain import Claim, Discount, UsedToken, Voucher

VOUCHER_COLUMNS = (
    "v.id, v.retailer_id, v.kind, v.status, v.discount_kind, v.discount_value, v.currency, "
    "v.texts, v.valid_from, v.valid_until, v.total_limit, v.store_day_limit, r.name"
)


def voucher_from_row(row) -> Voucher:
    return Voucher(
        id=row[0], retailer_id=row[1], kind=row[2], status=row[3],
        discount=Discount(kind=row[4], value=row[5], currency=row[6]),
        texts=json.loads(row[7]), valid_from=row[8], valid_until=row[9],
        total_limit=row[10], store_day_limit=row[11], retailer_name=row[12],
    )


def day_bounds(day: str, tz_name: str) -> tuple[float, float]:
    """Epoch start and end of a calendar day at a store."""
    tz = ZoneInfo(tz_name)
    start = datetime.combine(datetime.fromisoformat(day).date(), dtime(0), tz)
    return start.timestamp(), (start + timedelta(days=1)).timestamp()


class VoucherCache:
    """Vouchers by id, so a redemption costs no voucher query.

    Shared by the request threads of one process (dict operations are atomic
    under the GIL). A voucher change in this process clears it; entries also
    expire after a second, so a change made by another server process or an
    admin command (a revoked voucher) takes effect within TTL_S everywhere.
    """

    TTL_S = 1.0

    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, Voucher | None]] = {}

    def get(self, conn, voucher_id: str, now: float) -> Voucher | None:
        entry = self._entries.get(voucher_id)
        if entry is not None and now - entry[0] < self.TTL_S:
            return entry[1]
        row = conn.execute(
            f"SELECT {VOUCHER_COLUMNS} FROM vouchers v JOIN retailers r ON r.id = v.retailer_id "
            "WHERE v.id = ?", (voucher_id,),
        ).fetchone()
        voucher = voucher_from_row(row) if row else None
        if len(self._entries) > 10_000:
            self._entries.clear()
        self._entries[voucher_id] = (now, voucher)
        return voucher

    def clear(self) -> None:
        self._entries.clear()


class BackendState:
    """RedemptionState for one till of one store, over one connection.

    `as_of`: the time an offline attempt was made, for judging it when it
    arrives later: a claim revoked after it does not count, and the velocity
    window ends there. None (online): now, and nothing later exists yet.
    """

    def __init__(self, db: sqlite_utils.Database, *, retailer_id: str, store_id: str,
                 device_id: str, store_timezone: str, velocity_cap: int, vouchers: VoucherCache,
                 as_of: float | None = None):
        self._conn = db.conn
        self.as_of = as_of
        self.retailer_id = retailer_id
        self.store_id = store_id
        self.device_id = device_id
        self.store_timezone = store_timezone
        self.velocity_cap = velocity_cap
        self._vouchers = vouchers
        self._jti_state: tuple[str, bool, UsedToken | None] | None = None  # (jti, revoked, used)

    def voucher(self, voucher_id: str) -> Voucher | None:
        return self._vouchers.get(self._conn, voucher_id, time.monotonic())

    def printed_voucher(self, code: str) -> Voucher | None:
        row = self._conn.execute(
            f"SELECT {VOUCHER_COLUMNS} FROM printed_codes p JOIN vouchers v ON v.id = p.voucher_id "
            "JOIN retailers r ON r.id = v.retailer_id WHERE p.code = ? AND p.retailer_id = ?",
            (code, self.retailer_id),
        ).fetchone()
        return voucher_from_row(row) if row else None

    def claim(self, short_code: str) -> Claim | None:
        row = self._conn.execute(
            "SELECT short_code, jti, voucher_id, expires_at FROM claims "
            "WHERE short_code = ? AND retailer_id = ?", (short_code, self.retailer_id),
        ).fetchone()
        return Claim(*row) if row else None

    def used(self, jti: str) -> UsedToken | None:
        if self._jti_state is not None and self._jti_state[0] == jti:
            return self._jti_state[2]  # came with revoked(), in the same query
        row = self._conn.execute(
            "SELECT a.jti, a.at, coalesce(d.name, a.device_id), a.store_id FROM attempts a "
            "LEFT JOIN devices d ON d.id = a.device_id "
            "WHERE a.retailer_id = ? AND a.jti = ? AND a.status = 'accepted'",
            (self.retailer_id, jti),
        ).fetchone()
        return UsedToken(*row) if row else None

    def revoked(self, jti: str) -> bool:
        # The verdict asks revoked(jti), then used(jti): one query answers both
        # (each SQLite call gives up the GIL and must win it back under load).
        row = self._conn.execute(
            "SELECT (SELECT revoked_at FROM claims WHERE jti = ? AND retailer_id = ?),"
            " a.jti, a.at, coalesce(d.name, a.device_id), a.store_id"
            " FROM (SELECT 1) AS one LEFT JOIN attempts a"
            " ON a.retailer_id = ? AND a.jti = ? AND a.status = 'accepted'"
            " LEFT JOIN devices d ON d.id = a.device_id", (jti, self.retailer_id, self.retailer_id, jti),
        ).fetchone()
        revoked = row[0] is not None and (self.as_of is None or row[0] <= self.as_of)
        self._jti_state = (jti, revoked, UsedToken(*row[1:]) if row[1] is not None else None)
        return self._jti_state[1]

    def printed_uses(self, voucher_id: str, store_id: str, day: str) -> tuple[int, int]:
        # Only this retailer's attempts count: another retailer's till can
        # never use up this voucher's limit, whatever it sent. A voucher with
        # no limit asks no count (0): a query less on the commonest printed code.
        voucher = self.voucher(voucher_id)
        if voucher is not None and voucher.total_limit is None and voucher.store_day_limit is None:
            return 0, 0
        start, end = day_bounds(day, self.store_timezone)
        return self._conn.execute(
            "SELECT count(*) FILTER (WHERE store_id = ? AND at >= ? AND at < ?), count(*) FROM attempts"
            " WHERE status = 'accepted' AND kind = 'printed' AND voucher_id = ? AND retailer_id = ?",
            (store_id, start, end, voucher_id, self.retailer_id),
        ).fetchone()

    def recent_accepts(self, since: float) -> int:
        # Counting stops at the limit: past it the answer is the same, and an
        # unbounded count grows with the very rate it is meant to catch.
        until = float("inf") if self.as_of is None else self.as_of
        return self._conn.execute(
            "SELECT count(*) FROM (SELECT 1 FROM attempts WHERE device_id = ? AND at >= ? AND at <= ? "
            "AND status = 'accepted' LIMIT ?) AS capped", (self.device_id, since, until, self.velocity_cap),
        ).fetchone()[0]
