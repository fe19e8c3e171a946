"""Who is calling: the admin token, or a till's device token (cached: checked on every call)."""

from __future__ import annotations

from ..datadir import token_hash
from ..errors import Unauthorized
from .context import Context


def require_admin(ctx: Context, token: str | None) -> None:
    if not token:
        raise Unauthorized("unauthorized", "an admin token is required")
    if ctx.one("SELECT 1 FROM admin_tokens WHERE token_hash = ?", (token_hash(token),)) is None:
        raise Unauthorized("unauthorized", "the admin token is not valid")


def require_device(ctx: Context, token: str | None) -> dict:
    if not token:
        raise Unauthorized("unauthorized", "a device token is required")
    digest = token_hash(token)
    device = ctx.devices.get(digest)
    if device is None:
        row = ctx.one(
            "SELECT d.id, d.retailer_id, d.store_id, d.name, s.timezone FROM devices d "
            "JOIN stores s ON s.id = d.store_id WHERE d.token_hash = ?", (digest,)
        )
        if row is None:
            raise Unauthorized("unauthorized", "the device token is not valid")
        device = dict(zip(("id", "retailer_id", "store_id", "name", "timezone"), row))
        ctx.devices[digest] = device
    return device
