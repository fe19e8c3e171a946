"""`GET /reports/daily`: who may see which store (or a whole retailer), the query checked, and the attempts
(all tills) read into the shared report of `pos_app.core.report`.

A retailer-wide report counts each store's own local day, as its head office
reads "Monday": a store in another time zone contributes its Monday, not the
hours that are Monday in Asunción. Rows are merged; hours are local hours
(9 in the morning wherever it was); `timezone` is null when the stores'
zones differ, and `scope.stores` gives each store's.
"""

from __future__ import annotations

import json
import re
from typing import NamedTuple

from pos_app.core import report
from pos_app.core.domain import LANGUAGES

from ..errors import Forbidden, Invalid
from .staff_auth import Caller
from ..storage.state import VOUCHER_COLUMNS, voucher_from_row
from .context import Context

QUERY = ("date", "to", "store", "retailer", "format", "lang")
FORMATS = ("json", "csv", "pdf")
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class File(NamedTuple):
    """A report as a file (CSV, PDF): the web layer sends it as a download."""

    data: bytes
    content_type: str


def daily(ctx: Context, caller: Caller, query: dict[str, str]) -> File | dict:
    """The report (JSON) or its CSV for one store, or all of a retailer's, over a local day or a range of days."""
    unknown = sorted(set(query) - set(QUERY))
    if unknown:
        raise Invalid("unknown_field", f"unknown query parameter {unknown[0][:40]!r}")
    if "date" not in query:
        raise Invalid("missing_field", "date is required (YYYY-MM-DD, the store's local day)")
    try:
        first = report.parse_day(query["date"], "date")
        last = report.parse_day(query["to"], "to") if "to" in query else first
        report.check_range(first, last)
    except report.ReportError as exc:
        raise Invalid(exc.code, str(exc)) from None
    fmt = query.get("format", "json")
    if fmt not in FORMATS:
        raise Invalid("invalid_value", f"format is one of {', '.join(FORMATS)}")
    language = query.get("lang", "es")
    if language not in LANGUAGES:
        raise Invalid("invalid_value", f"lang is one of {', '.join(LANGUAGES)}")
    db = ctx.storage.read()
    if "retailer" in query:
        store, rows, scope = _retailer_rows(db, caller, query, first, last)
    else:
        store = _store(db, caller, query.get("store"))
        since, until = report.window(first, last, store["timezone"])
        rows = _rows(db, store["id"], since, until)
        scope = {"source": "backend", "store_id": store["id"], "store_name": store["name"], "till": None}
    vouchers = {v.id: v for v in map(voucher_from_row, db.execute(
        f"SELECT {VOUCHER_COLUMNS} FROM vouchers v JOIN retailers r ON r.id = v.retailer_id "
        "WHERE v.retailer_id = ?", (store["retailer_id"],)))}
    staff = dict(db.execute("SELECT id, name FROM staff WHERE retailer_id = ?", (store["retailer_id"],)).fetchall())
    if fmt == "csv":
        text = report.to_csv(rows, first=first, last=last, tz_name=store["timezone"] or report.UTC, vouchers=vouchers,
                             staff=staff, language=language)
        return File(text.encode("utf-8"), "text/csv; charset=utf-8")
    answer = report.build(rows, first=first, last=last, tz_name=store["timezone"] or report.UTC, vouchers=vouchers,
                          staff=staff, language=language, scope=scope)
    if store["timezone"] is None:
        answer["timezone"] = None  # a retailer's stores in several zones: each store's own in scope.stores
    if fmt == "pdf":  # one or two A4 pages in the language asked; reportlab is loaded only for them
        from pos_app.pdf.day_report import render

        return File(render(answer, language=language), "application/pdf")
    return answer


def _store(db, caller: Caller, store_id: str | None) -> dict:
    """The store asked for, if this caller may see it: the admin any, staff their retailer's (or only their own
    store, for staff who belong to one)."""
    if store_id is None:
        if caller.kind != "staff":
            raise Invalid("missing_field", "store is required")
        store_id = caller.store_id
    if not _ID.match(store_id):
        raise Invalid("invalid_value", "store is an id of 1 to 64 [A-Za-z0-9_-]")
    row = db.execute("SELECT id, retailer_id, name, timezone FROM stores WHERE id = ?", (store_id,)).fetchone()
    if row is None or (caller.kind == "staff" and row[1] != caller.retailer_id):
        # Another retailer's store is answered like a missing one: its existence is not this caller's business.
        raise Invalid("invalid_value", "no such store")
    if caller.kind == "staff" and row[0] != caller.store_id and not caller.retailer_wide:
        raise Forbidden("forbidden", "staff of one store see only that store's report")
    return dict(zip(("id", "retailer_id", "name", "timezone"), row))


def _retailer_rows(db, caller: Caller, query: dict[str, str], first, last) -> tuple[dict, list, dict]:
    """A retailer's report: (a store-like {id, name, retailer_id, timezone} for the rest of `daily`,
    the rows of all its stores, the scope). `timezone` is None when the stores' zones differ."""
    if "store" in query:
        raise Invalid("invalid_value", "ask for a store or a retailer, not both")
    retailer = _retailer(db, caller, query["retailer"])
    stores = [dict(zip(("id", "name", "timezone"), r)) for r in db.execute(
        "SELECT id, name, timezone FROM stores WHERE retailer_id = ? ORDER BY name, id", (retailer["id"],))]
    zones = {one["timezone"] for one in stores}
    mixed = len(zones) > 1
    rows = []
    for one in stores:  # each store's own local days
        since, until = report.window(first, last, one["timezone"])
        rows += _rows(db, one["id"], since, until, tz_name=one["timezone"] if mixed else None, store_name=one["name"])
    like_store = {"id": None, "name": retailer["name"], "retailer_id": retailer["id"],
                  "timezone": None if mixed else (zones.pop() if zones else report.UTC)}
    scope = {"source": "backend", "store_id": None, "store_name": None, "till": None,
             "retailer_id": retailer["id"], "retailer_name": retailer["name"], "stores": stores}
    return like_store, rows, scope


def _retailer(db, caller: Caller, retailer_id: str) -> dict:
    """The retailer asked for, if this caller may see all its stores: the admin any; staff their own
    retailer's, if they belong to no single store."""
    if not _ID.match(retailer_id):
        raise Invalid("invalid_value", "retailer is an id of 1 to 64 [A-Za-z0-9_-]")
    row = db.execute("SELECT id, name FROM retailers WHERE id = ?", (retailer_id,)).fetchone()
    if row is None or (caller.kind == "staff" and row[0] != caller.retailer_id):
        raise Invalid("invalid_value", "no such retailer")
    if caller.kind == "staff" and not caller.retailer_wide:
        raise Forbidden("forbidden", "staff of one store see only that store's report")
    return {"id": row[0], "name": row[1]}


def _rows(db, store_id: str, since: float, until: float, *, tz_name: str | None = None,
          store_name: str | None = None) -> list[report.Row]:
    """The store's attempts in [since, until) with their voids; with `store_name` (a retailer's report)
    tills are named "store / till", as two stores may each have a "Caja 1", and rows carry their store
    (for `by_store`)."""
    found = db.execute(
        "SELECT a.key, a.at, a.status, a.decided, a.method, coalesce(d.name, a.device_id), a.staff_id, a.reason, "
        "a.kind, a.voucher_id, a.code, a.jti, a.conflict_with, v.reason, v.staff_id, v.at, a.dispute, a.till_verdict, "
        "a.till_at, a.time_flag, v.verified, v.device_id, a.id FROM attempts a "
        "LEFT JOIN devices d ON d.id = a.device_id LEFT JOIN voids v ON v.attempt_id = a.id "
        "WHERE a.store_id = ? AND a.at >= ? AND a.at < ?",
        (store_id, since, until)).fetchall()
    winner_ids = {r[12] for r in found if r[12] is not None}
    winners = {}
    if winner_ids:
        marks = ",".join("?" * len(winner_ids))
        for wid, jti, at, till, wstore in db.execute(
                "SELECT a.id, a.jti, a.at, coalesce(d.name, a.device_id), a.store_id FROM attempts a "
                f"LEFT JOIN devices d ON d.id = a.device_id WHERE a.id IN ({marks})", tuple(winner_ids)):
            winners[wid] = {"jti": jti, "at": at, "till": till, "store_id": wstore}
    cutoffs = _over_total(db, {r[9] for r in found if r[2] == "accepted" and r[8] == "printed" and r[9]})
    rows = []
    for (key, at, status, decided, method, till, staff_id, reason, kind, voucher_id, code, jti, conflict_with,
         void_reason, void_staff_id, void_at, dispute, said, till_at, time_flag, verified, void_device,
         attempt_id) in found:
        said = json.loads(said) if said else None
        if dispute == "till_refused" and isinstance(said, dict):
            reason = said.get("reason")  # the till's refusal: the backend would have accepted, so has no reason
        rows.append(report.Row(
            key=key, at=at, status=status, decided=decided, method=method or "",
            till=till if store_name is None else f"{store_name} / {till}",
            staff_id=staff_id, reason=reason, kind=kind, voucher_id=voucher_id, code=code, jti=jti,
            winner=winners.get(conflict_with) if conflict_with is not None else None,
            voided=void_at is not None, void_reason=void_reason, void_staff_id=void_staff_id,
            void_at=void_at, tz_name=tz_name, store_id=None if store_name is None else store_id,
            over_limit=report.TOTAL_LIMIT if status == "accepted" and attempt_id > cutoffs.get(voucher_id, attempt_id)
            else None,
            dispute=dispute, till_said=said if isinstance(said, dict) else None, till_at=till_at,
            time_flag=time_flag, void_proof=None if void_at is None else _void_proof(verified, void_device)))
    return rows


def _void_proof(verified: int | None, device_id: str | None) -> str:
    """Whether a void proved its manager (`report.VOID_PROOFS`): a till's by its PIN's proof; one made here
    by a caller checked in person; a till's recorded before proofs existed."""
    if verified is not None:
        return "verified" if verified else "unverified"
    return "at_backend" if device_id is None else "before_proofs"


def _over_total(db, voucher_ids: set[str]) -> dict[str, int]:
    """For each of these printed vouchers with a `total_limit`, the attempt id of its last use within the limit,
    over every store and day: accepted uses with a higher id were recorded after the limit was reached (tills
    that decided offline and together went past it), in the order the backend recorded them, as their tills
    were told (`over_limit` in the sync answer). A limit not reached yet has no entry.

    The limit's use is found by walking accepted uses in id order and stopping there (LIMIT 1 OFFSET), not by
    numbering every use ever: a campaign's tens of thousands of uses would cost a busy day's report 0.2 s."""
    cutoffs: dict[str, int] = {}
    for voucher_id in sorted(voucher_ids):
        row = db.execute("SELECT retailer_id, total_limit FROM vouchers WHERE id = ?", (voucher_id,)).fetchone()
        if row is None or row[1] is None:
            continue
        if row[1] <= 0:
            cutoffs[voucher_id] = 0  # every use is past a limit of none
            continue
        last = db.execute("SELECT id FROM attempts WHERE retailer_id = ? AND voucher_id = ? AND status = 'accepted' "
                          "ORDER BY id LIMIT 1 OFFSET ?", (row[0], voucher_id, row[1] - 1)).fetchone()
        if last is not None:
            cutoffs[voucher_id] = last[0]
    return cutoffs
