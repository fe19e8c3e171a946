"""The audit log as the console reads it: newest first, by action, actor, target and time, a page at a time.

`audit.listing` pages oldest first by id for the command line and the API
(`after`); a person at the console looks for what happened lately, so this
pages backwards (`before`). The actor is matched as a part of its label (a
staff id or a name, any case), the target exactly.
"""

from __future__ import annotations

import json

from ..errors import Invalid
from .context import Context

PAGE_MAX = 200
FILTER_MAX = 128
_COLUMNS = "id, at, retailer_id, actor_kind, actor, address, action, target, detail"


def search(ctx: Context, *, retailer_id: str | None = None, action: str | None = None, actor: str | None = None,
           target: str | None = None, since: float | None = None, until: float | None = None,
           before: int | None = None, limit: int = 50) -> dict:
    """Records newest first; `more` and `next` (the `before` of the next page) to go on."""
    if not 1 <= limit <= PAGE_MAX:
        raise Invalid("invalid_value", f"limit is 1 to {PAGE_MAX}")
    for value in (action, actor, target):
        if value is not None and len(value) > FILTER_MAX:
            raise Invalid("invalid_value", f"a filter is at most {FILTER_MAX} characters")
    where, params = [], []
    for clause, value in (("retailer_id = ?", retailer_id), ("action = ?", action), ("target = ?", target),
                          ("at >= ?", since), ("at < ?", until), ("id < ?", before)):
        if value is not None:
            where.append(clause)
            params.append(value)
    if actor is not None:
        # A % or _ typed is that character (escaped); lower() on both sides: both engines ignore case alike.
        where.append("lower(actor) LIKE lower(?) ESCAPE '!'")
        params.append("%" + actor.replace("!", "!!").replace("%", "!%").replace("_", "!_") + "%")
    sql = f"SELECT {_COLUMNS} FROM audit_log" + (f" WHERE {' AND '.join(where)}" if where else "")
    rows = ctx.storage.read().execute(sql + " ORDER BY id DESC LIMIT ?", (*params, limit + 1)).fetchall()
    records = [{"id": r[0], "at": r[1], "retailer_id": r[2], "actor_kind": r[3], "actor": r[4], "address": r[5],
                "action": r[6], "target": r[7], "detail": json.loads(r[8]) if r[8] else None}
               for r in rows[:limit]]
    more = len(rows) > limit
    return {"records": records, "more": more, "next": records[-1]["id"] if more else None}


def actions(ctx: Context, retailer_id: str | None = None) -> list[str]:
    """The actions the log holds (of one retailer when asked), for the filter's choices."""
    sql, params = "SELECT DISTINCT action FROM audit_log", ()
    if retailer_id is not None:
        sql, params = sql + " WHERE retailer_id = ?", (retailer_id,)
    return sorted(r[0] for r in ctx.storage.read().execute(sql, params))
