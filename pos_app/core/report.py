"""The manager's report of a store's local day (or days): counts, money, breakdowns, fraud signals.

Pure: the till and the backend each turn their own attempt rows into `Row`s
and get the same JSON (and CSV) from here, so their reports agree.
"""

from __future__ import annotations

import csv
import io
import math
from collections import Counter, defaultdict
from datetime import date, datetime, time as dtime, timedelta, timezone
from typing import Iterable, Mapping, NamedTuple
from zoneinfo import ZoneInfo

from .csv_cells import safe_row
from .domain import Method, Voucher

MAX_DAYS = 92  # a quarter; anything longer is an export job, not a report a manager reads
VELOCITY_WINDOW_S = 60.0
# Accepted redemptions at one till within a minute worth a look: a busy queue
# rarely passes one every five seconds; a stack of codes scanned by one person does.
VELOCITY_FLAG = 12
REPEAT_REFUSAL_FLAG = 3  # refusals of one app or typed code in the report's days: someone trying their luck
CSV_FIELDS = ("date", "time", "utc", "till", "staff_id", "staff", "voucher_id", "voucher", "kind", "code",
              "method", "decided", "status", "reason", "discount", "currency", "key", "over_limit", "dispute",
              "void_proof")
# A printed voucher's limits, as a row's `over_limit` names the one its use went past.
STORE_DAY_LIMIT, TOTAL_LIMIT = "store_day_limit", "total_limit"
STATUSES = ("accepted", "refused", "conflict")
# Where the till's verdict of an offline redemption and the backend's differ (docs/sync.md, Entries are proofs).
TILL_ACCEPTED, UNPROVEN, TILL_REFUSED = "till_accepted", "unproven", "till_refused"
DISPUTES = (TILL_ACCEPTED, UNPROVEN, TILL_REFUSED)
# The disputes where this till gave a discount the backend refuses (shown first, marked as refused).
GIVEN_BUT_REFUSED = (TILL_ACCEPTED, UNPROVEN)
TIME_FLAGS = ("future", "too_old")  # an attempt's time the backend could not believe
DISPUTES_MAX = 200  # the report stays small; a manager seeing 200 disputes knows enough to act
# Whether a void proved its manager: a till's void with the PIN's proof (verified) or without one that checks
# (unverified); one made at the backend by a caller checked in person; a till's void synced before proofs
# existed; at the till, one the backend has not answered yet (pending).
VOID_PROOFS = ("verified", "unverified", "at_backend", "before_proofs", "pending")
UTC = "UTC"  # the zone of a report over rows that each carry their own (Row.tz_name)


class ReportError(ValueError):
    """A report that cannot be made as asked, with a stable code (`invalid_value`)."""

    code = "invalid_value"


class Row(NamedTuple):
    """One finished attempt, as both the till and the backend can tell it."""

    key: str
    at: float  # when it happened (the scan), never when it synced
    status: str  # accepted | refused | conflict (another till redeemed the code first)
    decided: str  # online | offline
    method: str
    till: str  # the till's name
    staff_id: str | None = None
    reason: str | None = None
    kind: str | None = None  # personal | printed
    voucher_id: str | None = None
    code: str | None = None
    jti: str | None = None
    processing_s: float | None = None  # scan to verdict: only the till measures it
    winner: Mapping | None = None  # a conflict's first redemption {jti, at, till, store_id}
    voided: bool = False  # a manager voided this accepted redemption (pos_app.core.voids)
    void_reason: str | None = None
    void_staff_id: str | None = None
    void_at: float | None = None
    # The zone of this row's store, when a report spans stores in several zones (a retailer's):
    # each row counts on its own store's local day. None: the report's zone.
    tz_name: str | None = None
    # The row's store, in a report that spans a retailer's stores (for `by_store`). None: one store's report.
    store_id: str | None = None
    # The limit (TOTAL_LIMIT, STORE_DAY_LIMIT) an accepted printed use went past, tills having decided offline
    # and together gone past it: only the backend can tell, counting every store's uses ever; a till keeps
    # its sync answer. A store's day limit is also counted here from the rows themselves (the CSV's column).
    over_limit: str | None = None
    # The backend's judgement where it differs from the till's (DISPUTES), what the till said (accepted,
    # reason, kind, voucher_id, jti, code, staff_id), the time the till gave, and a time the backend could not
    # believe ("future" | "too_old"). The row's own status and reason are the backend's verdict.
    dispute: str | None = None
    till_said: Mapping | None = None
    till_at: float | None = None
    time_flag: str | None = None
    void_proof: str | None = None  # one of VOID_PROOFS, for a voided row


def parse_day(text: object, name: str = "date") -> date:
    """A YYYY-MM-DD calendar day, or ReportError."""
    if not isinstance(text, str) or len(text) != 10 or not text.isascii():
        raise ReportError(f"{name} must be a day as YYYY-MM-DD")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ReportError(f"{name} must be a day as YYYY-MM-DD") from None


def check_range(first: date, last: date) -> None:
    if last < first:
        raise ReportError("the range ends before it starts")
    if (last - first).days + 1 > MAX_DAYS:
        raise ReportError(f"a report covers at most {MAX_DAYS} days")


def window(first: date, last: date, tz_name: str) -> tuple[float, float]:
    """Epoch bounds [since, until) holding every instant whose local date is within first..last.

    Both folds of each midnight are tried, so a clock change at midnight (as
    Paraguay had until 2024) widens the window rather than losing an hour;
    `build` then keeps rows by their exact local date.
    """
    tz = ZoneInfo(tz_name)
    starts = [datetime.combine(first, dtime(0), tz).replace(fold=f).timestamp() for f in (0, 1)]
    ends = [datetime.combine(last + timedelta(days=1), dtime(0), tz).replace(fold=f).timestamp() for f in (0, 1)]
    return min(starts), max(ends)


def build(rows: Iterable[Row], *, first: date, last: date, tz_name: str, vouchers: Mapping[str, Voucher],
          staff: Mapping[str, str], scope: Mapping | None = None, currency: str = "PYG", language: str = "es",
          sync_success_rate: float | None = None) -> dict:
    """The report's JSON for the local days first..last (rows outside them are left out)."""
    check_range(first, last)
    tz = ZoneInfo(tz_name)
    days = [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]
    per_day = {d: {"date": d, "count": 0, "discount": 0, "refused": 0, "conflicts": 0, "offline": 0} for d in days}
    kept: list[tuple[Row, datetime, dict]] = []
    for row in rows:
        local = datetime.fromtimestamp(row.at, tz if row.tz_name is None else ZoneInfo(row.tz_name))
        day = per_day.get(local.date().isoformat())
        if day is not None:
            kept.append((row, local, day))
    kept.sort(key=lambda item: (item[0].at, item[0].key))

    hours = [0] * 24
    by_method = dict.fromkeys(Method.ALL, 0)
    decided = {"online": 0, "offline": 0}
    refused_reasons: Counter = Counter()
    vouchers_seen: dict[str, dict] = {}
    cashiers: dict[str | None, dict] = {}
    tills: dict[str, dict] = {}
    # A retailer's report lists every store, those with nothing that day too: a quiet store is news.
    stores = {one["id"]: _store_entry(one["id"], one.get("name")) for one in (scope or {}).get("stores") or ()}
    nowhere = _store_entry(None, None)  # where one store's rows (no store_id) count: not in the report
    totals: Counter = Counter()
    unpriced = count = refused = attempts = offline_attempts = 0
    conflicts: list[dict] = []
    voids: list[dict] = []
    disputes: list[dict] = []
    accepted_at: dict[str, list[float]] = defaultdict(list)
    rate_limited: Counter = Counter()
    refusals_of: dict[tuple, list[Row]] = defaultdict(list)
    printed_per_day: Counter = Counter()  # (voucher, store, local day): each store's own limit a day
    over_total: dict[str, list[Row]] = defaultdict(list)
    processing: list[float] = []

    for row, local, day in kept:
        attempts += 1
        if (row.dispute is not None or row.time_flag is not None) and len(disputes) < DISPUTES_MAX:
            disputes.append(_dispute(row, local, scope, vouchers, language))  # counted as its status says
        if row.decided == "offline":
            offline_attempts += 1
            day["offline"] += 1
        if row.processing_s is not None:
            processing.append(row.processing_s)
        till = tills.setdefault(row.till, {"till": row.till, "count": 0, "refused": 0, "conflicts": 0,
                                           "offline": 0})
        cashier = cashiers.setdefault(row.staff_id, {"staff_id": row.staff_id, "name": staff.get(row.staff_id, "")
                                                     if row.staff_id else "", "count": 0, "refused": 0,
                                                     "discount": 0})
        store = nowhere if row.store_id is None else stores.get(row.store_id)
        if store is None:  # a store missing from scope["stores"]: listed by its id
            store = stores[row.store_id] = _store_entry(row.store_id, None)
        if row.status == "refused":
            refused += 1
            day["refused"] += 1
            till["refused"] += 1
            cashier["refused"] += 1
            refused_reasons[row.reason or "unknown"] += 1
            store["refused"] += 1
            if row.reason == "rate_limited":
                rate_limited[row.till] += 1
            # A booklet's printed code is shared by every customer: its refusals (a reached limit, an
            # old booklet) are people, not someone trying their luck; its abuse shows as printed overuse.
            if (row.jti or row.code) and row.kind != "printed":
                refusals_of[(row.jti, row.code)].append(row)
            continue
        if row.status == "conflict":
            day["conflicts"] += 1
            till["conflicts"] += 1
            store["conflicts"] += 1
            conflicts.append(_item(row, local, vouchers, language) | {"winner": dict(row.winner or {})})
            continue
        if row.kind == "printed" and row.over_limit == TOTAL_LIMIT:
            over_total[row.voucher_id or ""].append(row)  # given, voided or not: the limit was passed
        if row.voided:
            voids.append(_item(row, local, vouchers, language)
                         | {"void_reason": row.void_reason, "void_staff_id": row.void_staff_id,
                            "void_at": row.void_at, "verified": _VERIFIED.get(row.void_proof),
                            "proof": row.void_proof if row.void_proof in VOID_PROOFS else None})
            store["voids"] += 1
            continue
        count += 1
        day["count"] += 1
        till["count"] += 1
        cashier["count"] += 1
        if row.decided == "offline":
            till["offline"] += 1
        store["count"] += 1
        if row.decided == "offline":
            store["offline"] += 1
        hours[local.hour] += 1
        by_method[row.method] = by_method.get(row.method, 0) + 1
        decided[row.decided] = decided.get(row.decided, 0) + 1
        accepted_at[row.till].append(row.at)
        voucher = vouchers.get(row.voucher_id or "")
        amount = _amount(voucher)
        if amount is None:
            unpriced += 1
        else:
            totals[voucher.discount.currency] += amount
            cashier["discount"] += amount
            if voucher.discount.currency == currency:
                day["discount"] += amount
                store["discount"] += amount
        entry = vouchers_seen.get(row.voucher_id or "")
        if entry is None:
            entry = vouchers_seen[row.voucher_id or ""] = _voucher_entry(row, voucher, language)
        entry["count"] += 1
        if amount is not None:
            entry["discount_total"] += amount
        if entry["kind"] == "printed":
            entry["codes"][row.code or ""] = entry["codes"].get(row.code or "", 0) + 1
            printed_per_day[(row.voucher_id, row.store_id, day["date"])] += 1

    personal = [e for e in vouchers_seen.values() if e["kind"] != "printed"]
    printed = [e for e in vouchers_seen.values() if e["kind"] == "printed"]
    for entry in printed:
        entry["codes"] = dict(sorted(entry["codes"].items()))
    fraud = _fraud(accepted_at, rate_limited, refusals_of, printed_per_day, over_total, vouchers, tills)
    accepted_somewhere = count + len(conflicts) + len(voids)
    return {
        "from": days[0], "to": days[-1], "date": days[0] if len(days) == 1 else None,
        "timezone": tz_name, "scope": dict(scope or {}),
        "count": count,
        "discount_total": {"amount": totals.get(currency, 0), "currency": currency},
        "discount_other_currencies": {c: a for c, a in sorted(totals.items()) if c != currency},
        # Percentage discounts depend on the sale, which the till does not record.
        "discount_unpriced": unpriced,
        "attempts": attempts,
        "by_voucher": {"personal": _ranked(personal, "voucher_id"), "printed": _ranked(printed, "voucher_id")},
        "by_hour": hours,
        "by_day": list(per_day.values()),
        "by_cashier": _ranked(list(cashiers.values()), "name"),
        "by_till": _ranked(list(tills.values()), "till"),
        "by_store": _ranked(list(stores.values()), "name"),
        "by_method": by_method,
        "decided": decided,
        "conflicts": {"count": len(conflicts), "items": conflicts},
        "voids": {"count": len(voids), "items": voids},
        "disputes": disputes,
        "refused": {"count": refused, "by_reason": dict(sorted(refused_reasons.items(), key=lambda i: (-i[1], i[0])))},
        "fraud": fraud,
        "kpis": {
            "offline_share": _share(offline_attempts, attempts),
            "camera_share": _share(by_method.get(Method.CAMERA, 0), count),
            "typed_share": _share(by_method.get(Method.TYPED, 0), count),
            "conflict_rate": _share(len(conflicts), accepted_somewhere),
            "refusal_rate": _share(refused, attempts),
            "processing_ms_p50": _percentile_ms(processing, 0.50),
            "processing_ms_p95": _percentile_ms(processing, 0.95),
            "sync_success_rate": sync_success_rate,
        },
    }


def _amount(voucher: Voucher | None) -> int | None:
    """The discount in minor units, when it does not depend on the sale."""
    if voucher is None or voucher.discount.kind != "amount":
        return None
    return int(voucher.discount.value)


def _store_entry(store_id: str | None, name: str | None) -> dict:
    return {"store_id": store_id, "name": name or "", "count": 0, "discount": 0, "refused": 0, "conflicts": 0,
            "voids": 0, "offline": 0}


def _voucher_entry(row: Row, voucher: Voucher | None, language: str) -> dict:
    kind = voucher.kind if voucher is not None else (row.kind or "personal")
    entry = {"voucher_id": row.voucher_id, "title": voucher.text("title", language) if voucher else "",
             "kind": kind, "count": 0,
             "discount": voucher.discount.to_json() if voucher else None, "discount_total": 0}
    if kind == "printed":  # a printed voucher is a booklet campaign; its codes are counted apart
        entry["codes"] = {}
        entry["store_day_limit"] = voucher.store_day_limit if voucher else None
    return entry


def _item(row: Row, local: datetime, vouchers: Mapping[str, Voucher], language: str) -> dict:
    voucher = vouchers.get(row.voucher_id or "")
    return {"key": row.key, "at": row.at, "local_time": local.isoformat(timespec="seconds"), "till": row.till,
            "staff_id": row.staff_id, "voucher_id": row.voucher_id,
            "title": voucher.text("title", language) if voucher else "", "kind": row.kind, "jti": row.jti,
            "code": row.code, "method": row.method, "decided": row.decided}


_VERIFIED = {"verified": True, "unverified": False}


def _dispute(row: Row, local: datetime, scope: Mapping | None, vouchers: Mapping[str, Voucher], language: str) -> dict:
    """A redemption the backend judged otherwise than its till, or whose time it could not believe."""
    said = dict(row.till_said) if row.till_said is not None else None
    voucher = vouchers.get(str((said or {}).get("voucher_id") or row.voucher_id or ""))
    return {"key": row.key, "at": row.at, "local_time": local.isoformat(timespec="seconds"), "till": row.till,
            "store_id": row.store_id or (scope or {}).get("store_id") or "",
            "dispute": row.dispute if row.dispute in DISPUTES else None,
            # The backend's reason for refusing it (a refusal of the till's own is the till's reason).
            "reason": row.reason if row.status == "refused" and row.dispute != "till_refused" else None,
            "till_said": said, "till_at": row.till_at,
            "time_flag": row.time_flag if row.time_flag in TIME_FLAGS else None,
            "title": voucher.text("title", language) if voucher else ""}


def _fraud(accepted_at, rate_limited, refusals_of, printed_per_day, over_total, vouchers, tills) -> dict:
    velocity = []
    for till in sorted(tills):
        times = sorted(accepted_at.get(till, ()))
        peak, peak_at, start = 0, None, 0
        for end, at in enumerate(times):  # the busiest minute, as a sliding window over sorted times
            while at - times[start] >= VELOCITY_WINDOW_S:
                start += 1
            if end - start + 1 > peak:
                peak, peak_at = end - start + 1, times[start]
        velocity.append({"till": till, "peak_per_minute": peak, "peak_at": peak_at,
                         "rate_limited": rate_limited.get(till, 0),
                         "flagged": peak >= VELOCITY_FLAG or rate_limited.get(till, 0) > 0})
    repeated = []
    for (jti, code), refusals in refusals_of.items():
        if len(refusals) >= REPEAT_REFUSAL_FLAG:
            repeated.append({"jti": jti, "code": code, "refusals": len(refusals),
                             "reasons": dict(sorted(Counter(r.reason or "unknown" for r in refusals).items())),
                             "tills": sorted({r.till for r in refusals}), "first_at": refusals[0].at,
                             "last_at": refusals[-1].at, "flagged": True})
    repeated.sort(key=lambda e: (-e["refusals"], e["jti"] or "", e["code"] or ""))
    overuse = []
    for (voucher_id, store_id, day), uses in sorted(printed_per_day.items(), key=lambda i: tuple(map(str, i[0]))):
        voucher = vouchers.get(voucher_id or "")
        limit = voucher.store_day_limit if voucher else None
        if limit is not None and uses >= limit:  # reached is shown, past it is flagged
            overuse.append({"voucher_id": voucher_id, "store_id": store_id, "date": day, "uses": uses,
                            "store_day_limit": limit, "flagged": uses > limit})
    over = []
    for voucher_id, past in sorted(over_total.items()):
        voucher = vouchers.get(voucher_id)
        over.append({"voucher_id": voucher_id or None, "uses_over": len(past),
                     "total_limit": voucher.total_limit if voucher else None,
                     "tills": sorted({r.till for r in past}), "first_at": past[0].at, "last_at": past[-1].at,
                     "flagged": True})
    flagged = sum(e["flagged"] for group in (velocity, repeated, overuse, over) for e in group)
    return {"velocity": velocity, "repeated_refusals": repeated, "printed_overuse": overuse,
            "printed_over_total": over, "flagged": flagged}


def _ranked(entries: list[dict], name: str) -> list[dict]:
    return sorted(entries, key=lambda e: (-e["count"], str(e.get(name) or "")))


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _percentile_ms(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile, in milliseconds."""
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))] * 1000, 1)


# --- CSV ------------------------------------------------------------------------------------


def to_csv(rows: Iterable[Row], *, first: date, last: date, tz_name: str, vouchers: Mapping[str, Voucher],
           staff: Mapping[str, str], language: str = "es") -> str:
    """One line per attempt of the days, oldest first: UTF-8 text with a header and CRLF, as spreadsheets like."""
    tz = ZoneInfo(tz_name)
    wanted = {(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)}
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_FIELDS)
    uses: Counter = Counter()  # a printed voucher's accepted uses so far, per store and local day
    for row in sorted(rows, key=lambda r: (r.at, r.key)):
        local = datetime.fromtimestamp(row.at, tz if row.tz_name is None else ZoneInfo(row.tz_name))
        day = local.date().isoformat()
        if day not in wanted:
            continue
        voucher = vouchers.get(row.voucher_id or "")
        voided = row.voided and row.status == "accepted"  # a conflict stays a conflict, as in `build`
        amount = _amount(voucher) if row.status == "accepted" and not voided else None
        status = "voided" if voided else row.status
        over = row.over_limit if row.status == "accepted" and row.over_limit in (STORE_DAY_LIMIT, TOTAL_LIMIT) else ""
        if row.status == "accepted" and row.kind == "printed" and not voided:  # as `build` counts them
            uses[(row.voucher_id, row.store_id, day)] += 1
            limit = voucher.store_day_limit if voucher else None
            if not over and limit is not None and uses[(row.voucher_id, row.store_id, day)] > limit:
                over = STORE_DAY_LIMIT
        writer.writerow(safe_row((  # every text cell: ids, codes and reasons come from tills too
            day, local.strftime("%H:%M:%S"),
            datetime.fromtimestamp(row.at, timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
            row.till, row.staff_id or "", staff.get(row.staff_id, "") if row.staff_id else "",
            row.voucher_id or "", voucher.text("title", language) if voucher else "",
            row.kind or "", row.code or "", row.method, row.decided, status, row.reason or "",
            "" if amount is None else amount, voucher.discount.currency if voucher else "", row.key, over,
            row.dispute if row.dispute in DISPUTES else "",
            row.void_proof if voided and row.void_proof in VOID_PROOFS else "",
        )))
    return out.getvalue()
