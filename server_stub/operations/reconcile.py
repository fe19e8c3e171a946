"""Reconciliation: the redemption log compared with what it implies, each drift raised as a finding.

Tills decide offline, sync late, and may lose or hide what they did; each
check here is one bounded query (in the SQL subset SQLite and PostgreSQL
share) over what the backend holds, and what it finds goes through
`findings` (one open finding per code and subject, kept until a person
resolves it). A condition no longer found is marked gone, still open. A
person's resolution is final for the drift as it was then: the same code and
subject is raised again only when its `evidence` changed since (more uses, a
newer stuck entry, a till silent since a later time), so a standing fact
already dealt with does not come back every night.

Only one process runs at a time: a lease in `backend_meta` taken with a
compare-and-set that both engines make atomic; the nightly job claims its
night's slot the same way, so several `serve` processes (or hosts over
PostgreSQL) run it once. Nothing here knows HTTP or the scheduler
(commands/reconcile.py).
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from datetime import date, timedelta
from typing import Any, NamedTuple

from pos_app.core.verdict import local_day

from ..errors import Conflict, Invalid, NotFound
from ..storage.state import day_bounds
from . import findings
from .context import Context

log = logging.getLogger(__name__)

PRINTED_STORE_DAY_OVER = "printed_store_day_over"  # accepted printed uses of a voucher at a store on a day > limit
PRINTED_TOTAL_OVER = "printed_total_over"  # accepted printed uses of a voucher in all > its total limit
OUTBOX_STUCK = "outbox_stuck"  # a till reports an outbox whose oldest entry is over a day old
PARKED_OLD = "parked_old"  # a till reports entries parked (refused for good) over a day ago
LOG_BEHIND = "log_behind"  # a till claimed a log head beyond what the backend verified, over an hour ago
LOG_UNSYNCED = "log_unsynced"  # log records received over a day ago whose attempt or void never arrived
TILL_SILENT = "till_silent"  # a till not heard from for silent_hours while another of its store was
DISPUTE_OPEN = "dispute_open"  # attempts whose verdicts disagree (dispute), over a day old, per till and day
CODES = (PRINTED_STORE_DAY_OVER, PRINTED_TOTAL_OVER, OUTBOX_STUCK, PARKED_OLD, LOG_BEHIND, LOG_UNSYNCED,
         TILL_SILENT, DISPUTE_OPEN)

DAY_S, HOUR_S = 86400.0, 3600.0
# config.json "reconcile": the nightly run's time (server time unless `timezone`), on/off, thresholds.
DEFAULTS = {"schedule": True, "hour": 3, "minute": 0, "second": 0, "timezone": None, "silent_hours": 24,
            "days": 92}
LEASE_KEY, NIGHTLY_KEY, LAST_KEY = "reconcile_lease", "reconcile_nightly", "reconcile_last"
LEASE_S = 900.0  # a crashed run's lease lapses after this; a run over 1,000,000 attempts takes seconds
_FREE = "0 -"  # the lease's value when nobody holds it
PER_CODE_MAX = 1000  # findings per code and retailer in one run; past it, none of that code is marked gone
NAMED_MAX = 100  # records, keys or seqs named in one finding's detail
UNSYNCED_MAX = 10_000  # log records without their attempt read per till; more are "at least" that
DISPUTES_MAX = 50_000  # disputed attempts read per retailer and run


class Found(NamedTuple):
    code: str
    subject: str
    detail: dict  # what a person reads; `evidence` (inside) is what makes it the same drift
    store_id: str | None = None
    device_id: str | None = None


def settings(config: dict) -> dict:
    """The "reconcile" settings of config.json over their defaults, checked (ValueError names the bad one)."""
    s = {**DEFAULTS, **(config.get("reconcile") or {})}
    bounds = {"hour": (0, 23), "minute": (0, 59), "second": (0, 59), "silent_hours": (1, 24 * 90), "days": (1, 366)}
    for name, (low, high) in bounds.items():
        value = s[name]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"reconcile.{name} is a whole number from {low} to {high}")
    if not isinstance(s["schedule"], bool):
        raise ValueError("reconcile.schedule is true or false")
    if s["timezone"] is not None and not isinstance(s["timezone"], str):
        raise ValueError("reconcile.timezone is a time zone name such as America/Asuncion, or null (server time)")
    return s


# --- the lease and the night's slot ---------------------------------------------------------


def _cas(ctx: Context, key: str, decide) -> bool:
    """Set backend_meta `key` to decide(current value) unless it answers None; True if this write set it.
    The UPDATE names the value read, so of two processes deciding at once only one changes the row."""
    def write(db):
        db.execute("INSERT INTO backend_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING", (key, _FREE))
        old = db.execute("SELECT value FROM backend_meta WHERE key = ?", (key,)).fetchone()[0]
        new = decide(old)
        if new is None:
            return False
        return db.execute("UPDATE backend_meta SET value = ? WHERE key = ? AND value = ?", (new, key, old)).rowcount == 1
    return bool(ctx.storage.submit(write))


def _lease_until(value: str) -> float:
    try:
        return float(value.split(" ", 1)[0])
    except ValueError:
        return 0.0


def take_lease(ctx: Context, holder: str, ttl_s: float = LEASE_S) -> bool:
    """The run's lease for `ttl_s` (wall clock: a run checking another `now` still shares one clock)."""
    now = ctx.clock()
    return _cas(ctx, LEASE_KEY, lambda old: None if _lease_until(old) > now else f"{now + ttl_s!r} {holder}")


def release_lease(ctx: Context, holder: str) -> None:
    _cas(ctx, LEASE_KEY, lambda old: _FREE if old.endswith(f" {holder}") else None)


def claim_night(ctx: Context, slot: str) -> bool:
    """The nightly job's run for `slot` (its fire time, e.g. 2025-06-01T03:00:00): True for one process only."""
    return _cas(ctx, NIGHTLY_KEY, lambda old: slot if old == _FREE or old < slot else None)


def _last_key(retailer_id: str | None) -> str:
    return LAST_KEY if retailer_id is None else f"{LAST_KEY}:{retailer_id}"


def last_run(ctx: Context, retailer_id: str | None = None) -> dict | None:
    """What the last finished run said (run's answer, with its scope), or None before the first; for a
    retailer, the last run that checked it (its own counts): another retailer's runs are not its business."""
    row = ctx.one("SELECT value FROM backend_meta WHERE key = ?", (_last_key(retailer_id),))
    try:
        return json.loads(row[0]) if row else None
    except ValueError:
        return None


# --- the run -------------------------------------------------------------------------------------


def run(ctx: Context, *, now: float | None = None, retailer_id: str | None = None) -> dict:
    """Every check over every retailer (or one): {ran_at, duration_s, opened, seen, gone, by_code}.
    409 `reconcile_running` while another process runs it; 404 for a retailer that does not exist."""
    if retailer_id is not None:
        if not isinstance(retailer_id, str) or not 1 <= len(retailer_id) <= 64:
            raise Invalid("invalid_value", "a retailer id is 1 to 64 characters")
        if ctx.one("SELECT 1 FROM retailers WHERE id = ?", (retailer_id,)) is None:
            raise NotFound("not_found", "no such retailer")
    s = settings(ctx.config)
    started = time.monotonic()
    now = ctx.clock() if now is None else float(now)
    holder = secrets.token_hex(8)
    if not take_lease(ctx, holder):
        raise Conflict("reconcile_running", "a reconciliation is running already: its findings are listed when done")
    try:
        ids = [retailer_id] if retailer_id is not None else [
            r[0] for r in ctx.storage.read().execute("SELECT id FROM retailers ORDER BY id").fetchall()]
        totals = {"opened": 0, "seen": 0, "gone": 0, "by_code": {code: 0 for code in CODES}}
        for one in ids:
            found, keep, full = _checks(ctx, one, now, s)
            counts = ctx.storage.submit(lambda db: _record(db, one, found, keep, full, now))
            for name in ("opened", "seen", "gone"):
                totals[name] += counts[name]
            for f in found:
                totals["by_code"][f.code] += 1
        answer = {"ran_at": now, "duration_s": round(time.monotonic() - started, 4), **totals}
        last = {**answer, "retailer_id": retailer_id}
        ctx.storage.submit(lambda db: db.execute(
            "INSERT INTO backend_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (LAST_KEY, json.dumps(last))))
        log.info("reconciliation: %s opened, %s seen again, %s gone in %.2f s", answer["opened"], answer["seen"],
                 answer["gone"], answer["duration_s"])
        return answer
    finally:
        release_lease(ctx, holder)


def _record(db, retailer_id: str, found: list[Found], keep: set, full: set, now: float) -> dict:
    """Inside one write: each finding raised (or skipped: resolved as it is), the rest marked gone, and the
    retailer's own last run (what its admins are shown) with them."""
    marks = ", ".join("?" * len(CODES))
    open_now = {(c, s) for c, s in db.execute(
        f"SELECT code, subject FROM findings WHERE retailer_id = ? AND resolved_at IS NULL AND code IN ({marks})",
        (retailer_id, *CODES)).fetchall()}
    settled: dict[tuple[str, str], Any] = {}
    for c, s, detail in db.execute(
            f"SELECT code, subject, detail FROM findings WHERE retailer_id = ? AND resolved_at IS NOT NULL "
            f"AND code IN ({marks}) ORDER BY id", (retailer_id, *CODES)).fetchall():
        try:
            settled[(c, s)] = json.loads(detail).get("evidence")
        except (ValueError, AttributeError):
            settled[(c, s)] = None
    opened = seen = 0
    for f in found:
        pair = (f.code, f.subject)
        if pair in open_now:
            seen += 1
        elif pair in settled and settled[pair] == f.detail.get("evidence"):
            continue  # a person resolved it as it still is
        else:
            opened += 1
        findings.raise_finding(db, code=f.code, subject=f.subject, detail=f.detail, now=now, retailer_id=retailer_id,
                               store_id=f.store_id, device_id=f.device_id)
    still = {(f.code, f.subject) for f in found} | keep
    gone = findings.mark_gone(db, codes=[c for c in CODES if c not in full], still=still, now=now,
                              retailer_id=retailer_id)
    counts = {"opened": opened, "seen": seen, "gone": gone}
    mine = {"ran_at": now, **counts,
            "by_code": {code: sum(1 for f in found if f.code == code) for code in CODES},
            "retailer_id": retailer_id}
    db.execute("INSERT INTO backend_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = "
               "excluded.value", (_last_key(retailer_id), json.dumps(mine)))
    return counts


def _checks(ctx: Context, retailer_id: str, now: float, s: dict) -> tuple[list[Found], set, set]:
    """(what every check found for the retailer, open findings to keep though not looked at again, codes cut
    off at PER_CODE_MAX)."""
    db = ctx.storage.read()
    stores = dict(db.execute("SELECT id, timezone FROM stores WHERE retailer_id = ?", (retailer_id,)).fetchall())
    first_day = {sid: date.fromisoformat(local_day(now - s["days"] * DAY_S, tz)) for sid, tz in stores.items()}
    found: list[Found] = []
    found += _printed(db, retailer_id, stores, first_day, now)
    found += _devices(db, retailer_id, now, s)
    found += _unsynced(db, retailer_id, now)
    found += _disputes(db, retailer_id, stores, now, s["days"])
    keep = _before_window(db, retailer_id, first_day)
    by_code: dict[str, list[Found]] = {}
    for f in found:
        by_code.setdefault(f.code, []).append(f)
    full = {code for code, items in by_code.items() if len(items) > PER_CODE_MAX}
    kept = [f for items in by_code.values() for f in items[:PER_CODE_MAX]]
    return kept, keep, full


def _before_window(db, retailer_id: str, first_day: dict) -> set:
    """Open findings of a store's day before the days looked at: no attempt can still arrive for them (a
    till's entry is believed at most 90 days back), so they are neither seen again nor gone."""
    keep = set()
    for code, subject, store_id, detail in db.execute(
            "SELECT code, subject, store_id, detail FROM findings WHERE retailer_id = ? AND resolved_at IS NULL "
            "AND code IN (?, ?)", (retailer_id, PRINTED_STORE_DAY_OVER, DISPUTE_OPEN)).fetchall():
        try:
            day = date.fromisoformat(json.loads(detail)["day"])
        except (ValueError, KeyError, TypeError):
            continue
        if store_id in first_day and day < first_day[store_id]:
            keep.add((code, subject))
    return keep


# --- the checks ----------------------------------------------------------------------------------

_PRINTED = "status = 'accepted' AND kind = 'printed' AND voucher_id = ?"  # the words of the attempts_printed index


def _printed(db, retailer_id: str, stores: dict, first_day: dict, now: float) -> list[Found]:
    """Printed uses against each limited voucher's limits: in all, and per store and local day."""
    out: list[Found] = []
    vouchers = db.execute("SELECT id, total_limit, store_day_limit FROM vouchers WHERE retailer_id = ? AND "
                          "kind = 'printed' AND (total_limit IS NOT NULL OR store_day_limit IS NOT NULL) ORDER BY id",
                          (retailer_id,)).fetchall()
    for voucher_id, total_limit, day_limit in vouchers:
        # Per store, from the index alone; a store not of this retailer (none should be) is not counted.
        per_store = {sid: n for sid, n in db.execute(
            f"SELECT store_id, count(*) FROM attempts WHERE {_PRINTED} GROUP BY store_id", (voucher_id,)).fetchall()
            if sid in stores}
        total = sum(per_store.values())
        if total_limit is not None and total > total_limit:
            out.append(Found(PRINTED_TOTAL_OVER, voucher_id, {
                "voucher_id": voucher_id, "uses": total, "limit": total_limit,
                "by_store": dict(sorted(per_store.items())[:NAMED_MAX]), "evidence": total}))
        if day_limit is None:
            continue
        for store_id, uses in sorted(per_store.items()):
            if uses <= day_limit:
                continue  # no day of this store can be over
            tz = stores[store_id]
            days = (date.fromisoformat(local_day(now, tz)) - first_day[store_id]).days + 1
            for day, n in _days_over(db, voucher_id, store_id, tz, first_day[store_id], days, day_limit):
                out.append(Found(PRINTED_STORE_DAY_OVER, f"{voucher_id}/{store_id}/{day}", {
                    "voucher_id": voucher_id, "store_id": store_id, "day": day, "uses": n, "limit": day_limit,
                    "evidence": n}, store_id=store_id))
    return out


def _days_over(db, voucher_id: str, store_id: str, tz: str, first: date, days: int, limit: int):
    """(day, uses) of the store's local days in [first, first + days) over `limit`: a span's count is one index
    range; a span within the limit holds no day over it, so only spans over it are halved."""
    bounds = [day_bounds((first + timedelta(days=i)).isoformat(), tz) for i in range(days)]

    def count(i: int, j: int) -> int:
        return db.execute(f"SELECT count(*) FROM attempts WHERE {_PRINTED} AND store_id = ? AND at >= ? AND at < ?",
                          (voucher_id, store_id, bounds[i][0], bounds[j - 1][1])).fetchone()[0]

    spans = [(0, days, count(0, days))]
    while spans:
        i, j, n = spans.pop()
        if n <= limit:
            continue
        if j - i == 1:
            yield (first + timedelta(days=i)).isoformat(), n
            continue
        mid = (i + j) // 2
        left = count(i, mid)
        spans += [(mid, j, n - left), (i, mid, left)]


def _devices(db, retailer_id: str, now: float, s: dict) -> list[Found]:
    """What the retailer's tills reported of themselves (outbox, parked entries, log head) and when they were
    last heard, from their rows: one query."""
    rows = db.execute(
        "SELECT id, store_id, name, last_seen_at, enrolled_at, outbox_size, outbox_oldest_at, parked_size, "
        "parked_oldest_at, log_seq, log_claimed_seq, log_claimed_at FROM devices "
        "WHERE retailer_id = ? AND kind = 'till' AND revoked_at IS NULL ORDER BY id", (retailer_id,)).fetchall()
    out: list[Found] = []
    silent_s = s["silent_hours"] * HOUR_S
    heard_lately = {store for _, store, _, seen, *_ in rows if seen is not None and seen >= now - silent_s}
    for (device_id, store_id, name, seen, enrolled, outbox, outbox_oldest, parked, parked_oldest, log_seq,
         claimed, claimed_at) in rows:
        about = {"device_id": device_id, "till": name, "store_id": store_id}
        if outbox and outbox_oldest is not None and outbox_oldest < now - DAY_S:
            out.append(Found(OUTBOX_STUCK, device_id, {**about, "outbox": outbox, "oldest_at": outbox_oldest,
                                                      "reported_at": seen, "evidence": outbox_oldest},
                             store_id, device_id))
        if parked and parked_oldest is not None and parked_oldest < now - DAY_S:
            out.append(Found(PARKED_OLD, device_id, {**about, "parked": parked, "oldest_at": parked_oldest,
                                                    "reported_at": seen, "evidence": parked_oldest},
                             store_id, device_id))
        if claimed is not None and claimed > (log_seq or 0) and claimed_at is not None and claimed_at < now - HOUR_S:
            out.append(Found(LOG_BEHIND, device_id, {**about, "claimed_seq": claimed, "claimed_at": claimed_at,
                                                    "verified_seq": log_seq or 0, "missing": claimed - (log_seq or 0),
                                                    "evidence": [log_seq or 0, claimed]}, store_id, device_id))
        heard = seen if seen is not None else enrolled
        if (heard is None or heard < now - silent_s) and store_id in heard_lately:
            out.append(Found(TILL_SILENT, device_id, {**about, "last_seen_at": seen, "enrolled_at": enrolled,
                                                     "silent_hours": s["silent_hours"], "evidence": heard},
                             store_id, device_id))
    return out


def _unsynced(db, retailer_id: str, now: float) -> list[Found]:
    """Per till: log records the backend received over a day ago whose attempt (or void) it still does not
    have: each a probe of a unique index, the till's records read in seq order."""
    out: list[Found] = []
    tills = db.execute("SELECT id, store_id, name FROM devices WHERE retailer_id = ? AND log_seq > 0 ORDER BY id",
                       (retailer_id,)).fetchall()
    for device_id, store_id, name in tills:
        rows = db.execute(
            "SELECT t.seq, t.kind, t.key FROM till_log t WHERE t.device_id = ? AND t.received_at < ? "
            # The same till's: a record naming another till's key (read off the LAN) hides nothing.
            "AND NOT (t.kind = 'attempt' AND EXISTS (SELECT 1 FROM attempts a WHERE a.key = t.key"
            " AND a.device_id = t.device_id)) "
            "AND NOT (t.kind = 'void' AND EXISTS (SELECT 1 FROM voids v WHERE v.key = t.key"
            " AND v.device_id = t.device_id)) "
            "ORDER BY t.seq LIMIT ?", (device_id, now - DAY_S, UNSYNCED_MAX + 1)).fetchall()
        if not rows:
            continue
        named = [{"seq": seq, "kind": kind, "key": key} for seq, kind, key in rows[:NAMED_MAX]]
        out.append(Found(LOG_UNSYNCED, device_id, {
            "device_id": device_id, "till": name, "store_id": store_id, "records": min(len(rows), UNSYNCED_MAX),
            "at_least": len(rows) > UNSYNCED_MAX, "named": named,
            "evidence": [min(len(rows), UNSYNCED_MAX), rows[0][0], rows[min(len(rows), UNSYNCED_MAX) - 1][0]]},
            store_id, device_id))
    return out


def _disputes(db, retailer_id: str, stores: dict, now: float, days: int) -> list[Found]:
    """Disputed attempts received over a day ago (and within the days looked at), per till and local day."""
    earliest = now - days * DAY_S
    rows = db.execute(
        "SELECT device_id, store_id, at, key, dispute, received_at FROM attempts WHERE retailer_id = ? "
        "AND dispute IS NOT NULL AND received_at >= ? AND received_at < ? ORDER BY received_at, id LIMIT ?",
        (retailer_id, earliest, now - DAY_S, DISPUTES_MAX)).fetchall()
    groups: dict[tuple[str, str], list] = {}
    for device_id, store_id, at, key, dispute, received in rows:
        if store_id not in stores:
            continue
        day = local_day(at, stores[store_id])
        groups.setdefault((device_id, day), []).append((key, dispute, received, store_id))
    out: list[Found] = []
    for (device_id, day), items in sorted(groups.items()):
        kinds: dict[str, int] = {}
        for _, dispute, _, _ in items:
            kinds[dispute] = kinds.get(dispute, 0) + 1
        store_id = items[0][3]
        out.append(Found(DISPUTE_OPEN, f"{device_id}/{day}", {
            "device_id": device_id, "store_id": store_id, "day": day, "disputes": len(items), "by_kind": kinds,
            "keys": [key for key, *_ in items[:NAMED_MAX]], "evidence": [len(items), max(r for _, _, r, _ in items)]},
            store_id, device_id))
    return out
