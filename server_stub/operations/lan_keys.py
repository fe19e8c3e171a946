"""A store's LAN keys and its roster of tills: what the store's tills authenticate each other with on the
shop's LAN while the backend cannot be reached (docs/sync.md).

Each store has one active key (32 random bytes, base64; kid `lan_<hex>`),
made the first time one of its tills asks. A rotation retires it: a retired
key still verifies for GRACE_S (tills that have not fetched the catalog since
go on being heard) and then is dropped; at most MAX_LAN_KEYS are handed out
at once, so rotations in a hurry drop the oldest retired ones early. Revoking
a till rotates its store's key: the stolen till keeps only keys that expire.

The roster: the store's tills (kind 'till', not revoked) whose log key the
backend holds, each with that public key, which signs what the till says to
its peers. The catalog and the enrollment answer carry both as `lan` to that
store's tills only; a web till gets none. Whatever changes them writes the
store-scoped feed event `lan`, so the store's tills fetch the catalog at once.

The secrets are the store's: never in a log line, an audit record or any
answer but its own tills' catalog and enrollment.
"""

from __future__ import annotations

import base64
import logging
import secrets

from pos_app.core import lan_roster

from ..errors import NotFound
from . import audit
from .common import add_event, insert
from .context import Context

log = logging.getLogger(__name__)

GRACE_S = 14 * 86400  # a retired key still verifies this long
MAX_LAN_KEYS = lan_roster.MAX_LAN_KEYS
MAX_PEERS = lan_roster.MAX_PEERS
KID_PREFIX = "lan_"


def hold_name(store_id: str) -> str:
    """The name a write that reads and changes a store's LAN keys holds (operations/holds.py)."""
    return f"lan-keys:{store_id}"


def _active(db, store_id: str) -> str | None:
    row = db.execute("SELECT kid FROM store_lan_keys WHERE store_id = ? AND retired_at IS NULL "
                     "ORDER BY created_at DESC, kid LIMIT 1", (store_id,)).fetchone()
    return None if row is None else row[0]


def _new_key(db, store_id: str, now: float) -> str:
    kid = KID_PREFIX + secrets.token_hex(8)
    insert(db, "store_lan_keys", {"kid": kid, "store_id": store_id,
                                  "secret": base64.b64encode(secrets.token_bytes(lan_roster.SECRET_BYTES)).decode(),
                                  "created_at": now})
    return kid


def ensure_key(ctx: Context, store_id: str) -> None:
    """The store has an active key: made now if it has none (a read first, so only its first ask writes).
    Two processes asking at once make one: the write holds the store's name and looks again."""
    if _active(ctx.storage.read(), store_id) is not None:
        return

    def write(db):
        ctx.storage.hold(db, hold_name(store_id))
        if _active(db, store_id) is None:
            _new_key(db, store_id, ctx.clock())
    ctx.storage.submit(write)


def lan_changed(ctx: Context, db, store_id: str, *, origin: str | None = None) -> None:
    """Inside a write that changed the store's LAN keys or roster (a rotation, a till enrolled, revoked, its
    log key registered): the store-scoped feed event `lan`, so its tills fetch the catalog now. `origin`: a
    till that already has the change (its own answer said it) and needs no event."""
    row = db.execute("SELECT retailer_id FROM stores WHERE id = ?", (store_id,)).fetchone()
    if row is None:
        return  # no such store, so no till to tell
    add_event(ctx, db, row[0], "lan", {"store_id": store_id}, origin=origin, store_id=store_id)


def rotate_in(ctx: Context, db, store_id: str, now: float) -> dict:
    """Inside a write that holds `hold_name(store_id)`: a new active key; the active one retired (valid
    GRACE_S more); expired ones and those beyond MAX_LAN_KEYS dropped; the `lan` event written.
    What changed, by kid (no secret): {"store_id", "kid", "retired", "expires_at"}."""
    retired = [kid for (kid,) in db.execute(
        "SELECT kid FROM store_lan_keys WHERE store_id = ? AND retired_at IS NULL ORDER BY kid", (store_id,))]
    db.execute("UPDATE store_lan_keys SET retired_at = ?, expires_at = ? WHERE store_id = ? AND retired_at IS NULL",
               (now, now + GRACE_S, store_id))
    kid = _new_key(db, store_id, now)
    _prune(db, store_id, now)
    lan_changed(ctx, db, store_id)
    return {"store_id": store_id, "kid": kid, "retired": retired, "expires_at": now + GRACE_S if retired else None}


def _prune(db, store_id: str, now: float) -> None:
    """Retired keys past their expiry, and the oldest beyond what a catalog carries, gone."""
    db.execute("DELETE FROM store_lan_keys WHERE store_id = ? AND retired_at IS NOT NULL AND expires_at <= ?",
               (store_id, now))
    kept = [kid for (kid,) in db.execute(
        "SELECT kid FROM store_lan_keys WHERE store_id = ? AND retired_at IS NOT NULL "
        "ORDER BY retired_at DESC, created_at DESC, kid", (store_id,))]
    for kid in kept[MAX_LAN_KEYS - 1:]:
        db.execute("DELETE FROM store_lan_keys WHERE kid = ?", (kid,))


def rotate(ctx: Context, store_id: str) -> dict:
    """`lan-key rotate --store`: the store's new key, audited (kids only)."""
    actor = audit.current()
    now = ctx.clock()

    def write(db):
        ctx.storage.hold(db, hold_name(store_id))
        row = db.execute("SELECT retailer_id FROM stores WHERE id = ?", (store_id,)).fetchone()
        if row is None:
            raise NotFound("not_found", f"no store {store_id}")
        done = rotate_in(ctx, db, store_id, now)
        audit.write(ctx, db, actor, "lan_key.rotate", store_id, retailer_id=row[0],
                    detail={"kid": done["kid"], "retired": done["retired"]})
        return done
    return ctx.storage.submit(write)


def rotate_all(ctx: Context) -> list[dict]:
    """`lan-key rotate --all`: every store's, one write each."""
    stores = [sid for (sid,) in ctx.storage.read().execute("SELECT id FROM stores ORDER BY id").fetchall()]
    return [rotate(ctx, store_id) for store_id in stores]


def read_lan(db, store_id: str, now: float) -> dict | None:
    """The store's `lan` as its tills get it: the active key first, then the retired ones not yet expired;
    the roster. None if the store has no key yet (`ensure_key` first)."""
    rows = db.execute(
        "SELECT kid, secret, retired_at FROM store_lan_keys WHERE store_id = ? AND (retired_at IS NULL "
        "OR expires_at > ?) ORDER BY created_at DESC, kid", (store_id, now)).fetchall()
    active = next((kid for kid, _secret, retired_at in rows if retired_at is None), None)
    if active is None:
        return None
    keys = [{"kid": kid, "secret": secret, "active": kid == active} for kid, secret, _retired in rows]
    keys.sort(key=lambda key: not key["active"])  # stable: the active one, then newest first
    return {"keys": keys[:MAX_LAN_KEYS], "peers": _roster(db, store_id)}


def _roster(db, store_id: str) -> list[dict]:
    peers = []
    for device_id, name, public_key in db.execute(
            "SELECT id, name, log_key FROM devices WHERE store_id = ? AND kind = 'till' AND revoked_at IS NULL "
            "AND log_key IS NOT NULL ORDER BY enrolled_at, id", (store_id,)):
        peer = {"device_id": device_id, "name": name, "public_key": public_key}
        try:
            lan_roster.parse_peer(peer, "roster")  # one a till would refuse would cost the store its catalog
        except ValueError as exc:
            log.warning("till %s left out of store %s's LAN roster: %s", device_id, store_id, exc)
            continue
        if len(peers) == MAX_PEERS:
            log.warning("store %s has more than %d tills with a log key: the LAN roster lists the first %d",
                        store_id, MAX_PEERS, MAX_PEERS)
            break
        peers.append(peer)
    return peers


def lan_of(ctx: Context, store_id: str) -> dict | None:
    """The store's `lan`, its key made first if it has none."""
    ensure_key(ctx, store_id)
    with ctx.storage.read_snapshot() as db:
        return read_lan(db, store_id, ctx.clock())


def for_device(ctx: Context, device: dict) -> dict | None:
    """The `lan` a device's catalog carries: its store's, for a till; None for a web till (the shop page in a
    browser shares nothing on the LAN, and must not hold the store's secret)."""
    row = ctx.one("SELECT kind FROM devices WHERE id = ?", (device["id"],))
    if row is None or row[0] != "till":
        return None
    return lan_of(ctx, device["store_id"])
