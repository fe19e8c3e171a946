"""Which kind each till is — the program at a counter ('till') or the shop page in a browser ('web') —
for the console's list of tills (devices.list_devices, which the API answers, leaves it out)."""

from __future__ import annotations

from .context import Context


def kinds(ctx: Context, retailer_id: str | None = None) -> dict[str, str]:
    """Each device's kind by id, of one retailer when asked."""
    sql, params = "SELECT id, kind FROM devices", ()
    if retailer_id is not None:
        sql, params = sql + " WHERE retailer_id = ?", (retailer_id,)
    return dict(ctx.storage.read().execute(sql, params).fetchall())
