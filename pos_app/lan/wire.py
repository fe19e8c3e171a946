"""What tills of one store say to each other on the shop's LAN, and how each side checks it.

Nothing a peer sends is believed on its word. Every request AND every answer
carries two proofs over the same message (method or status, the path and
query, the time, the sender's device id, the store key's id, the body's
sha256 and, for a request, the device id of the till it is for):

- an HMAC-SHA256 with the store's LAN key named by `kid` (the backend hands a
  store's tills its keys; a till of another store or retailer has other keys,
  a revoked till stops hearing the rotated one), and
- an Ed25519 signature with the sender's own log key, whose public half is in
  the store's roster (a till not in the roster, or one that knows the store
  key but signs as another till, is refused).

A request names the till it is for, and a till refuses one for another till
(`MISDIRECTED`): a push recorded on the LAN cannot be played back to another
till, nor to its own sender, which would then count its own records as a
peer's. Only a hello, sent before the asker knows who answers at an address,
may name no till (it changes nothing). An answer's message names the request's
MAC, so an answer recorded once cannot be played back as the answer to
another request. A message more than
`MAX_SKEW_S` from the receiver's clock is refused, so one recorded on the LAN
stops working after minutes (records are idempotent, so a replay within them
changes nothing). Every refusal is a `LanRefused` with a stable code.

The bodies are JSON of fixed shapes, bounded (`MAX_BODY_BYTES`, `MAX_RECORDS`
records of the till log's own bounds); unknown fields, duplicate names, NaN
and text that SQLite could not store are refused whole.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ..core import till_log
from ..core.lan_roster import secret_bytes
from ..core.till_log import is_hash, is_seq

PROTOCOL = "pika-lan/2"  # /2: a request names the till it is for
PREFIX = "/lan/v1"
HELLO, LOG, RECORDS = f"{PREFIX}/hello", f"{PREFIX}/log", f"{PREFIX}/records"
MAX_BODY_BYTES = 1 << 20  # a request's or an answer's body
MAX_RECORDS = 200  # records in one message: 200 × 4096 characters stays under the body's bound
MAX_TARGET = 512  # a path and query
MAX_SKEW_S = 300.0  # a message's time against the receiver's clock
# The headers, lower-case as http.server and httpx both let us read them.
KID, DEVICE, TIME, MAC, SIG = "pika-lan-kid", "pika-lan-device", "pika-lan-time", "pika-lan-mac", "pika-lan-sig"
HEADERS = (KID, DEVICE, TIME, MAC, SIG)
TO = "pika-lan-to"  # a request's: the device id of the till it is for ("" only for a hello)

# Why a message is refused (stable codes: the 403/400 answer's `error.code`, the log's words).
UNSIGNED = "lan_unsigned"  # the proofs are missing or not of their shape
CLOCK = "lan_clock"  # its time is too far from ours
UNKNOWN_KEY = "lan_unknown_key"  # a store key this till does not hold: another store, or a rotated key
BAD_MAC = "lan_bad_mac"  # the store key does not check
NOT_IN_ROSTER = "lan_not_in_roster"  # not a till of this store's roster (another store, revoked, unknown)
BAD_SIGNATURE = "lan_bad_signature"  # the till key does not check
TOO_LARGE = "lan_too_large"
MALFORMED = "lan_malformed"  # a body that is not of its shape
NOT_CONFIGURED = "lan_not_configured"  # this till holds no LAN keys (never given, or unusable)
MISDIRECTED = "lan_misdirected"  # a request for another till (one recorded on the LAN, played back here)
# An answer's other codes: no such request, the store thread did not answer in time, the till failed.
NOT_FOUND, BUSY, FAILED = "lan_not_found", "lan_busy", "lan_failed"
REFUSALS = (UNSIGNED, CLOCK, UNKNOWN_KEY, BAD_MAC, NOT_IN_ROSTER, BAD_SIGNATURE, TOO_LARGE, MALFORMED,
            NOT_CONFIGURED, MISDIRECTED)

_TIME = re.compile(r"[0-9]{1,11}(\.[0-9]{1,6})?")
_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_B64 = re.compile(r"[A-Za-z0-9+/]{1,200}={0,2}")


class LanRefused(Exception):
    """A message refused: `code` (one of REFUSALS) and a sentence that quotes no secret."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Keys:
    """What a till signs and checks with: the store's keys and roster (`lan_config()`), its own identity."""

    device_id: str
    private_key: str = field(repr=False)  # this till's log key (base64): its signature on messages and heads
    signer: Ed25519PrivateKey = field(repr=False)  # the same, parsed once
    keys: Mapping[str, bytes] = field(repr=False)  # kid → secret, the active one and those in their grace
    active_kid: str
    roster: Mapping[str, Mapping[str, str]]  # device_id → {device_id, name, public_key}

    @classmethod
    def of(cls, config: Mapping[str, Any], device_id: str, private_key: str) -> Keys:
        keys = {key["kid"]: secret_bytes(key["secret"]) for key in config["keys"]}
        active = next(key["kid"] for key in config["keys"] if key["active"])
        signer = Ed25519PrivateKey.from_private_bytes(base64.b64decode(private_key, validate=True))
        return cls(device_id=device_id, private_key=private_key, signer=signer, keys=keys, active_kid=active,
                   roster={peer["device_id"]: peer for peer in config["peers"]})


@dataclass(frozen=True)
class Sender:
    """Who a checked message came from: a till of the roster, and the proof's MAC (an answer names it)."""

    device_id: str
    name: str
    public_key: str
    mac: str


# --- the proofs ---------------------------------------------------------------------------


def _message(kind: str, verb: str, target: str, time_text: str, device_id: str, kid: str, body: bytes,
             request_mac: str = "", to: str = "") -> bytes:
    return "\n".join((PROTOCOL, kind, verb, target, time_text, device_id, kid, hashlib.sha256(body).hexdigest(),
                      request_mac, to)).encode("utf-8")


def _sign(keys: Keys, message: bytes, time_text: str) -> dict[str, str]:
    mac = base64.b64encode(hmac.new(keys.keys[keys.active_kid], message, hashlib.sha256).digest()).decode("ascii")
    sig = base64.b64encode(keys.signer.sign(message)).decode("ascii")
    return {KID: keys.active_kid, DEVICE: keys.device_id, TIME: time_text, MAC: mac, SIG: sig}


def _time_text(now: float) -> str:
    return f"{now:.3f}"


def sign_request(keys: Keys, method: str, target: str, body: bytes, now: float, to: str) -> dict[str, str]:
    """The headers that prove a request for the till `to` ("" for a hello to an address not known yet):
    `now` on the sender's corrected clock."""
    text = _time_text(now)
    message = _message("request", method, target, text, keys.device_id, keys.active_kid, body, "", to)
    return {**_sign(keys, message, text), TO: to}


def sign_answer(keys: Keys, status: int, request_mac: str, body: bytes, now: float) -> dict[str, str]:
    """The headers that prove an answer to the request whose MAC was `request_mac`."""
    text = _time_text(now)
    return _sign(keys, _message("answer", str(status), "", text, keys.device_id, keys.active_kid, body,
                                request_mac), text)


def verify_request(keys: Keys | None, method: str, target: str, headers: Mapping[str, str], body: bytes,
                   now: float) -> Sender:
    """The roster's till that sent this request; LanRefused otherwise."""
    if len(target) > MAX_TARGET or not target.isascii():
        raise LanRefused(MALFORMED, "the request's path is too long or not ASCII")
    to = _header(headers, TO)
    if to and not _ID.fullmatch(to):
        raise LanRefused(UNSIGNED, "the till the request is for is not a device id")
    sender = _verify(keys, "request", method, target, headers, body, now, "", to)
    if to != keys.device_id and not (to == "" and method == "GET" and target == HELLO):
        raise LanRefused(MISDIRECTED, f"the request is for till {to or '(none)'}, not this one")
    return sender


def verify_answer(keys: Keys | None, status: int, request_mac: str, headers: Mapping[str, str], body: bytes,
                  now: float) -> Sender:
    """The roster's till that answered our request (its MAC `request_mac`); LanRefused otherwise."""
    return _verify(keys, "answer", str(status), "", headers, body, now, request_mac)


def _verify(keys: Keys | None, kind: str, verb: str, target: str, headers: Mapping[str, str], body: bytes,
            now: float, request_mac: str, to: str = "") -> Sender:
    if keys is None:
        raise LanRefused(NOT_CONFIGURED, "this till holds no LAN keys from the backend")
    if len(body) > MAX_BODY_BYTES:
        raise LanRefused(TOO_LARGE, f"a body of more than {MAX_BODY_BYTES} bytes")
    kid, device_id, time_text, mac, sig = (_header(headers, name) for name in HEADERS)
    if not (_ID.fullmatch(kid) and _ID.fullmatch(device_id) and _TIME.fullmatch(time_text)
            and _B64.fullmatch(mac) and _B64.fullmatch(sig)):
        raise LanRefused(UNSIGNED, "the message's proofs are missing or not of their shape")
    if abs(float(time_text) - now) > MAX_SKEW_S:
        raise LanRefused(CLOCK, f"the message's time is more than {MAX_SKEW_S:.0f} s from this till's clock")
    secret = keys.keys.get(kid)
    if secret is None:
        raise LanRefused(UNKNOWN_KEY, f"store key {kid} is not one this till holds")
    message = _message(kind, verb, target, time_text, device_id, kid, body, request_mac, to)
    expected = base64.b64encode(hmac.new(secret, message, hashlib.sha256).digest()).decode("ascii")
    if not hmac.compare_digest(expected, mac):
        raise LanRefused(BAD_MAC, f"the store key {kid} does not check")
    peer = keys.roster.get(device_id)
    if peer is None:
        raise LanRefused(NOT_IN_ROSTER, f"device {device_id} is not a till of this store's roster")
    try:
        till_log.parse_public_key(peer["public_key"]).verify(base64.b64decode(sig, validate=True), message)
    except Exception:  # InvalidSignature, or a signature of the wrong length
        raise LanRefused(BAD_SIGNATURE, f"the message is not signed by till {device_id}'s key") from None
    return Sender(device_id=device_id, name=peer["name"], public_key=peer["public_key"], mac=mac)


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    return value if isinstance(value, str) and len(value) <= 400 else ""


# --- the bodies --------------------------------------------------------------------------


def dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def loads(body: bytes) -> Any:
    """JSON of a bounded body: no NaN or Infinity, no name twice, strict UTF-8; LanRefused otherwise."""
    if len(body) > MAX_BODY_BYTES:
        raise LanRefused(TOO_LARGE, f"a body of more than {MAX_BODY_BYTES} bytes")
    try:
        return json.loads(body.decode("utf-8"), parse_constant=_no_constant, object_pairs_hook=_unique)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise LanRefused(MALFORMED, f"the body is not JSON: {type(exc).__name__}") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def _unique(pairs: list[tuple[str, Any]]) -> dict:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise ValueError("a name is given twice")
    return out


def _fields(value: Any, names: frozenset[str], where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict) or set(value) != names:
        raise LanRefused(MALFORMED, f"{where} must be an object of exactly {', '.join(sorted(names))}")
    return value


def parse_head(value: Any) -> dict:
    """A signed head {seq, hash, sig}; seq 0 is an empty log (its hash the genesis)."""
    head = _fields(value, frozenset(("seq", "hash", "sig")), "head")
    seq, hash_, sig = head["seq"], head["hash"], head["sig"]
    if not (seq == 0 and not isinstance(seq, bool) or is_seq(seq)) or not is_hash(hash_) \
            or not isinstance(sig, str) or not _B64.fullmatch(sig):
        raise LanRefused(MALFORMED, "head must be {seq: 0 or more, hash: 64 hex, sig: base64}")
    return {"seq": seq, "hash": hash_, "sig": sig}


def parse_records(value: Any) -> list[dict]:
    """Records {seq, body, hash} as the till log has them: bounded, in rising seq, storable text."""
    if not isinstance(value, list) or len(value) > MAX_RECORDS:
        raise LanRefused(MALFORMED, f"records must be a list of at most {MAX_RECORDS}")
    out: list[dict] = []
    for record in value:
        record = _fields(record, frozenset(("seq", "body", "hash")), "a record")
        seq, body, hash_ = record["seq"], record["body"], record["hash"]
        if not is_seq(seq) or not is_hash(hash_) or not isinstance(body, str) \
                or not 2 <= len(body) <= till_log.MAX_BODY or not _storable(body):
            raise LanRefused(MALFORMED, f"a record must be {{seq, body: 2 to {till_log.MAX_BODY} characters, "
                                        "hash: 64 hex}}")
        if out and seq <= out[-1]["seq"]:
            raise LanRefused(MALFORMED, "records must come in rising seq")
        out.append({"seq": seq, "body": body, "hash": hash_})
    return out


def parse_page(body: bytes) -> tuple[list[dict], dict]:
    """A push's body, or a log answer's: {records, head}; the head is signed at the page's last record."""
    page = _fields(loads(body), frozenset(("records", "head")), "the page")
    return parse_records(page["records"]), parse_head(page["head"])


def parse_hello(body: bytes) -> tuple[dict, int]:
    """A hello's answer: the peer's head and how much of the asker's log it holds."""
    hello = _fields(loads(body), frozenset(("head", "held")), "the hello")
    return parse_head(hello["head"]), parse_held(hello["held"])


def parse_held(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= till_log.MAX_SEQ:
        raise LanRefused(MALFORMED, "held must be a seq (0 or more)")
    return value


def parse_push_answer(body: bytes) -> int:
    return parse_held(_fields(loads(body), frozenset(("held",)), "the answer")["held"])


def parse_log_query(query: str) -> tuple[int, int]:
    """`after=N&limit=M` of a log request (both required, nothing else)."""
    parts = dict(part.partition("=")[::2] for part in query.split("&")) if query else {}
    if set(parts) != {"after", "limit"} or not all(re.fullmatch(r"[0-9]{1,16}", v) for v in parts.values()):
        raise LanRefused(MALFORMED, "a log request asks after=SEQ&limit=N")
    after, limit = int(parts["after"]), int(parts["limit"])
    if after > till_log.MAX_SEQ or not 1 <= limit <= MAX_RECORDS:
        raise LanRefused(MALFORMED, f"after is a seq, limit 1 to {MAX_RECORDS}")
    return after, limit


def error_body(code: str, message: str) -> bytes:
    return dumps({"error": {"code": code, "message": message[:300]}})


def _storable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True

