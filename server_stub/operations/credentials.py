"""Who is calling: an admin token of some scope, or a till's device token (cached: checked on every call).

Admin tokens have a scope: 'all' is the platform operator (every admin
endpoint, the booklet), 'claims' is a customer app that only issues and
revokes claims. A token is shown once when made and kept only as a hash.
"""

from __future__ import annotations

import secrets

from ..datadir import token_hash
from ..errors import Forbidden, Invalid, NotFound, Unauthorized
from . import audit
from .context import Context

SCOPES = ("all", "claims")
OPERATOR = ("all",)  # what every admin endpoint but the claims ones asks for
CLAIMS = ("claims", "all")


def require_admin(ctx: Context, token: str | None, scopes: tuple[str, ...] = OPERATOR) -> str:
    """The token's scope, if it is an admin token of one of `scopes` (401 unknown, 403 another scope)."""
    if not token:
        raise Unauthorized("unauthorized", "an admin token is required")
    digest = token_hash(token)
    row = ctx.one("SELECT scope, name FROM admin_tokens WHERE token_hash = ?", (digest,))
    if row is None:
        raise Unauthorized("unauthorized", "the admin token is not valid")
    audit.identify("admin", digest[:12], row[1])
    if row[0] not in scopes:
        raise Forbidden("forbidden", f"this needs an admin token of scope {' or '.join(scopes)}")
    return row[0]


def create_token(ctx: Context, scope: str, name: str) -> dict:
    """A new admin token of `scope`: the token itself is in this answer only."""
    if scope not in SCOPES:
        raise Invalid("invalid_value", f"scope is one of {', '.join(SCOPES)}")
    name = name.strip()
    if not name or len(name) > 200:
        raise Invalid("invalid_value", "a token's name is 1 to 200 characters")
    token = secrets.token_urlsafe(32)
    digest = token_hash(token)
    created = ctx.clock()
    actor = audit.current()

    def write(db) -> None:
        db.execute("INSERT INTO admin_tokens (token_hash, created_at, scope, name) VALUES (?, ?, ?, ?)",
                   (digest, created, scope, name))
        audit.write(ctx, db, actor, "token.create", digest[:12], detail={"scope": scope, "name": name})
    ctx.storage.submit(write)
    return {"token": token, "id": digest[:12], "scope": scope, "name": name, "created_at": created}


def list_tokens(ctx: Context) -> list[dict]:
    """Every admin token by its id (the hash's first 12 hex digits), name, scope and age; never the token."""
    rows = ctx.storage.read().execute(
        "SELECT token_hash, name, scope, created_at FROM admin_tokens ORDER BY created_at, token_hash").fetchall()
    return [{"id": digest[:12], "name": name, "scope": scope, "created_at": created}
            for digest, name, scope, created in rows]


def revoke_token(ctx: Context, token_id: str) -> dict:
    """Withdraw the token whose id is `token_id`; the last token of scope 'all' stays (the operator's key)."""
    if not (len(token_id) == 12 and all(c in "0123456789abcdef" for c in token_id)):
        raise Invalid("invalid_value", "a token id is 12 hex digits, as `token list` shows")
    actor = audit.current()

    def write(db):
        ctx.storage.hold(db, "admin-tokens")  # two revokes at once must not both count the other 'all' as left
        rows = db.execute("SELECT token_hash, scope FROM admin_tokens WHERE substr(token_hash, 1, 12) = ?",
                          (token_id,)).fetchall()
        if not rows:
            raise NotFound("not_found", f"no admin token {token_id}")
        if len(rows) > 1:
            raise Invalid("invalid_value", f"{token_id} names more than one token")
        digest, scope = rows[0]
        others = db.execute("SELECT count(*) FROM admin_tokens WHERE scope = 'all' AND token_hash != ?",
                            (digest,)).fetchone()[0]
        if scope == "all" and others == 0:
            raise Invalid("invalid_value", "the last token of scope all cannot be revoked")
        db.execute("DELETE FROM admin_tokens WHERE token_hash = ?", (digest,))
        audit.write(ctx, db, actor, "token.revoke", token_id, detail={"scope": scope})
        return {"id": token_id, "scope": scope, "revoked": True}
    return ctx.storage.submit(write)


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
        ctx.devices.put(digest, device)
    return device
