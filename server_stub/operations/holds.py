"""The names a write holds (`Storage.hold`) while it judges a redemption again, and its retries.

Over PostgreSQL writes run side by side, so a write that counts a printed
voucher's uses, looks for an accepted attempt of a token id or for an
idempotency key must first hold the names of what it reads: a voucher's
limits are counts over all its codes (so the voucher's name, not the code's),
one accepted attempt per token id (the `jti`'s, whether it came as a token or
as a short code), one row per key, and a till's velocity (the device's: exact
among judged writes; an online personal token's insert, which holds nothing,
may pass it by the few that race in at once). Voids hold their key and the
redemption they void. SQLite holds nothing: its writer is alone.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

from pos_app.core import codes, verdict


def key_name(key: str) -> str:
    return f"attempt-key:{key}"


def jti_name(retailer_id: str, jti: str) -> str:
    return f"jti:{retailer_id}:{jti}"


def voucher_name(voucher_id: str) -> str:
    return f"voucher:{voucher_id}"


def device_name(device_id: str) -> str:
    return f"device:{device_id}"


def device_life_name(device_id: str) -> str:
    """A till's standing: a revoke, a roll and a sync's batch each hold it (two rolls at once must not leave
    two live codes; a batch lands wholly before a revoke, or is refused)."""
    return f"device-life:{device_id}"


def void_names(void_key: str, redemption_key: str) -> tuple[str, str]:
    return f"void-key:{void_key}", f"voided:{redemption_key}"


def verdict_names(device: dict, key: str, v: verdict.Verdict) -> list[str]:
    """What a redemption judged as `v` (before the write) decides under."""
    names = [key_name(key), device_name(device["id"])]
    if v.jti is not None:
        names.append(jti_name(device["retailer_id"], v.jti))
    if v.voucher is not None:
        names.append(voucher_name(v.voucher.id))
    return names


def reading_names(db: Any, retailer_id: str, readings: Iterable[verdict.Reading]) -> list[str]:
    """The token ids and vouchers a batch of readings can touch, found without judging: a token names
    them itself, a typed code through its printed code or claim (two queries for the whole batch)."""
    names: list[str] = []
    printed: set[str] = set()
    short: set[str] = set()
    for reading in readings:
        if reading.token is not None:
            token = reading.token
            names.append(jti_name(retailer_id, token.jti) if token.jti is not None else voucher_name(token.vid))
        elif reading.text is not None:
            code = verdict.printed_form(reading.text)
            if code is not None:
                printed.add(code)
            if codes.looks_like_short_code(reading.text):
                try:
                    short.add(codes.parse_short_code(reading.text))
                except codes.ShortCodeError:
                    pass
    names += [voucher_name(row[0]) for row in _in(db, "SELECT DISTINCT voucher_id FROM printed_codes",
                                                     "code", printed, retailer_id)]
    names += [jti_name(retailer_id, row[0]) for row in _in(db, "SELECT jti FROM claims", "short_code", short,
                                                           retailer_id)]
    return names


def _in(db: Any, select: str, column: str, values: set[str], retailer_id: str) -> list:
    if not values:
        return []
    ordered = sorted(values)
    return db.execute(f"{select} WHERE retailer_id = ? AND {column} IN ({', '.join('?' * len(ordered))})",
                      (retailer_id, *ordered)).fetchall()


RUNS = 3  # a judged write's runs at most, over PostgreSQL


def submit_judged(storage: Any, fn: Callable[[Any], Any]) -> Any:
    """`storage.submit(fn)`, run again if a unique index refused it: over PostgreSQL such an error aborts the
    whole transaction, and it can still come from a write that held other names (a row another request
    inserted without judging: a refusal, or the fast path of a personal token); the next run, under the
    same holds, sees that row and answers from it. A batch naming several token ids can lose to a
    different one each run, so up to RUNS; a refusal after that is raised."""
    for run in range(1, RUNS + 1):
        try:
            return storage.submit(fn)
        except storage.IntegrityError:
            if not storage.CONCURRENT_WRITES or run == RUNS:
                raise
