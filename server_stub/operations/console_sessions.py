"""The web console's sessions, kept in the database, and its forms' one-time tokens.

In the database, not a worker's memory, so every worker (and every host over
PostgreSQL) knows a session, a sign-out ends it everywhere, and a restart
keeps people signed in. The cookie holds a random id; only its hash is
stored, so a copy of the database (a backup) signs nobody in. Who the
session is for is checked again on every request (console/auth.py): an admin
token rotated away or a staff member disabled ends it at once.

A session ends when idle too long or past its absolute lifetime, whichever
comes first. Its last use is written at most once a minute, so reading pages
costs no write on most requests.

Forms: each page's form carries `nonce.mac`, the mac an HMAC of the nonce under
the session's own key; a POST is taken once per nonce (`use_form`): a replay,
another session's token or a double click is refused before anything is done.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from ..errors import Invalid
from . import audit
from .context import Context

KINDS = ("operator", "staff", "shop")
IDLE_S = {"operator": 30 * 60, "staff": 30 * 60, "shop": 4 * 3600}  # a shop's cashier works a shift
ABSOLUTE_S = {"operator": 12 * 3600, "staff": 12 * 3600, "shop": 14 * 3600}
TOUCH_EVERY_S = 60.0
FORM_NONCE_BYTES = 16
MAX_SESSIONS_PER_PRINCIPAL = 20  # older ones end: a script signing in in a loop fills no table


@dataclass(frozen=True)
class Session:
    id_hash: str
    kind: str
    token_hash: str | None  # the operator's admin token (its hash)
    staff_id: str | None  # a staff member (kind staff), or the cashier at a web till (kind shop)
    device_id: str | None  # the web till (kind shop)
    language: str
    form_key: str
    created_at: float
    seen_at: float
    expires_at: float


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8", "surrogatepass")).hexdigest()


def create(ctx: Context, kind: str, language: str, *, token_hash: str | None = None, staff_id: str | None = None,
           device_id: str | None = None, retailer_id: str | None = None) -> str:
    """A new session, its sign-in audited; returns the id for the cookie (never stored)."""
    if kind not in KINDS:
        raise ValueError(kind)
    session_id = secrets.token_urlsafe(32)
    digest = _hash(session_id)
    now = ctx.clock()
    expires = now + ABSOLUTE_S[kind]
    form_key = secrets.token_hex(32)
    actor = audit.current()

    def write(db) -> None:
        # Expired sessions (and their forms) go on every sign-in: the table holds live ones only.
        db.execute("DELETE FROM console_form_uses WHERE session_hash IN "
                   "(SELECT id_hash FROM console_sessions WHERE expires_at <= ? OR seen_at <= ?)",
                   (now, now - max(IDLE_S.values())))
        db.execute("DELETE FROM console_sessions WHERE expires_at <= ? OR seen_at <= ?",
                   (now, now - max(IDLE_S.values())))
        db.execute("INSERT INTO console_sessions (id_hash, kind, token_hash, staff_id, device_id, language, "
                   "form_key, created_at, seen_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   (digest, kind, token_hash, staff_id, device_id, language, form_key, now, now, expires))
        old = db.execute(
            "SELECT id_hash FROM console_sessions WHERE kind = ? AND coalesce(token_hash, '') = ? "
            "AND coalesce(staff_id, '') = ? AND coalesce(device_id, '') = ? ORDER BY created_at DESC, id_hash",
            (kind, token_hash or "", staff_id or "", device_id or "")).fetchall()[MAX_SESSIONS_PER_PRINCIPAL:]
        for (stale,) in old:
            db.execute("DELETE FROM console_form_uses WHERE session_hash = ?", (stale,))
            db.execute("DELETE FROM console_sessions WHERE id_hash = ?", (stale,))
        audit.write(ctx, db, actor, "console.sign_in", staff_id or device_id or (token_hash or "")[:12],
                    retailer_id=retailer_id, detail={"kind": kind})
    ctx.storage.submit(write)
    return session_id


def load(ctx: Context, session_id: str | None) -> Session | None:
    """The live session of this cookie, or None (unknown, idle too long, past its lifetime)."""
    if not session_id or len(session_id) > 128:
        return None
    row = ctx.one("SELECT id_hash, kind, token_hash, staff_id, device_id, language, form_key, created_at, seen_at, "
                  "expires_at FROM console_sessions WHERE id_hash = ?", (_hash(session_id),))
    if row is None:
        return None
    session = Session(*row)
    now = ctx.clock()
    if now >= session.expires_at or now - session.seen_at >= IDLE_S.get(session.kind, 0):
        end(ctx, session)
        return None
    if now - session.seen_at >= TOUCH_EVERY_S:
        ctx.storage.submit(lambda db: db.execute("UPDATE console_sessions SET seen_at = ? WHERE id_hash = ?",
                                                 (now, session.id_hash)))
    return session


def set_language(ctx: Context, session: Session, language: str) -> None:
    ctx.storage.submit(lambda db: db.execute("UPDATE console_sessions SET language = ? WHERE id_hash = ?",
                                             (language, session.id_hash)))


def end(ctx: Context, session: Session, *, signed_out_by: str | None = None,
        retailer_id: str | None = None) -> None:
    """The session and its forms' record gone, in every worker at once; `signed_out_by` (the person's id):
    they signed out, which is audited (an expiry is not)."""
    actor = audit.current()

    def write(db) -> None:
        db.execute("DELETE FROM console_form_uses WHERE session_hash = ?", (session.id_hash,))
        db.execute("DELETE FROM console_sessions WHERE id_hash = ?", (session.id_hash,))
        if signed_out_by is not None:
            audit.write(ctx, db, actor, "console.sign_out", signed_out_by, retailer_id=retailer_id,
                        detail={"kind": session.kind})
    ctx.storage.submit(write)


def end_all_for_staff(ctx: Context, staff_id: str) -> None:
    """Every session of a staff member (disabled, PIN changed): used by the checks that find them out."""
    def write(db) -> None:
        db.execute("DELETE FROM console_form_uses WHERE session_hash IN "
                   "(SELECT id_hash FROM console_sessions WHERE staff_id = ?)", (staff_id,))
        db.execute("DELETE FROM console_sessions WHERE staff_id = ?", (staff_id,))
    ctx.storage.submit(write)


def form_token(session: Session) -> str:
    """A fresh token for one form of this session's pages."""
    nonce = secrets.token_hex(FORM_NONCE_BYTES)
    return f"{nonce}.{_mac(session.form_key, nonce)}"


def _mac(key: str, nonce: str) -> str:
    return hmac.new(bytes.fromhex(key), nonce.encode(), hashlib.sha256).hexdigest()[:32]


def use_form(ctx: Context, session: Session, token: object) -> None:
    """Take a form's token once: 400 csrf_missing, csrf_invalid (not this session's), csrf_replayed (used)."""
    if not isinstance(token, str) or not token:
        raise Invalid("csrf_missing", "the form's security token is missing: open the page again")
    nonce, _, mac = token.partition(".")
    if (len(nonce) != 2 * FORM_NONCE_BYTES or not all(c in "0123456789abcdef" for c in nonce)
            or not hmac.compare_digest(mac, _mac(session.form_key, nonce))):
        raise Invalid("csrf_invalid", "the form's security token is not valid for this session: open the page again")
    now = ctx.clock()

    def write(db) -> bool:
        taken = db.execute("SELECT 1 FROM console_form_uses WHERE session_hash = ? AND nonce = ?",
                           (session.id_hash, nonce)).fetchone()
        if taken:
            return False
        db.execute("INSERT INTO console_form_uses (session_hash, nonce, at) VALUES (?, ?, ?)",
                   (session.id_hash, nonce, now))
        return True
    if not ctx.storage.submit(lambda db: (ctx.storage.hold(db, f"form:{session.id_hash}:{nonce}"), write(db))[1]):
        raise Invalid("csrf_replayed", "this form was already sent: nothing was changed again")
