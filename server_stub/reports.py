"""`GET /reports/daily`: who may see which store, the query checked, and the store's attempts (all its
tills) read into the shared report of `pos_app.core.report`."""

from __future__ import annotations

import re

from pos_app.core import report
from pos_app.core.domain import LANGUAGES

from .http import ApiError, Download
from .staff_auth import Caller
from .state import VOUCHER_COLUMNS, voucher_from_row

QUERY = ("date", "to", "store", "format", "lang")
FORMATS = ("json", "csv")
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def daily(backend, caller: Caller, query: dict[str, str]) -> Download | dict:
    """The report (JSON) or its CSV for one store over a local day or a range of days."""
    unknown = sorted(set(query) - set(QUERY))
    if unknown:
        raise ApiError(400, "unknown_field", f"unknown query parameter {unknown[0][:40]!r}")
    if "date" not in query:
        raise ApiError(400, "missing_field", "date is required (YYYY-MM-DD, the store's local day)")
    try:
        first = report.parse_day(query["date"], "date")
        last = report.parse_day(query["to"], "to") if "to" in query else first
        report.check_range(first, last)
    except report.ReportError as exc:
        raise ApiError(400, exc.code, str(exc)) from None
    fmt = query.get("format", "json")
    if fmt not in FORMATS:
        raise ApiError(400, "invalid_value", f"format is one of {', '.join(FORMATS)}")
    language = query.get("lang", "es")
    if language not in LANGUAGES:
        raise ApiError(400, "invalid_value", f"lang is one of {', '.join(LANGUAGES)}")
    db = backend.read()
    store = _store(db, caller, query.get("store"))
    since, until = report.window(first, last, store["timezone"])
    rows = _rows(db, store["id"], since, until)
    vouchers = {v.id: v for v in map(voucher_from_row, db.execute(
        f"SELECT {VOUCHER_COLUMNS} FROM vouchers v JOIN retailers r ON r.id = v.retailer_id "
        "WHERE v.retailer_id = ?", (store["retailer_id"],)))}
    staff = dict(db.execute("SELECT id, name FROM staff WHERE retailer_id = ?", (store["retailer_id"],)).fetchall())
    if fmt == "csv":
        text = report.to_csv(rows, first=first, last=last, tz_name=store["timezone"], vouchers=vouchers,
                             staff=staff, language=language)
        return Download(text.encode("utf-8"), "text/csv; charset=utf-8")
    return report.build(rows, first=first, last=last, tz_name=store["timezone"], vouchers=vouchers, staff=staff,
                        language=language, scope={"source": "backend", "store_id": store["id"],
                                                  "store_name": store["name"], "till": None})


def _store(db, caller: Caller, store_id: str | None) -> dict:
    """The store asked for, if this caller may see it: the admin any, staff their retailer's (or only their own
    store, for staff who belong to one)."""
    if store_id is None:
        if caller.kind != "staff":
            raise ApiError(400, "missing_field", "store is required")
        store_id = caller.store_id
    if not _ID.match(store_id):
        raise ApiError(400, "invalid_value", "store is an id of 1 to 64 [A-Za-z0-9_-]")
    row = db.execute("SELECT id, retailer_id, name, timezone FROM stores WHERE id = ?", (store_id,)).fetchone()
    if row is None or (caller.kind == "staff" and row[1] != caller.retailer_id):
        # Another retailer's store is answered like a missing one: its existence is not this caller's business.
        raise ApiError(400, "invalid_value", "no such store")
    if caller.kind == "staff" and row[0] != caller.store_id:
        home = db.execute("SELECT store_id FROM staff WHERE id = ?", (caller.staff_id,)).fetchone()
        if home is None or home[0] is not None:
            raise ApiError(403, "forbidden", "staff of one store see only that store's report")
    return dict(zip(("id", "retailer_id", "name", "timezone"), row))


def _rows(db, store_id: str, since: float, until: float) -> list[report.Row]:
    found = db.execute(
        "SELECT a.key, a.at, a.status, a.decided, a.method, coalesce(d.name, a.device_id), a.staff_id, a.reason, "
        "a.kind, a.voucher_id, a.code, a.jti, a.conflict_with FROM attempts a "
        "LEFT JOIN devices d ON d.id = a.device_id WHERE a.store_id = ? AND a.at >= ? AND a.at < ?",
        (store_id, since, until)).fetchall()
    winner_ids = {r[12] for r in found if r[12] is not None}
    winners = {}
    if winner_ids:
        marks = ",".join("?" * len(winner_ids))
        for wid, jti, at, till, wstore in db.execute(
                "SELECT a.id, a.jti, a.at, coalesce(d.name, a.device_id), a.store_id FROM attempts a "
                f"LEFT JOIN devices d ON d.id = a.device_id WHERE a.id IN ({marks})", tuple(winner_ids)):
            winners[wid] = {"jti": jti, "at": at, "till": till, "store_id": wstore}
    return [report.Row(key=key, at=at, status=status, decided=decided, method=method or "", till=till,
                       staff_id=staff_id, reason=reason, kind=kind, voucher_id=voucher_id, code=code, jti=jti,
                       winner=winners.get(conflict_with) if conflict_with is not None else None)
            for (key, at, status, decided, method, till, staff_id, reason, kind, voucher_id, code, jti,
                 conflict_with) in found]
