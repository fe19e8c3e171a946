"""What the till knows of codes already used: token ids, printed codes' counts, the
limits the backend said were reached, and this till's recent acceptances (the
velocity check) — the questions an offline verdict asks, and how a verdict's
use is recorded.
"""

from __future__ import annotations

import bisect

from ..core.domain import UsedToken, Verdict
from ..core.verdict import STORE_DAY_LIMIT, local_day, reached_limit

# Accepted attempt times kept in memory for the scan-velocity check.
RECENT_KEPT = 1024
MAX_LIMIT = 1_000_000_000  # a remembered limit beyond any real one is a broken answer: ignored


class Uses:
    """A part of TillStore (needs StoreBase and `clock_skew()`)."""

    def __init__(self, path, **options):
        super().__init__(path, **options)
        # Times of accepted attempts, sorted; it holds every one later than
        # `_accepts_floor`, so the velocity check needs no query.
        self._accepts: list[float] = []
        self._accepts_floor = float("-inf")
        self._load_accepts()

    def used(self, jti: str) -> UsedToken | None:
        row = self.conn.execute(
            "SELECT at, till, store_id FROM used_tokens WHERE jti = ?", (jti,)).fetchone()
        return None if row is None else UsedToken(jti, row[0], row[1] or "", row[2] or "")

    def printed_uses(self, voucher_id: str, store_id: str, day: str) -> tuple[int, int]:
        """(uses at this store on this day, uses in all) of a printed voucher.

        Each is at least what the backend last said it was, plus this till's uses
        since: a limit it answered `limit_reached` for online (`printed_limits`), as
        the feed may not have brought every till's uses yet. A raised limit passes
        that bound; the feed's uses, once heard, are not counted twice, nor are the
        uses heard over the LAN the feed has brought since (`lan_printed`)."""
        row = self.conn.execute(
            "SELECT coalesce(sum(count), 0),"
            " coalesce(sum(CASE WHEN store_id = ? AND day = ? THEN count END), 0)"
            " FROM printed_uses WHERE voucher_id = ?", (store_id, day, voucher_id)).fetchone()
        at_store_today, in_all = row[1], row[0]
        # Other tills' uses heard over the LAN (store/lan.py), until the feed brings and counts them.
        lan = self.conn.execute(
            "SELECT count(*), coalesce(sum(store_id = ? AND day = ?), 0) FROM lan_printed"
            " WHERE voucher_id = ? AND counted_by_feed = 0", (store_id, day, voucher_id)).fetchone()
        at_store_today, in_all = at_store_today + lan[1], in_all + lan[0]
        for scope, bound in self.conn.execute(
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
        cursor = self.conn.execute(
            "SELECT voucher_id, scope, store_id, day, bound, own_since, at FROM printed_limits ORDER BY at, voucher_id")
        return [dict(zip(("voucher_id", "scope", "store_id", "day", "bound", "own_since", "at"), row))
                for row in cursor]

    def remember_limit(self, verdict: Verdict, at: float) -> None:
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
        self.conn.execute(
            "INSERT INTO printed_limits (voucher_id, scope, store_id, day, bound, at) VALUES (?, ?, ?, ?, ?, ?)"
            " ON CONFLICT(voucher_id, scope, store_id, day) DO UPDATE SET bound = excluded.bound,"
            " own_since = 0, at = excluded.at",
            (voucher.id, scope, self.store_id, day if scope == "store_day" else "", bound, at))
        # A day's limit says nothing about another day: earlier days' are dropped.
        self.conn.execute("DELETE FROM printed_limits WHERE scope = 'store_day' AND day < ?", (day,))

    def recent_accepts(self, since: float) -> int:
        """Accepted redemptions at this till since an epoch time (on the backend's clock, as context())."""
        # Attempts keep this till's own clock; context() moved `now` to the backend's.
        since += self.clock_skew()
        if since > self._accepts_floor:
            return len(self._accepts) - bisect.bisect_left(self._accepts, since)
        return self.conn.execute(
            "SELECT count(*) FROM attempts WHERE at >= ? AND accepted = 1", (since,)).fetchone()[0]

    def _load_accepts(self) -> None:
        times = [at for (at,) in self.conn.execute(
            "SELECT at FROM attempts WHERE accepted = 1 ORDER BY at DESC LIMIT ?", (RECENT_KEPT + 1,))]
        if len(times) > RECENT_KEPT:
            self._accepts_floor = times.pop()
        self._accepts = times[::-1]

    def note_accept(self, at: float) -> None:
        """Remember a committed acceptance for `recent_accepts` (once its transaction committed)."""
        if at > self._accepts_floor:
            bisect.insort(self._accepts, at)
        if len(self._accepts) > 2 * RECENT_KEPT:
            self._accepts_floor = self._accepts[RECENT_KEPT - 1]
            del self._accepts[:RECENT_KEPT]

    def count_printed_use(self, voucher_id: str, store_id: str, day: str) -> None:
        """One more use of a printed voucher (inside the caller's transaction)."""
        self.conn.execute(
            "INSERT INTO printed_uses (voucher_id, store_id, day, count) VALUES (?, ?, ?, 1)"
            " ON CONFLICT(voucher_id, store_id, day) DO UPDATE SET count = count + 1",
            (voucher_id, store_id, day))

    def record_use(self, verdict: Verdict, at: float, day: str) -> None:
        """What an accepted verdict uses up: its token id, or a printed code's use (inside the caller's
        transaction)."""
        if not verdict.accepted:
            return
        if verdict.kind == "personal" and verdict.jti:
            # REPLACE: offline, decide() has just seen no row; online, the
            # backend's acceptance outranks whatever the feed told us.
            self.conn.execute(
                "INSERT OR REPLACE INTO used_tokens (jti, at, till, store_id, origin) VALUES (?, ?, ?, ?, 'local')",
                (verdict.jti, at, self.device_name, self.store_id))
        elif verdict.kind == "printed" and verdict.voucher is not None:
            self.count_printed_use(verdict.voucher.id, self.store_id, day)
            self.conn.execute(
                "UPDATE printed_limits SET own_since = own_since + 1 WHERE voucher_id = ?"
                " AND (scope = 'total' OR (store_id = ? AND day = ?))", (verdict.voucher.id, self.store_id, day))
