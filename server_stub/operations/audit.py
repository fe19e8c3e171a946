"""Who did what: every admin and manager action, written in the same transaction as the change.

The web layer says who is calling (`begin` at each request with the
connection's address, `identify` once a credential is checked); a command
at the operator's shell says it is the shell's user. An operation takes
`current()` BEFORE it submits its write, because SQLite's group commit may
run the write on another request's thread, and passes it to `write` inside
the write, so the record and the change commit or fail together.
"""

from __future__ import annotations

import contextvars
import json
from dataclasses import dataclass, replace

from pos_app.core.wire import is_time

from ..errors import Invalid
from .context import Context

LIST_MAX = 500
DETAIL_CHARS = 4000  # a record's detail as kept: names and values changed, never secrets


@dataclass(frozen=True)
class Actor:
    kind: str  # admin (a token), staff (a manager or admin in person), device, shell, system, anonymous
    id: str  # the token's id, the staff member's id, the device's id, the shell's user
    address: str = "unknown"
    name: str | None = None
    retailer_id: str | None = None

    def label(self) -> str:
        return f"{self.id} ({self.name})" if self.name else self.id


ANONYMOUS = Actor("anonymous", "-")
_current: contextvars.ContextVar[Actor] = contextvars.ContextVar("pika_actor", default=ANONYMOUS)


def begin(address: str, kind: str = "anonymous", actor_id: str = "-") -> None:
    """A new request (or command): nobody identified yet, from `address`."""
    _current.set(Actor(kind, actor_id, address or "unknown"))


def identify(kind: str, actor_id: str, name: str | None = None, retailer_id: str | None = None) -> None:
    """The credential checked: who this request acts as (the address kept)."""
    _current.set(replace(_current.get(), kind=kind, id=actor_id, name=name, retailer_id=retailer_id))


def current() -> Actor:
    return _current.get()


def write(ctx: Context, db, actor: Actor, action: str, target: str | None, *, retailer_id: str | None = None,
          detail: dict | None = None) -> None:
    """One record, inside the write that makes the change (`actor` taken by `current()` before submitting)."""
    text = None
    if detail:
        text = json.dumps(detail, ensure_ascii=False, separators=(",", ":"), default=str)
        if len(text) > DETAIL_CHARS:
            text = json.dumps({"truncated": text[:DETAIL_CHARS]}, ensure_ascii=False)
    db.execute("INSERT INTO audit_log (at, retailer_id, actor_kind, actor, address, action, target, detail) "
               "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
               (ctx.clock(), retailer_id or actor.retailer_id, actor.kind, actor.label(), actor.address, action,
                target, text))


def record(ctx: Context, action: str, target: str | None, *, retailer_id: str | None = None,
           detail: dict | None = None) -> None:
    """A record of its own write, for an action whose change is not a write of ours (a restore, a file made)."""
    actor = current()
    ctx.storage.submit(lambda db: write(ctx, db, actor, action, target, retailer_id=retailer_id, detail=detail))


def listing(ctx: Context, *, retailer_id: str | None = None, after: int = 0, limit: int = 100,
            action: str | None = None, since: float | None = None) -> dict:
    """Records after id `after`, oldest first, at most `limit`; for one retailer when asked; `next` to go on."""
    if not 1 <= limit <= LIST_MAX:
        raise Invalid("invalid_value", f"limit is 1 to {LIST_MAX}")
    if since is not None and not is_time(since):
        raise Invalid("invalid_value", "since is a time in seconds since 1970")
    where, params = ["id > ?"], [after]
    if retailer_id is not None:
        where.append("retailer_id = ?")
        params.append(retailer_id)
    if action is not None:
        where.append("action = ?")
        params.append(action)
    if since is not None:
        where.append("at >= ?")
        params.append(since)
    rows = ctx.storage.read().execute(
        f"SELECT id, at, retailer_id, actor_kind, actor, address, action, target, detail FROM audit_log "
        f"WHERE {' AND '.join(where)} ORDER BY id LIMIT ?", (*params, limit + 1)).fetchall()
    more = len(rows) > limit
    records = [{"id": r[0], "at": r[1], "retailer_id": r[2], "actor_kind": r[3], "actor": r[4], "address": r[5],
                "action": r[6], "target": r[7], "detail": json.loads(r[8]) if r[8] else None}
               for r in rows[:limit]]
    return {"records": records, "more": more, "next": records[-1]["id"] if records else after}
