"""What the console's manager pages read beyond the day report itself: today's figures per store, a page of
a report's redemptions (to void one), and the store a redemption belongs to.

Today's page is asked for often and shows only counts, so it is counted in SQL (GROUP BY over the
`attempts_store_at` index) rather than built as a whole report: a day of thousands of attempts stays a
few milliseconds per store. Its figures follow `pos_app.core.report.build`'s rules exactly — a voided
redemption leaves the count, a conflict stays a conflict, a till's own refusal counts with the till's
reason — and the tests hold them to that report's. The list of redemptions is a page at a time, newest
first, for the same reason.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import date, datetime
from zoneinfo import ZoneInfo

from pos_app.core import report

from ..errors import NotFound
from ..storage.state import VOUCHER_COLUMNS, voucher_from_row
from .context import Context

LATE_S = 3600.0  # a till not heard from for an hour (tills sync every few minutes, even with nothing to send)
PAGE_MAX = 200
_VOIDED = "CASE WHEN v.id IS NULL THEN 0 ELSE 1 END"
_FLAGGED = "CASE WHEN a.time_flag IS NULL THEN 0 ELSE 1 END"
_SAID = "CASE WHEN a.dispute = 'till_refused' THEN a.till_verdict ELSE NULL END"


def local_day(at: float, tz_name: str | None) -> date:
    return datetime.fromtimestamp(at, ZoneInfo(tz_name or report.UTC)).date()


def amounts(db, retailer_id: str) -> dict[str, tuple[int, str]]:
    """Each voucher of the retailer with a fixed amount off: id → (amount, currency). A percentage's amount
    depends on the sale, which no till records."""
    out = {}
    for row in db.execute(f"SELECT {VOUCHER_COLUMNS} FROM vouchers v JOIN retailers r ON r.id = v.retailer_id "
                          "WHERE v.retailer_id = ?", (retailer_id,)):
        voucher = voucher_from_row(row)
        if voucher.discount.kind == "amount":
            out[voucher.id] = (int(voucher.discount.value), voucher.discount.currency)
    return out


def day_figures(ctx: Context, store: dict, day: date, *, db=None, priced=None) -> dict:
    """One store's figures for its local `day`, as the day report counts them."""
    db = db or ctx.storage.read()
    priced = amounts(db, store["retailer_id"]) if priced is None else priced
    since, until = report.window(day, day, store["timezone"] or report.UTC)
    found = db.execute(
        f"SELECT a.status, a.decided, a.reason, a.voucher_id, {_VOIDED}, a.dispute, {_FLAGGED}, {_SAID}, "
        "count(*), min(a.at), max(a.at) FROM attempts a LEFT JOIN voids v ON v.attempt_id = a.id "
        "WHERE a.store_id = ? AND a.at >= ? AND a.at < ? "
        f"GROUP BY a.status, a.decided, a.reason, a.voucher_id, {_VOIDED}, a.dispute, {_FLAGGED}, {_SAID}",
        (store["id"], since, until)).fetchall()
    edges = [r for r in found if local_day(r[9], store["timezone"]) != day or local_day(r[10], store["timezone"]) != day]
    if edges:  # a clock change at midnight widened the window: those groups are counted row by row
        found = [r for r in found if r not in edges] + _exact(db, store, since, until, day)
    figures = {"store_id": store["id"], "name": store["name"], "retailer_id": store["retailer_id"],
               "timezone": store["timezone"], "date": day.isoformat(), "count": 0, "discount": 0, "unpriced": 0,
               "attempts": 0, "offline": 0, "refused": 0, "conflicts": 0, "voids": 0, "disputes": 0,
               "by_reason": Counter()}
    for status, decided, reason, voucher_id, voided, dispute, flagged, said, n, *_ in found:
        figures["attempts"] += n
        figures["offline"] += n if decided == "offline" else 0
        if dispute is not None or flagged:
            figures["disputes"] += n
        if status == "refused":
            if dispute == "till_refused":
                reason = _till_reason(said)
            figures["refused"] += n
            figures["by_reason"][reason or "unknown"] += n
        elif status == "conflict":
            figures["conflicts"] += n
        elif voided:
            figures["voids"] += n
        else:
            figures["count"] += n
            amount = priced.get(voucher_id or "")
            if amount is None or amount[1] != "PYG":
                figures["unpriced"] += n if amount is None else 0
            else:
                figures["discount"] += amount[0] * n
    return _finished(figures)


def _exact(db, store: dict, since: float, until: float, day: date) -> list[tuple]:
    rows = db.execute(
        f"SELECT a.status, a.decided, a.reason, a.voucher_id, {_VOIDED}, a.dispute, {_FLAGGED}, {_SAID}, 1, a.at, "
        "a.at FROM attempts a LEFT JOIN voids v ON v.attempt_id = a.id WHERE a.store_id = ? AND a.at >= ? "
        "AND a.at < ?", (store["id"], since, until)).fetchall()
    return [r for r in rows if local_day(r[9], store["timezone"]) == day]


def _till_reason(said) -> str | None:
    try:
        reason = json.loads(said).get("reason") if said else None
    except (ValueError, AttributeError):
        return None
    return reason if isinstance(reason, str) else None


def _finished(figures: dict) -> dict:
    reasons = figures.pop("by_reason")
    figures["by_reason"] = sorted(reasons.items(), key=lambda item: (-item[1], item[0]))
    figures["offline_share"] = round(figures["offline"] / figures["attempts"], 4) if figures["attempts"] else None
    return figures


def total(cards: list[dict]) -> dict:
    """A retailer's figures: its stores' summed (each on its own local day)."""
    out = {key: sum(card[key] for card in cards) for key in
           ("count", "discount", "unpriced", "attempts", "offline", "refused", "conflicts", "voids", "disputes")}
    reasons: Counter = Counter()
    for card in cards:
        reasons.update(dict(card["by_reason"]))
    out["by_reason"] = reasons
    return _finished(out)


def today(ctx: Context, stores: list[dict]) -> list[dict]:
    """Each store's figures for its own today (its time zone's), in one read snapshot."""
    db = ctx.storage.read()
    now = ctx.clock()
    priced: dict[str, dict] = {}
    out = []
    for store in stores:
        if store["retailer_id"] not in priced:
            priced[store["retailer_id"]] = amounts(db, store["retailer_id"])
        out.append(day_figures(ctx, store, local_day(now, store["timezone"]), db=db,
                               priced=priced[store["retailer_id"]]))
    return out


def lagging(device: dict, now: float) -> str | None:
    """Why a till counts as not synced ("silent", "rolled", "late", "outbox"), or None; a revoked till is gone."""
    if device["status"] == "revoked" or device.get("kind") == "web":  # a web till is online only: nothing to sync
        return None
    if device["status"] in ("silent", "rolled"):
        return device["status"]
    heard = device["last_seen_at"] if device["last_seen_at"] is not None else device["enrolled_at"]
    if heard is None or now - heard > LATE_S:
        return "late"
    if device.get("outbox_size"):
        return "outbox"
    return None


def redemptions(ctx: Context, stores: list[dict], first: date, last: date, *, offset: int = 0,
                limit: int = 50) -> tuple[int, list[dict]]:
    """(how many, one page of them newest first): the attempts of these stores' local days first..last."""
    limit = max(1, min(int(limit), PAGE_MAX))
    where, params = [], []
    for store in stores:
        since, until = report.window(first, last, store["timezone"] or report.UTC)
        where.append("(a.store_id = ? AND a.at >= ? AND a.at < ?)")
        params += [store["id"], since, until]
    if not where:
        return 0, []
    clause = " OR ".join(where)
    db = ctx.storage.read()
    count = db.execute(f"SELECT count(*) FROM attempts a WHERE {clause}", params).fetchone()[0]
    rows = db.execute(
        "SELECT a.key, a.at, a.status, a.decided, a.method, coalesce(d.name, a.device_id), a.staff_id, s.name, "
        "a.reason, a.kind, a.voucher_id, a.code, a.dispute, a.store_id, v.reason, v.at, a.till_verdict "
        "FROM attempts a LEFT JOIN devices d ON d.id = a.device_id LEFT JOIN staff s ON s.id = a.staff_id "
        f"LEFT JOIN voids v ON v.attempt_id = a.id WHERE {clause} ORDER BY a.at DESC, a.key DESC LIMIT ? OFFSET ?",
        (*params, limit, max(0, int(offset)))).fetchall()
    fields = ("key", "at", "status", "decided", "method", "till", "staff_id", "staff", "reason", "kind",
              "voucher_id", "code", "dispute", "store_id", "void_reason", "void_at")
    out = []
    for row in rows:
        item = dict(zip(fields, row[:len(fields)]))
        item["voided"] = item["void_at"] is not None
        if item["dispute"] == "till_refused":
            item["reason"] = _till_reason(row[-1])
        out.append(item)
    return count, out


def redemption(ctx: Context, key: str) -> dict:
    """One attempt by its key, for the void page: its store, its time, what it was; NotFound otherwise."""
    if not isinstance(key, str) or not 1 <= len(key) <= 128:
        raise NotFound("not_found", "no such redemption")
    row = ctx.storage.read().execute(
        "SELECT a.key, a.at, a.status, a.store_id, a.voucher_id, a.code, a.method, coalesce(d.name, a.device_id), "
        "a.staff_id, v.id IS NOT NULL, a.kind FROM attempts a LEFT JOIN devices d ON d.id = a.device_id "
        "LEFT JOIN voids v ON v.attempt_id = a.id WHERE a.key = ?", (key,)).fetchone()
    if row is None:
        raise NotFound("not_found", "no such redemption")
    return dict(zip(("key", "at", "status", "store_id", "voucher_id", "code", "method", "till", "staff_id",
                     "voided", "kind"), row))
