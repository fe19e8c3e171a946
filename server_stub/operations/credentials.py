"""Who is calling: an admin token of some scope, or a till's device token (cached: checked on every call).

Admin tokens have a scope: 'all' is the platform operator (every admin
endpoint, the booklet), 'claims' is a customer app that only issues and
revokes claims, 'metrics' is Prometheus (GET /metrics). A token is shown once when made and kept only as a hash.
It may expire (`expires_at`; past it, 401 `token_expired`); rotating one makes
its replacement, of the same scope and name, and lets the old one live on for
a grace period, so whoever holds it can switch without a gap.
"""

from __future__ import annotations

import math
import secrets

from ..datadir import token_hash
from ..errors import Forbidden, Invalid, NotFound, Unauthorized
from . import audit, devices
from .context import Context

SCOPES = ("all", "claims", "metrics")
METRICS = ("metrics", "all")  # /metrics and /health/ready's values: Prometheus sends a bearer token
OPERATOR = ("all",)  # what every admin endpoint but the claims ones asks for
CLAIMS = ("claims", "all")
MIN_LIFETIME_S, MAX_LIFETIME_S = 60, 5 * 366 * 24 * 3600  # a token's --expires-in
MAX_GRACE_S = 7 * 24 * 3600  # how long a rotated token still works


def require_admin(ctx: Context, token: str | None, scopes: tuple[str, ...] = OPERATOR) -> str:
    """The token's scope, if it is an admin token of one of `scopes` (401 unknown, 403 another scope)."""
    if not token:
        raise Unauthorized("unauthorized", "an admin token is required")
    digest = token_hash(token)
    row = ctx.one("SELECT scope, name, expires_at FROM admin_tokens WHERE token_hash = ?", (digest,))
    if row is None:
        raise Unauthorized("unauthorized", "the admin token is not valid")
    if row[2] is not None and row[2] <= ctx.clock():
        raise Unauthorized("token_expired", "the admin token has expired: the operator makes a new one (token rotate)")
    audit.identify("admin", digest[:12], row[1])
    if row[0] not in scopes:
        raise Forbidden("forbidden", f"this needs an admin token of scope {' or '.join(scopes)}")
    return row[0]


def _lifetime(value: object, what: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not low <= value <= high:
        raise Invalid("invalid_value", f"{what} is {_span(low)} to {_span(high)}")
    return float(value)


def _span(seconds: float) -> str:
    return f"{seconds / 86400:g} days" if seconds >= 86400 else f"{seconds:g} seconds"


def _check_token_id(token_id: str) -> None:
    if not (isinstance(token_id, str) and len(token_id) == 12 and all(c in "0123456789abcdef" for c in token_id)):
        raise Invalid("invalid_value", "a token id is 12 hex digits, as `token list` shows")


def create_token(ctx: Context, scope: str, name: str, expires_in_s: float | None = None) -> dict:
    """A new admin token of `scope`, ending `expires_in_s` from now (None: never): the token is in this answer only."""
    if scope not in SCOPES:
        raise Invalid("invalid_value", f"scope is one of {', '.join(SCOPES)}")
    name = name.strip()
    if not name or len(name) > 200:
        raise Invalid("invalid_value", "a token's name is 1 to 200 characters")
    if expires_in_s is not None:
        expires_in_s = _lifetime(expires_in_s, "a token's lifetime", MIN_LIFETIME_S, MAX_LIFETIME_S)
    token = secrets.token_urlsafe(32)
    digest = token_hash(token)
    created = ctx.clock()
    expires = None if expires_in_s is None else created + expires_in_s
    actor = audit.current()

    def write(db) -> None:
        db.execute("INSERT INTO admin_tokens (token_hash, created_at, scope, name, expires_at) VALUES (?, ?, ?, ?, ?)",
                   (digest, created, scope, name, expires))
        audit.write(ctx, db, actor, "token.create", digest[:12],
                    detail={"scope": scope, "name": name, "expires_at": expires})
    ctx.storage.submit(write)
    return {"token": token, "id": digest[:12], "scope": scope, "name": name, "created_at": created,
            "expires_at": expires}


def rotate_token(ctx: Context, token_id: str, grace_s: float = 3600, expires_in_s: float | None = None) -> dict:
    """A new token of the same scope and name as `token_id` (shown once), which itself ends `grace_s` from now
    (or sooner, if it was to). The new one lives `expires_in_s`, or as long as the old one was made to, or for ever."""
    _check_token_id(token_id)
    grace_s = _lifetime(grace_s, "the grace", 0, MAX_GRACE_S)
    if expires_in_s is not None:
        expires_in_s = _lifetime(expires_in_s, "a token's lifetime", MIN_LIFETIME_S, MAX_LIFETIME_S)
    token = secrets.token_urlsafe(32)
    digest = token_hash(token)
    actor = audit.current()

    def write(db) -> dict:
        ctx.storage.hold(db, "admin-tokens")
        old_digest, scope, name, created, expires = _one_token(db, token_id, "token_hash, scope, name, created_at, "
                                                                             "expires_at")
        now = ctx.clock()
        old_ends = now + grace_s if expires is None else min(expires, now + grace_s)
        lifetime = expires_in_s if expires_in_s is not None else (
            None if expires is None else min(max(expires - created, MIN_LIFETIME_S), MAX_LIFETIME_S))
        new_expires = None if lifetime is None else now + lifetime
        db.execute("UPDATE admin_tokens SET expires_at = ? WHERE token_hash = ?", (old_ends, old_digest))
        db.execute("INSERT INTO admin_tokens (token_hash, created_at, scope, name, expires_at) VALUES (?, ?, ?, ?, ?)",
                   (digest, now, scope, name, new_expires))
        audit.write(ctx, db, actor, "token.rotate", token_id,
                    detail={"scope": scope, "name": name, "new_id": digest[:12], "old_expires_at": old_ends,
                            "expires_at": new_expires})
        return {"token": token, "id": digest[:12], "scope": scope, "name": name, "created_at": now,
                "expires_at": new_expires, "replaces": {"id": token_id, "expires_at": old_ends}}
    return ctx.storage.submit(write)


def _one_token(db, token_id: str, columns: str) -> tuple:
    rows = db.execute(f"SELECT {columns} FROM admin_tokens WHERE substr(token_hash, 1, 12) = ?",
                      (token_id,)).fetchall()
    if not rows:
        raise NotFound("not_found", f"no admin token {token_id}")
    if len(rows) > 1:
        raise Invalid("invalid_value", f"{token_id} names more than one token")
    return tuple(rows[0])


def list_tokens(ctx: Context) -> list[dict]:
    """Every admin token by its id (the hash's first 12 hex digits), name, scope, age and end; never the token."""
    now = ctx.clock()
    rows = ctx.storage.read().execute("SELECT token_hash, name, scope, created_at, expires_at FROM admin_tokens "
                                      "ORDER BY created_at, token_hash").fetchall()
    return [{"id": digest[:12], "name": name, "scope": scope, "created_at": created, "expires_at": expires,
             "expired": expires is not None and expires <= now}
            for digest, name, scope, created, expires in rows]


def revoke_token(ctx: Context, token_id: str) -> dict:
    """Withdraw the token whose id is `token_id`; the last unexpired token of scope 'all' stays (the operator's)."""
    _check_token_id(token_id)
    actor = audit.current()

    def write(db):
        ctx.storage.hold(db, "admin-tokens")  # two revokes at once must not both count the other 'all' as left
        digest, scope = _one_token(db, token_id, "token_hash, scope")
        others = db.execute("SELECT count(*) FROM admin_tokens WHERE scope = 'all' AND token_hash != ? "
                            "AND (expires_at IS NULL OR expires_at > ?)", (digest, ctx.clock())).fetchone()[0]
        if scope == "all" and others == 0:
            raise Invalid("invalid_value", "the last unexpired token of scope all cannot be revoked")
        db.execute("DELETE FROM admin_tokens WHERE token_hash = ?", (digest,))
        audit.write(ctx, db, actor, "token.revoke", token_id, detail={"scope": scope})
        return {"id": token_id, "scope": scope, "revoked": True}
    return ctx.storage.submit(write)


def require_device(ctx: Context, token: str | None, touch: bool = True) -> dict:
    """The till of a device token: 401 `unauthorized` unknown, `device_revoked` withdrawn, `device_rolled`
    replaced (devices.py); its row cached a second at most, so every process sees a revocation within one.
    `touch`: write when it was last seen, at most once a minute (a sync writes that in its own write)."""
    if not token:
        raise Unauthorized("unauthorized", "a device token is required")
    digest = token_hash(token)
    device = ctx.devices.get(digest)
    if device is None:
        row = ctx.one(
            "SELECT d.id, d.retailer_id, d.store_id, d.name, s.timezone, d.revoked_at, d.rolled_at, d.last_seen_at "
            "FROM devices d JOIN stores s ON s.id = d.store_id WHERE d.token_hash = ?", (digest,)
        )
        if row is None:
            raise Unauthorized("unauthorized", "the device token is not valid")
        device = dict(zip(("id", "retailer_id", "store_id", "name", "timezone", "revoked_at", "rolled_at",
                           "last_seen_at"), row))
        ctx.devices.put(digest, device)
    devices.refuse_withdrawn(device["revoked_at"], device["rolled_at"])
    if touch:
        devices.seen(ctx, device)  # written once the call answers without an error, if due
    return device
