"""Helpers several resources share: ids, feed events, the retailer and store an operation names."""

from __future__ import annotations

import json
import uuid

from pos_app.core import wire

from ..errors import NotFound
from .context import Context

STORE_FIELDS = ("id", "retailer_id", "name", "timezone")


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def insert(db, table: str, row: dict) -> None:
    """One row into `table`, inside the writer's transaction, in the plain SQL any database takes."""
    db.execute(f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", tuple(row.values()))


class UnfitEvent(Exception):
    """A bug: the backend was about to write a feed event its tills cannot apply."""


def add_event(ctx: Context, db, retailer_id: str, type_: str, data: dict, origin: str | None = None,
              store_id: str | None = None) -> None:
    """An event in the retailer's ordered log, which tills pull (`GET /feed`); inside the writer's transaction.
    With `store_id`, only that store's tills get it (a staff member of that store: their PIN's hash).

    The event is checked first with the tills' own contract (`wire.check_event`): one they
    could not apply would be parked by every till, so writing one is a bug (UnfitEvent, a 500
    with the traceback in the log; the writer's savepoint keeps the rest of the write out too).
    """
    try:
        wire.check_event(type_, data)
    except ValueError as exc:
        raise UnfitEvent(f"a {type_} event its tills cannot apply: {exc}") from exc
    db.execute("INSERT INTO events (retailer_id, type, origin_device, data, at, store_id) VALUES (?, ?, ?, ?, ?, ?)",
               (retailer_id, type_, origin, json.dumps(data, ensure_ascii=False, separators=(",", ":")),
                ctx.clock(), store_id))


def require_retailer(ctx: Context, retailer_id: str) -> None:
    if ctx.one("SELECT 1 FROM retailers WHERE id = ?", (retailer_id,)) is None:
        raise NotFound("not_found", "no such retailer")


def store_of(ctx: Context, store_id: str) -> dict:
    row = ctx.one("SELECT id, retailer_id, name, timezone FROM stores WHERE id = ?", (store_id,))
    if row is None:
        raise NotFound("not_found", "no such store")
    return dict(zip(STORE_FIELDS, row))
