"""A retailer as the console shows it: its name, its settings and how many stores and vouchers it has.

`admin.list_retailers` answers id and name only (the API's shape); the
console's retailer pages also show the settings `admin.retailer_settings`
changes, so a person sees what they are changing.
"""

from __future__ import annotations

from ..errors import NotFound
from .context import Context


def retailer(ctx: Context, retailer_id: str) -> dict:
    row = ctx.one("SELECT id, name, created_at, staff_anywhere, offline_days FROM retailers WHERE id = ?",
                  (retailer_id,))
    if row is None:
        raise NotFound("not_found", "no such retailer")
    return {"id": row[0], "name": row[1], "created_at": row[2], "staff_anywhere": bool(row[3]),
            "offline_days": row[4]}


def overview(ctx: Context) -> list[dict]:
    """Every retailer with its settings and counts, oldest first."""
    db = ctx.storage.read()
    stores = dict(db.execute("SELECT retailer_id, count(*) FROM stores GROUP BY retailer_id").fetchall())
    vouchers = dict(db.execute("SELECT retailer_id, count(*) FROM vouchers GROUP BY retailer_id").fetchall())
    return [{"id": r[0], "name": r[1], "created_at": r[2], "staff_anywhere": bool(r[3]), "offline_days": r[4],
             "stores": stores.get(r[0], 0), "vouchers": vouchers.get(r[0], 0)}
            for r in db.execute("SELECT id, name, created_at, staff_anywhere, offline_days FROM retailers "
                                "ORDER BY created_at, id")]
