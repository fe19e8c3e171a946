"""The day report at the till: this till's own attempts, read from its store into the shared report.

The computation is `pos_app.core.report`'s, the same the backend runs over
all of a store's tills.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date

from ..core import report


def row_batches(store, first: date, last: date) -> Iterator[list[report.Row]]:
    """The till's finished attempts that may fall on the local days first..last, oldest first, a batch at a time."""
    since, until = report.window(first, last, store.store_timezone)
    till = store.device_name
    judged, proofs = _judged(store, since, until), _void_proofs(store, since, until)
    for batch in store.report_rows(since, until):
        yield [_row(till, judged.get(item[0]), proofs.get(item[0]), *item) for item in batch]


def _row(till, judged, void_proof, key, at, status, decided, method, staff_id, reason, kind, voucher_id, code, jti,
         finished_at, conflict, void_reason, void_staff_id, void_at, over_limit) -> report.Row:
    dispute = backend_reason = time_flag = said = None
    if judged is not None:
        dispute, backend_reason, time_flag, accepted = judged
        said = {"accepted": bool(accepted), "reason": reason, "kind": kind, "voucher_id": voucher_id, "jti": jti,
                "code": code, "staff_id": staff_id}
        if dispute in report.GIVEN_BUT_REFUSED:
            reason = backend_reason  # refused now, as the backend counts it; `till_said` keeps the till's word
    return report.Row(
        key=key, at=at, status=status, decided=decided, method=method, till=till, staff_id=staff_id,
        reason=reason, kind=kind, voucher_id=voucher_id, code=code, jti=jti,
        processing_s=None if finished_at is None else max(0.0, finished_at - at),
        winner=json.loads(conflict) if conflict else None, voided=void_at is not None,
        void_reason=void_reason, void_staff_id=void_staff_id, void_at=void_at,
        # The backend's sync answer: only it counts every till's uses against the limits.
        over_limit=over_limit if over_limit in (report.STORE_DAY_LIMIT, report.TOTAL_LIMIT) else None,
        dispute=dispute, till_said=said, till_at=None if said is None else at, time_flag=time_flag,
        void_proof=void_proof if void_at is not None else None)


def _judged(store, since: float, until: float) -> dict[str, tuple]:
    """The attempts the backend judged otherwise (or whose time it doubted): few, so read apart from the rows."""
    return {key: rest for key, *rest in store.conn.execute(
        "SELECT key, dispute, backend_reason, time_flag, accepted FROM attempts WHERE at >= ? AND at < ?"
        " AND (dispute IS NOT NULL OR time_flag IS NOT NULL)", (since, until))}


def _void_proofs(store, since: float, until: float) -> dict[str, str]:
    """Each voided redemption's `report.VOID_PROOFS` word, as far as this till knows: the backend's answer for
    its own voids; before it, unverified when the void carries no PIN proof (the backend cannot find one),
    else pending; a void heard of through the feed was made at the backend."""
    found = {}
    for key, verified, origin, synced_at, proof in store.conn.execute(
            "SELECT v.redemption_key, v.verified, v.origin, v.synced_at, json_extract(o.payload, '$.staff_proof')"
            " FROM voids v JOIN attempts a ON a.key = v.redemption_key LEFT JOIN outbox o ON o.key = v.id"
            " WHERE a.at >= ? AND a.at < ?", (since, until)):
        if origin == "feed":
            found[key] = "at_backend"
        elif verified is not None:
            found[key] = "verified" if verified else "unverified"
        elif synced_at is not None:
            found[key] = "before_proofs"
        else:
            found[key] = "pending" if proof else "unverified"
    return found


def rows(store, first: date, last: date) -> list[report.Row]:
    """The till's finished attempts that may fall on the local days first..last, oldest first."""
    return [row for batch in row_batches(store, first, last) for row in batch]


def _lookups(store) -> tuple[dict, dict]:
    return {v.id: v for v in store.vouchers()}, {s["id"]: s["name"] for s in store.staff_members()}


def day_report(store, first: date, last: date | None = None, *, language: str = "es",
               attempts: list[report.Row] | None = None) -> dict:
    """The report's JSON for this till over the local days first..last (one day by default).

    `attempts`: the days' `rows`, when the caller has read them already (the report view shows them too).
    """
    last = last or first
    report.check_range(first, last)
    vouchers, staff = _lookups(store)
    ok, failed = int(store.get("sync_runs_ok") or 0), int(store.get("sync_runs_failed") or 0)
    return report.build(
        rows(store, first, last) if attempts is None else attempts, first=first, last=last,
        tz_name=store.store_timezone, vouchers=vouchers, staff=staff, language=language,
        scope={"source": "till", "store_id": store.store_id, "store_name": store.get("store_name") or "",
               "till": store.device_name},
        # Rounds are counted over the till's life, not per day: the figure says how sync fares lately.
        sync_success_rate=round(ok / (ok + failed), 4) if ok + failed else None)


def day_csv(store, first: date, last: date | None = None, *, language: str = "es") -> str:
    """One CSV line per attempt of the days at this till."""
    last = last or first
    report.check_range(first, last)
    vouchers, staff = _lookups(store)
    return report.to_csv(rows(store, first, last), first=first, last=last, tz_name=store.store_timezone,
                         vouchers=vouchers, staff=staff, language=language)
