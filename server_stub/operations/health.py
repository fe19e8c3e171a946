"""`GET /health`: the database answers, and which key signs."""

from __future__ import annotations

from .context import Context


def health(ctx: Context) -> dict:
    ctx.one("SELECT 1")
    return {"status": "ok", "server_time": ctx.clock(), "kid": ctx.kid}
