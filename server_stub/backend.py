"""The backend's operations: what each endpoint does, over one database.

Reads use one connection per thread; every write goes through the group-commit
Writer. Decisions on redemptions are the core's (`pos_app.core.verdict`),
reached in the request's thread on a read snapshot; the database's unique
index on accepted token ids settles any race (see `redeem`).
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
import time
import uuid
from typing import Any, Callable

import sqlite_utils

from pos_app.core import codes, pins, tokens, verdict, voids as void_rules
from pos_app.core.domain import LANGUAGES, Method, Reason, VoucherStatus
from pos_app.core.migrate import open_database

from .datadir import DataDir, NotInitialised, token_hash
from .errors import Busy, Conflict, DomainError, Forbidden, Invalid, NotFound, Unauthorized, Unprocessable
from .storage.state import VOUCHER_COLUMNS, BackendState, VoucherCache, voucher_from_row
from .storage.writer import Writer

ROLES = ("cashier", "manager", "admin")
VALID_METHODS = Method.ALL
SYNC_BATCH_MAX = 500
FEED_LIMIT_MAX = 1000
_TRANSITIONS = {
    "publish": ({VoucherStatus.NEW, VoucherStatus.UNPUBLISHED, VoucherStatus.PUBLISHED}, VoucherStatus.PUBLISHED),
    "unpublish": ({VoucherStatus.PUBLISHED, VoucherStatus.UNPUBLISHED}, VoucherStatus.UNPUBLISHED),
    "revoke": (set(VoucherStatus.ALL), VoucherStatus.REVOKED),
}


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def _status_for(v: verdict.Verdict) -> int:
    if v.accepted:
        return 201
    return 409 if v.reason == Reason.ALREADY_REDEEMED else 422


ATTEMPT_COLUMNS = ("key", "retailer_id", "store_id", "device_id", "at", "received_at", "method", "staff_id",
                   "decided", "status", "reason", "kind", "voucher_id", "jti", "code", "answer")


def _attempt_row(base: tuple, v: verdict.Verdict) -> tuple[int, dict, tuple]:
    """The answer to an online redemption and the attempts row that keeps it."""
    status = _status_for(v)
    answer = _answer(v, base[5])
    row = (*base, "accepted" if v.accepted else "refused", v.reason, v.kind,
           v.voucher.id if v.voucher else None, v.jti, v.code,
           json.dumps([status, answer], separators=(",", ":")))
    return status, answer, row


def _with_id(status: int, answer: dict, rowid: int) -> tuple[int, dict]:
    if answer.get("accepted"):  # the feed event came with the insert (schema trigger)
        answer["redemption_id"] = rowid
    return status, answer


def _answer(v: verdict.Verdict, now: float) -> dict:
    """The body of an online redemption's answer (an accepted one gains its redemption_id)."""
    if v.accepted:
        return {"accepted": True, "verdict": v.to_json(), "server_time": now}
    return {"error": {"code": v.reason, "message": v.message}, "verdict": v.to_json(), "server_time": now}


_VOID_ERROR = {"not_found": NotFound, "not_accepted": Unprocessable, "already_voided": Conflict,
               "invalid_value": Invalid, "forbidden": Forbidden}


def _void_error(exc: void_rules.VoidError) -> DomainError:
    return _VOID_ERROR[exc.code](exc.code, exc.message)


class Backend:
    def __init__(self, data_dir, *, clock: Callable[[], float] = time.time):
        self.data = DataDir(data_dir)
        if not self.data.initialised:
            raise NotInitialised(f"{self.data.path} holds no backend: run `python -m server_stub init` first")
        self.data.migrate()
        self.config = self.data.config()
        self.clock = clock
        self._local = threading.local()
        self.writer = Writer(str(self.data.db_path))
        keys = self.read().execute("SELECT kid, public_pem, active FROM signing_keys").fetchall()
        self.public_keys = [{"kid": kid, "pem": pem} for kid, pem, _ in keys]
        self.trust = tokens.TrustSet.from_pems(pem for _, pem, _ in keys)
        self.kid = next(kid for kid, _, active in keys if active)
        self._signing_key = self.data.signing_key(self.kid)
        self._vouchers = VoucherCache()
        self._devices: dict[str, dict] = {}  # token hash → device, a cache: auth runs on every call

    def close(self) -> None:
        self.writer.close()

    # --- connections ---------------------------------------------------------

    def read(self) -> sqlite_utils.Database:
        """This thread's read connection (one owner per connection)."""
        db = getattr(self._local, "db", None)
        if db is None:
            db = open_database(str(self.data.db_path), synchronous="NORMAL")
            db.conn.execute("PRAGMA query_only=ON")
            self._local.db = db
        return db

    def _one(self, sql: str, params=()) -> Any:
        return self.read().execute(sql, params).fetchone()

    # --- credentials -----------------------------------------------------------

    def require_admin(self, token: str | None) -> None:
        if not token:
            raise Unauthorized("unauthorized", "an admin token is required")
        if self._one("SELECT 1 FROM admin_tokens WHERE token_hash = ?", (token_hash(token),)) is None:
            raise Unauthorized("unauthorized", "the admin token is not valid")

    def require_device(self, token: str | None) -> dict:
        if not token:
            raise Unauthorized("unauthorized", "a device token is required")
        digest = token_hash(token)
        device = self._devices.get(digest)
        if device is None:
            row = self._one(
                "SELECT d.id, d.retailer_id, d.store_id, d.name, s.timezone FROM devices d "
                "JOIN stores s ON s.id = d.store_id WHERE d.token_hash = ?", (digest,)
            )
            if row is None:
                raise Unauthorized("unauthorized", "the device token is not valid")
            device = dict(zip(("id", "retailer_id", "store_id", "name", "timezone"), row))
            self._devices[digest] = device
        return device

    # --- admin: retailers, stores, staff ---------------------------------------

    def create_retailer(self, name: str) -> dict:
        row = {"id": new_id("ret"), "name": name, "created_at": self.clock()}
        self.writer.submit(lambda db: db["retailers"].insert(row))
        return {"id": row["id"], "name": name}

    def list_retailers(self) -> list[dict]:
        return [{"id": i, "name": n} for i, n in self.read().execute("SELECT id, name FROM retailers ORDER BY created_at")]

    def _retailer(self, retailer_id: str) -> None:
        if self._one("SELECT 1 FROM retailers WHERE id = ?", (retailer_id,)) is None:
            raise NotFound("not_found", "no such retailer")

    def _store(self, store_id: str) -> dict:
        row = self._one("SELECT id, retailer_id, name, timezone FROM stores WHERE id = ?", (store_id,))
        if row is None:
            raise NotFound("not_found", "no such store")
        return dict(zip(("id", "retailer_id", "name", "timezone"), row))

    def create_store(self, retailer_id: str, name: str, timezone: str = "America/Asuncion") -> dict:
        self._retailer(retailer_id)
        if not verdict.is_timezone(timezone):
            raise Invalid("invalid_value", "timezone is not a known IANA time zone")
        row = {"id": new_id("sto"), "retailer_id": retailer_id, "name": name, "timezone": timezone,
               "created_at": self.clock()}
        self.writer.submit(lambda db: db["stores"].insert(row))
        return {k: row[k] for k in ("id", "retailer_id", "name", "timezone")}

    def list_stores(self, retailer_id: str | None) -> list[dict]:
        sql, params = "SELECT id, retailer_id, name, timezone FROM stores", ()
        if retailer_id:
            sql, params = sql + " WHERE retailer_id = ?", (retailer_id,)
        return [dict(zip(("id", "retailer_id", "name", "timezone"), r)) for r in self.read().execute(sql, params)]

    def create_staff(self, retailer_id: str, name: str, role: str, pin: str, store_id: str | None = None) -> dict:
        self._retailer(retailer_id)
        if store_id is not None and self._store(store_id)["retailer_id"] != retailer_id:
            raise Invalid("invalid_value", "the store belongs to another retailer")
        if role not in ROLES:
            raise Invalid("invalid_value", f"role must be one of {', '.join(ROLES)}")
        if not pins.valid_pin(pin):
            raise Invalid("invalid_value", "a PIN is 4 to 12 digits")
        row = {"id": new_id("stf"), "retailer_id": retailer_id, "store_id": store_id, "name": name,
               "role": role, "pin_hash": pins.hash_pin(pin), "created_at": self.clock()}

        def write(db):
            db["staff"].insert(row)
            self._event(db, retailer_id, "staff", self._staff_json(row))
        self.writer.submit(write)
        return {"id": row["id"], "retailer_id": retailer_id, "store_id": store_id, "name": name, "role": role}

    @staticmethod
    def _staff_json(row: dict) -> dict:
        return {k: row[k] for k in ("id", "name", "role", "pin_hash", "store_id")}

    def create_enrollment_code(self, store_id: str, ttl_s: int = 7 * 24 * 3600) -> dict:
        store = self._store(store_id)
        code = codes.new_short_code()
        now = self.clock()
        row = {"code_hash": token_hash(code), "retailer_id": store["retailer_id"], "store_id": store_id,
               "created_at": now, "expires_at": now + ttl_s, "used_at": None, "device_id": None}
        self.writer.submit(lambda db: db["enrollment_codes"].insert(row))
        return {"code": codes.format_short_code(code), "store_id": store_id,
                "retailer_id": store["retailer_id"], "expires_at": row["expires_at"]}

    # --- admin: vouchers and printed codes -------------------------------------

    def create_voucher(self, body: dict) -> dict:
        self._retailer(body["retailer_id"])
        if body["kind"] not in ("personal", "printed"):
            raise Invalid("invalid_value", "kind is personal or printed")
        discount = body["discount"]
        if discount.get("kind") not in ("percent", "amount") or not isinstance(discount.get("value"), int) \
                or isinstance(discount.get("value"), bool) or discount["value"] <= 0 \
                or (discount["kind"] == "percent" and discount["value"] > 100):
            raise Invalid("invalid_value", "discount is {kind: percent|amount, value: positive whole number}")
        currency = discount.get("currency", "PYG")
        if not isinstance(currency, str) or len(currency) != 3 or not currency.isalpha():
            raise Invalid("invalid_value", "currency is an ISO 4217 code")
        texts = body["texts"]
        for lang, entry in texts.items():
            if lang not in LANGUAGES or not isinstance(entry, dict) or not set(entry) <= {"title", "terms"} \
                    or not all(isinstance(v, str) and len(v) <= 500 for v in entry.values()):
                raise Invalid("invalid_value", f"texts are {{{'|'.join(LANGUAGES)}: {{title, terms}}}}")
        if not any(entry.get("title") for entry in texts.values()):
            raise Invalid("invalid_value", "a voucher needs a title in at least one language")
        for name in ("total_limit", "store_day_limit", "claim_ttl_s"):
            if body.get(name) is not None and body[name] <= 0:
                raise Invalid("invalid_value", f"{name} must be positive")
        if body.get("valid_from") is not None and body.get("valid_until") is not None \
                and body["valid_from"] >= body["valid_until"]:
            raise Invalid("invalid_value", "valid_from must come before valid_until")
        now = self.clock()
        row = {
            "id": new_id("vch"), "retailer_id": body["retailer_id"], "kind": body["kind"],
            "status": VoucherStatus.NEW, "discount_kind": discount["kind"], "discount_value": discount["value"],
            "currency": currency.upper(), "texts": json.dumps(texts, ensure_ascii=False),
            "valid_from": body.get("valid_from"), "valid_until": body.get("valid_until"),
            "total_limit": body.get("total_limit"), "store_day_limit": body.get("store_day_limit"),
            "claim_ttl_s": body.get("claim_ttl_s"), "created_at": now, "updated_at": now,
        }

        def write(db):
            db["vouchers"].insert(row)
            return self._voucher_event(db, row["id"])
        return self._changed_voucher(self.writer.submit(write))

    def _voucher_json(self, conn, voucher_id: str) -> dict | None:
        row = conn.execute(
            f"SELECT {VOUCHER_COLUMNS} FROM vouchers v JOIN retailers r ON r.id = v.retailer_id WHERE v.id = ?",
            (voucher_id,),
        ).fetchone()
        return voucher_from_row(row).to_json() if row else None

    def _changed_voucher(self, data: dict) -> dict:
        self._vouchers.clear()  # after the commit, so no reader caches the old voucher again
        return data

    def _voucher_event(self, db, voucher_id: str) -> dict:
        data = self._voucher_json(db.conn, voucher_id)
        self._event(db, data["retailer_id"], "voucher", data)
        return data

    def get_voucher(self, voucher_id: str) -> dict:
        data = self._voucher_json(self.read().conn, voucher_id)
        if data is None:
            raise NotFound("not_found", "no such voucher")
        return data

    def list_vouchers(self, retailer_id: str | None) -> list[dict]:
        sql, params = f"SELECT {VOUCHER_COLUMNS} FROM vouchers v JOIN retailers r ON r.id = v.retailer_id", ()
        if retailer_id:
            sql, params = sql + " WHERE v.retailer_id = ?", (retailer_id,)
        return [voucher_from_row(r).to_json() for r in self.read().execute(sql + " ORDER BY v.created_at", params)]

    def change_voucher(self, voucher_id: str, action: str) -> dict:
        allowed, target = _TRANSITIONS[action]

        def write(db):
            row = db.execute("SELECT status FROM vouchers WHERE id = ?", (voucher_id,)).fetchone()
            if row is None:
                raise NotFound("not_found", "no such voucher")
            if row[0] not in allowed:
                raise Conflict("conflict", f"a {row[0]} voucher cannot be {target}")
            db.execute("UPDATE vouchers SET status = ?, updated_at = ? WHERE id = ?", (target, self.clock(), voucher_id))
            return self._voucher_event(db, voucher_id)
        return self._changed_voucher(self.writer.submit(write))

    def create_printed_code(self, voucher_id: str, code_text: str) -> dict:
        voucher = self.get_voucher(voucher_id)
        if voucher["kind"] != "printed":
            raise Invalid("invalid_value", "printed codes belong to printed vouchers")
        code = verdict.printed_form(code_text)
        if code is None:
            raise Invalid("invalid_value", "a printed code is 3 to 24 letters and digits")
        if codes.looks_like_short_code(code):
            try:
                codes.parse_short_code(code)
            except codes.ShortCodeError:
                pass
            else:
                raise Invalid("invalid_value", "this code reads as a customer's short code; pick another")
        row = {"code": code, "retailer_id": voucher["retailer_id"], "voucher_id": voucher_id, "created_at": self.clock()}

        def write(db):
            if db.execute("SELECT 1 FROM printed_codes WHERE code = ?", (code,)).fetchone():
                raise Conflict("conflict", "this printed code exists already")
            db["printed_codes"].insert(row)
            self._event(db, voucher["retailer_id"], "printed_code", {"code": code, "voucher_id": voucher_id})
        self.writer.submit(write)
        return {"code": code, "voucher_id": voucher_id, "token": self.static_token(code)}

    def list_printed_codes(self, voucher_id: str | None) -> list[dict]:
        sql, params = "SELECT code, voucher_id FROM printed_codes", ()
        if voucher_id:
            sql, params = sql + " WHERE voucher_id = ?", (voucher_id,)
        return [{"code": c, "voucher_id": v, "token": self.static_token(c)} for c, v in self.read().execute(sql, params)]

    def static_token(self, code: str) -> str:
        """The signed token a booklet prints as the QR of a printed code."""
        row = self._one(
            "SELECT v.id, v.retailer_id, v.valid_until FROM printed_codes p JOIN vouchers v ON v.id = p.voucher_id "
            "WHERE p.code = ?", (code,))
        if row is None:
            raise NotFound("not_found", "no such printed code")
        now = int(self.clock())
        exp = row[2] if row[2] is not None else now + 366 * 24 * 3600
        return tokens.issue_static(self._signing_key, iss=self.config["issuer"], aud=row[1], vid=row[0],
                                   code=code, iat=now, exp=exp)

    # --- claims (the customer app's side) --------------------------------------

    def create_claim(self, voucher_id: str, customer_id: str) -> dict:
        now = self.clock()
        data = self._voucher_json(self.read().conn, voucher_id)
        if data is None:
            raise NotFound("not_found", "no such voucher")
        refusal = None
        if data["kind"] != "personal":
            refusal = (Reason.UNKNOWN_CODE, "printed vouchers are not claimed")
        elif data["status"] == VoucherStatus.REVOKED:
            refusal = (Reason.REVOKED, "the voucher was withdrawn")
        elif data["status"] != VoucherStatus.PUBLISHED:
            refusal = (Reason.UNPUBLISHED, "the voucher is not published")
        elif data["valid_until"] is not None and now >= data["valid_until"]:
            refusal = (Reason.EXPIRED, "the voucher has ended")
        if refusal:
            raise Unprocessable(*refusal)
        ttl = self._one("SELECT claim_ttl_s FROM vouchers WHERE id = ?", (voucher_id,))[0] or self.config["claim_ttl_s"]
        exp = int(now + ttl)
        if data["valid_until"] is not None:
            exp = min(exp, int(data["valid_until"]))
        jti = uuid.uuid4().hex
        nbf = int(now) if data["valid_from"] is None else max(int(now), int(data["valid_from"]))
        token = tokens.issue_personal(self._signing_key, iss=self.config["issuer"], aud=data["retailer_id"],
                                      sub=customer_id, vid=voucher_id, jti=jti, iat=int(now), nbf=nbf, exp=exp)

        def write(db):
            for _ in range(8):  # 40 random bits: a collision is rare, never fatal
                short = codes.new_short_code()
                if db.execute("SELECT 1 FROM claims WHERE short_code = ?", (short,)).fetchone() is None \
                        and db.execute("SELECT 1 FROM printed_codes WHERE code = ?", (short,)).fetchone() is None:
                    break
            else:
                raise Busy("busy", "could not find a free short code; try again")
            db["claims"].insert({"jti": jti, "retailer_id": data["retailer_id"], "voucher_id": voucher_id,
                                 "customer_id": customer_id, "short_code": short, "issued_at": now,
                                 "expires_at": exp, "revoked_at": None})
            self._event(db, data["retailer_id"], "claim",
                        {"short_code": short, "jti": jti, "voucher_id": voucher_id, "expires_at": exp})
            return short
        short = self.writer.submit(write)
        return {"token": token, "short_code": codes.format_short_code(short), "expires_at": exp, "jti": jti}

    def revoke_claim(self, jti: str) -> dict:
        def write(db):
            row = db.execute("SELECT retailer_id FROM claims WHERE jti = ?", (jti,)).fetchone()
            if row is None:
                raise NotFound("not_found", "no such claim")
            db.execute("UPDATE claims SET revoked_at = ? WHERE jti = ?", (self.clock(), jti))
            self._event(db, row[0], "revocation", {"jti": jti})
        self.writer.submit(write)
        return {"jti": jti, "revoked": True}

    # --- tills -----------------------------------------------------------------

    def enroll(self, code_text: str, name: str) -> dict:
        try:
            code = codes.parse_short_code(code_text)
        except codes.ShortCodeError:
            raise Forbidden("invalid_enrollment_code", "the enrollment code is unknown, used or expired") from None
        device_token = secrets.token_urlsafe(32)
        device_id = new_id("dev")
        now = self.clock()

        def write(db):
            row = db.execute(
                "SELECT retailer_id, store_id, expires_at, used_at FROM enrollment_codes WHERE code_hash = ?",
                (token_hash(code),)).fetchone()
            if row is None or row[3] is not None or row[2] < now:
                raise Forbidden("invalid_enrollment_code", "the enrollment code is unknown, used or expired")
            db.execute("UPDATE enrollment_codes SET used_at = ?, device_id = ? WHERE code_hash = ?",
                       (now, device_id, token_hash(code)))
            db["devices"].insert({"id": device_id, "retailer_id": row[0], "store_id": row[1], "name": name,
                                  "token_hash": token_hash(device_token), "enrolled_at": now})
            return row[0], row[1]
        retailer_id, store_id = self.writer.submit(write)
        return {"device_id": device_id, "name": name, "device_token": device_token, "retailer_id": retailer_id,
                "store_id": store_id, "keys": self.public_keys, "server_time": now}

    def catalog(self, device: dict) -> dict:
        db = self.read()
        retailer_id = device["retailer_id"]
        with db.conn:  # one snapshot for the whole catalog
            retailer = db.execute("SELECT id, name FROM retailers WHERE id = ?", (retailer_id,)).fetchone()
            store = self._store(device["store_id"])
            vouchers = [voucher_from_row(r).to_json() for r in db.execute(
                f"SELECT {VOUCHER_COLUMNS} FROM vouchers v JOIN retailers r ON r.id = v.retailer_id "
                "WHERE v.retailer_id = ?", (retailer_id,))]
            printed = [{"code": c, "voucher_id": v} for c, v in db.execute(
                "SELECT code, voucher_id FROM printed_codes WHERE retailer_id = ?", (retailer_id,))]
            claims = [dict(zip(("short_code", "jti", "voucher_id", "expires_at"), r)) for r in db.execute(
                "SELECT short_code, jti, voucher_id, expires_at FROM claims WHERE retailer_id = ? "
                "AND expires_at > ? AND revoked_at IS NULL", (retailer_id, self.clock() - 3600))]
            staff = [dict(zip(("id", "name", "role", "pin_hash", "store_id"), r)) for r in db.execute(
                "SELECT id, name, role, pin_hash, store_id FROM staff WHERE retailer_id = ? "
                "AND (store_id IS NULL OR store_id = ?)", (retailer_id, device["store_id"]))]
            revoked = [r[0] for r in db.execute(
                "SELECT jti FROM claims WHERE retailer_id = ? AND revoked_at IS NOT NULL", (retailer_id,))]
        return {
            "retailer": {"id": retailer[0], "name": retailer[1]},
            "store": {k: store[k] for k in ("id", "name", "timezone")},
            "keys": self.public_keys, "vouchers": vouchers, "printed_codes": printed,
            "claims": claims, "staff": staff, "revoked": revoked, "server_time": self.clock(),
        }

    def _context(self, device: dict, now: float) -> verdict.Context:
        return verdict.Context(
            trust=self.trust, retailer_id=device["retailer_id"], store_id=device["store_id"], now=now,
            day=verdict.local_day(now, device["timezone"]), leeway=self.config["leeway_s"],
            velocity_limit=self.config["velocity_limit"],
        )

    def _state(self, db, device: dict, ctx: verdict.Context) -> BackendState:
        return BackendState(db, retailer_id=device["retailer_id"], store_id=device["store_id"],
                            device_id=device["id"], store_timezone=device["timezone"],
                            velocity_cap=ctx.velocity_limit, vouchers=self._vouchers)

    def redeem(self, device: dict, key: str, body: dict) -> tuple[int, dict]:
        """Online redemption: decide now, record, answer; a replayed key gets the first answer.

        The verdict is reached in the request's thread on a read snapshot
        (verification and lookups run in parallel, in several processes), so
        the writer only inserts the row. The database keeps one accepted
        attempt per `jti` (a unique index): if a till raced us to the same
        code, or the same key came twice, the insert fails and the writer
        judges again on its own, current view. Printed codes count their
        limits in the writer.
        """
        # A replayed key is not looked up first: it is rare, and its insert
        # fails on the key's unique index, so the writer returns the first answer.
        now = self.clock()
        ctx = self._context(device, now)
        method = body["method"]
        printed_only = method == Method.PRINTED
        reading = verdict.read(body["input"], ctx)
        first = verdict.judge(reading, self._state(self.read(), device, ctx), ctx, printed_only=printed_only)
        base = (key, device["retailer_id"], device["store_id"], device["id"], float(body.get("at") or now), now,
                method, body.get("staff_id"), "online")

        def judged_in_writer(db):
            again = self._stored_answer(db.conn, device, key)
            if again is not None:  # the same key raced in twice: the first answer stands
                return again
            v = verdict.judge(reading, self._state(db, device, ctx), ctx, printed_only=printed_only)
            status, answer, row = _attempt_row(base, v)
            rowid = db.execute(f"INSERT INTO attempts ({', '.join(ATTEMPT_COLUMNS)}) VALUES "
                               f"({', '.join('?' * len(ATTEMPT_COLUMNS))})", row).lastrowid
            return _with_id(status, answer, rowid)

        if first.accepted and first.kind == "printed":
            return self.writer.submit(judged_in_writer)
        status, answer, row = _attempt_row(base, first)
        try:
            rowid = self.writer.insert_row("attempts", ATTEMPT_COLUMNS, row)
        except sqlite3.IntegrityError:  # a race on this jti or key: the writer decides
            return self.writer.submit(judged_in_writer)
        return _with_id(status, answer, rowid)

    def lookup_redemption(self, device: dict, key: str) -> tuple[int, dict]:
        """The answer once given for a key, so a till that crashed mid-call learns it."""
        stored = self._stored_answer(self.read().conn, device, key)
        if stored is None:
            raise NotFound("not_found", "no redemption was made with this key")
        return 200, {"status": stored[0], "answer": stored[1]}

    @staticmethod
    def _stored_answer(conn, device: dict, key: str) -> tuple[int, dict] | None:
        row = conn.execute("SELECT id, device_id, answer FROM attempts WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        if row[1] != device["id"]:
            raise Conflict("conflict", "this idempotency key belongs to another till")
        if row[2] is None:
            raise Conflict("conflict", "this key was used to sync an offline redemption, not to redeem online")
        status, answer = json.loads(row[2])
        if answer.get("accepted"):
            answer["redemption_id"] = row[0]
        return status, answer

    def _event(self, db, retailer_id: str, type_: str, data: dict, origin: str | None = None) -> None:
        db.execute("INSERT INTO events (retailer_id, type, origin_device, data, at) VALUES (?, ?, ?, ?, ?)",
                   (retailer_id, type_, origin, json.dumps(data, ensure_ascii=False, separators=(",", ":")),
                    self.clock()))

    def sync(self, device: dict, entries: list[dict]) -> dict:
        """Record a batch of a till's outbox; each entry answered on its own."""
        now = self.clock()

        def write(db):
            results = []
            for entry in entries:
                results.append(self._record_entry(db, device, entry, now))
            return results
        return {"results": self.writer.submit(write), "server_time": now}

    def _record_entry(self, db, device: dict, entry: dict, now: float) -> dict:
        if entry.get("type") == "void":
            return self._record_void(db, device, entry, now)
        key = entry["key"]
        row = db.execute("SELECT device_id, status, conflict_with FROM attempts WHERE key = ?", (key,)).fetchone()
        if row is not None:
            if row[0] != device["id"]:
                return {"key": key, "status": "rejected", "reason": "key belongs to another till"}
            if row[1] == "conflict":
                return {"key": key, "status": "conflict", "winner": self._winner(db, row[2])}
            return {"key": key, "status": "duplicate"}
        status = "accepted" if entry["accepted"] else "refused"
        winner_id = None
        if entry["accepted"] and entry.get("jti"):
            winner = db.execute(
                "SELECT id FROM attempts WHERE retailer_id = ? AND jti = ? AND status = 'accepted'",
                (device["retailer_id"], entry["jti"])).fetchone()
            if winner is not None:
                status, winner_id = "conflict", winner[0]
        db.execute(
            "INSERT INTO attempts (key, retailer_id, store_id, device_id, at, received_at, status, reason, kind, "
            "voucher_id, jti, code, method, staff_id, decided, conflict_with) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (key, device["retailer_id"], device["store_id"], device["id"], entry["at"], now, status,
             entry.get("reason"), entry.get("kind"), entry.get("voucher_id"), entry.get("jti"), entry.get("code"),
             entry["method"], entry.get("staff_id"), entry["decided"], winner_id))
        if status == "conflict":
            return {"key": key, "status": "conflict", "winner": self._winner(db, winner_id)}
        if status == "accepted" and entry.get("kind") == "printed" and entry.get("voucher_id"):
            over = self._printed_overshoot(db, device, entry)
            if over is not None:
                # Tills decided offline and together went past a limit: the
                # redemptions were given and stay recorded; the till is told.
                return {"key": key, "status": "recorded", "over_limit": over}
        return {"key": key, "status": "recorded"}

    # --- voids -------------------------------------------------------------------

    def _record_void(self, db, device: dict, entry: dict, now: float) -> dict:
        """A till's void of one of its own redemptions, from its outbox. A void the rules refuse is
        `rejected` with the rule's code as its reason, so the till parks it; the redemption's own
        entry comes first in the outbox, so a void of an offline redemption finds it recorded."""
        key = entry["key"]
        row = db.execute("SELECT device_id FROM voids WHERE key = ?", (key,)).fetchone()
        if row is not None:
            if row[0] != device["id"]:
                return {"key": key, "status": "rejected", "reason": "key belongs to another till"}
            return {"key": key, "status": "duplicate"}
        staff = db.execute("SELECT role, store_id FROM staff WHERE id = ? AND retailer_id = ?",
                           (entry.get("staff_id"), device["retailer_id"])).fetchone()
        try:
            void_rules.check_staff(staff[0] if staff and staff[1] in (None, device["store_id"]) else None)
            reason = void_rules.check_reason(entry.get("void_reason"))
            target = self._void_target(db, entry["redemption_key"], device_id=device["id"])
        except void_rules.VoidError as exc:
            return {"key": key, "status": "rejected", "reason": exc.code}
        self._insert_void(db, target, key=key, device_id=device["id"], staff_id=entry.get("staff_id"),
                          reason=reason, at=float(entry["at"]), now=now)
        return {"key": key, "status": "recorded"}

    @staticmethod
    def _void_target(db, redemption_key: str, *, device_id: str | None = None,
                     retailer_id: str | None = None) -> dict:
        """The attempt a void is for, if the rules let it be voided; VoidError otherwise.
        A till may void only its own redemptions; the backend's callers those of a retailer."""
        row = db.execute(
            "SELECT a.id, a.key, a.retailer_id, a.store_id, a.device_id, a.status, v.id IS NOT NULL FROM attempts a "
            "LEFT JOIN voids v ON v.attempt_id = a.id WHERE a.key = ?", (redemption_key,)).fetchone()
        if row is not None and ((device_id is not None and row[4] != device_id)
                                or (retailer_id is not None and row[2] != retailer_id)):
            row = None  # another till's or retailer's redemption is as unknown as a missing one
        void_rules.check_target(None if row is None else row[5], voided=bool(row and row[6]))
        return dict(zip(("id", "key", "retailer_id", "store_id", "device_id"), row))

    def _insert_void(self, db, target: dict, *, key: str, device_id: str | None, staff_id: str | None,
                     reason: str, at: float, now: float) -> dict:
        db.execute(
            "INSERT INTO voids (key, attempt_id, retailer_id, store_id, device_id, staff_id, reason, at, received_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (key, target["id"], target["retailer_id"], target["store_id"], device_id, staff_id, reason, at, now))
        till = None if device_id is None else db.execute(
            "SELECT name FROM devices WHERE id = ?", (device_id,)).fetchone()[0]
        data = {"id": key, "redemption_key": target["key"], "reason": reason, "staff_id": staff_id, "at": at,
                "store_id": target["store_id"], "till": till}
        # Other tills hear of it (the redemption's till, when the void was made here, keeps it for its report).
        self._event(db, target["retailer_id"], "void", data, origin=device_id)
        return data

    def void(self, caller, redemption_key: str, reason: object) -> dict:
        """A manager's (or the admin's) void of an accepted redemption, made at the backend.

        `caller` is a `staff_auth.Caller` with role manager or admin: staff of
        one store void only that store's redemptions, retailer-wide staff any
        of their retailer's; the admin token any. The code stays used.
        """
        try:
            text = void_rules.check_reason(reason)
        except void_rules.VoidError as exc:
            raise _void_error(exc) from None
        now = self.clock()

        def write(db):
            try:
                target = self._void_target(db, redemption_key, retailer_id=caller.retailer_id)
                if caller.kind == "staff" and target["store_id"] != caller.store_id and not caller.retailer_wide:
                    raise void_rules.VoidError(void_rules.VoidError.FORBIDDEN,
                                               "staff of one store void only that store's redemptions")
            except void_rules.VoidError as exc:
                raise _void_error(exc) from None
            return self._insert_void(db, target, key=uuid.uuid4().hex, device_id=None, staff_id=caller.staff_id,
                                     reason=text, at=now, now=now)
        return self.writer.submit(write)

    def _printed_overshoot(self, db, device: dict, entry: dict) -> str | None:
        """Which limit of a printed voucher this recorded redemption went past, if any."""
        v = self._vouchers.get(db.conn, entry["voucher_id"], time.monotonic())
        if v is None or (v.total_limit is None and v.store_day_limit is None):
            return None
        state = BackendState(db, retailer_id=device["retailer_id"], store_id=device["store_id"],
                             device_id=device["id"], store_timezone=device["timezone"], velocity_cap=0,
                             vouchers=self._vouchers)
        at_store_today, in_all = state.printed_uses(v.id, device["store_id"],
                                                    verdict.local_day(entry["at"], device["timezone"]))
        if v.total_limit is not None and in_all > v.total_limit:
            return "total_limit"
        if v.store_day_limit is not None and at_store_today > v.store_day_limit:
            return "store_day_limit"
        return None

    @staticmethod
    def _winner(db, attempt_id: int) -> dict:
        row = db.execute(
            "SELECT a.jti, a.at, coalesce(d.name, a.device_id), a.store_id FROM attempts a "
            "LEFT JOIN devices d ON d.id = a.device_id WHERE a.id = ?", (attempt_id,)).fetchone()
        return dict(zip(("jti", "at", "till", "store_id"), row))

    def feed(self, device: dict, after: int, limit: int) -> dict:
        rows = self.read().execute(
            "SELECT seq, type, origin_device, data, at FROM events WHERE retailer_id = ? AND seq > ? "
            "ORDER BY seq LIMIT ?", (device["retailer_id"], after, limit)).fetchall()
        events = [{"seq": seq, "type": type_, "data": json.loads(data), "at": at}
                  for seq, type_, origin, data, at in rows if origin != device["id"]]
        cursor = rows[-1][0] if rows else after
        return {"events": events, "cursor": cursor, "more": len(rows) == limit, "server_time": self.clock()}

    def health(self) -> dict:
        self._one("SELECT 1")
        return {"status": "ok", "server_time": self.clock(), "kid": self.kid}

