"""A till's tamper-evident log: the rules the till, its peers, the backend and anyone with an export check by.

Every attempt a till finishes and every void it makes becomes a record: a
`body` (a JSON array of the record's fields in a fixed order, the exact text
hashed) chained to the record before it by `hash = sha256(prev_hash || body)`
(hex). The chain's head — a record's seq and hash — is signed with the till's
own Ed25519 key, made at enrollment, whose public half the backend holds. A
record deleted, edited, moved or cut off the end breaks a link, or disagrees
with a head the till signed before and someone else kept (the backend after a
sync, a peer over the LAN, a file exported for a dispute).

Nothing here reads a store or the network: `verify_segment` checks records
given to it, and says what is wrong with which records.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
from collections import deque
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PrivateFormat, PublicFormat, NoEncryption

GENESIS = "0" * 64  # the `prev` of a log's first record
ATTEMPT, VOID = "attempt", "void"
KINDS = (ATTEMPT, VOID)
# The body's fields, in the order they are written; a body is a JSON array of exactly these.
ATTEMPT_FIELDS = ("t", "key", "at", "status", "reason", "kind", "voucher_id", "jti", "code", "method",
                  "staff_id", "decided", "day", "store_id", "till", "input_sha")
VOID_FIELDS = ("t", "key", "at", "redemption_key", "reason", "staff_id", "store_id", "till")
REORDER_WINDOW = 16  # records back a moved record is looked for: a swap, not a record changed
MAX_BODY = 4096  # characters; a body is bounded texts and numbers, far below this
MAX_SEQ = 2 ** 53  # JSON-safe, and more records than a till makes in a lifetime
_HEX = frozenset("0123456789abcdef")
_SIGNED = b"pika-till-log/1\x00"
# Made once: json.dumps with options builds an encoder per call, a microsecond of every record.
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _not_a_field(value: Any) -> Any:
    raise TypeError(f"a record's field is a text, a number or null, not {type(value).__name__}")


def _array_encoder():
    """What `_encode` does for a list, without the Python code JSONEncoder.encode runs on every call to
    build its C encoder: that code runs cold inside each redemption's transaction, about a quarter of the
    append's cost measured there (docs/benchmarks.md). The C encoder is made once, with the arguments
    `_encode` gives it, less the check for a list inside itself (a body holds texts, numbers and nulls)."""
    make = getattr(json.encoder, "c_make_encoder", None)
    sample = ["t", "ñ\u2028\"\x00🎟", 1 / 3, 2.0 ** 53, 7, None]
    try:
        chunks = make(None, _not_a_field, json.encoder.encode_basestring, None, ":", ",", False, False, True)
        encode = lambda values: "".join(chunks(values, 0))  # noqa: E731 - made once, called per record
        if encode(sample) == _encode(sample):
            return encode
    except (TypeError, ValueError):  # not there (no C speedups), or another Python's own arguments
        pass
    return _encode  # the same text, the slower way


_encode_array = _array_encoder()

# What a check finds (stable codes; the backend's findings and the export checker use them).
GAP = "log_gap"  # a record is missing: a seq skipped
EDITED = "log_edited"  # a record's body does not hash to its hash, or differs from a copy kept before
REORDERED = "log_reordered"  # records out of order: a seq repeated or going back, a link to the wrong record
REWOUND = "log_rewound"  # the chain ends before a head the till signed before
BAD_SIGNATURE = "log_bad_signature"  # a head whose signature does not check with the till's key
MALFORMED = "log_malformed"  # a record or head that is not of the log's shape


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a log: its code, the seqs it concerns, and a sentence for a person."""

    code: str
    seqs: tuple[int, ...]
    message: str

    def to_json(self) -> dict:
        return {"code": self.code, "seqs": list(self.seqs), "message": self.message}


# --- records ------------------------------------------------------------------------


def attempt_body(*, key: str, at: float, status: str, reason: str | None, kind: str | None,
                 voucher_id: str | None, jti: str | None, code: str | None, method: str,
                 staff_id: str | None, decided: str, day: str, store_id: str, till: str,
                 input_text: str | None, input_sha: str | None = None) -> str:
    """The body of a finished attempt: what was decided, when, of what input (its digest, not the code).
    `input_sha`: `input_digest(input_text)` made before the record's transaction, if the caller has it."""
    digest = input_digest(input_text) if input_sha is None else input_sha
    return _encode_array(["attempt", key, at, status, reason, kind, voucher_id, jti, code, method, staff_id,
                          decided, day, store_id, till, digest])


def input_digest(input_text: str | None) -> str | None:
    """What a record says of its input: a digest, not a code a customer could use again."""
    if input_text is None:
        return None
    return hashlib.sha256(input_text.encode("utf-8", "backslashreplace")).hexdigest()[:32]


def void_body(*, key: str, at: float, redemption_key: str, reason: str, staff_id: str | None,
              store_id: str, till: str) -> str:
    return _encode_array(["void", key, at, redemption_key, reason, staff_id, store_id, till])


def link(prev: str, body: str) -> str:
    """The hash of a record: sha256 over the previous record's hash and this body (hex)."""
    return hashlib.sha256((prev + body).encode("utf-8")).hexdigest()


def parse_body(body: Any) -> dict:
    """A body's fields by name; ValueError if it is not a body of the log's shape."""
    if not isinstance(body, str) or not 2 <= len(body) <= MAX_BODY:
        raise ValueError(f"a record's body is a text of 2 to {MAX_BODY} characters")
    try:
        values = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise ValueError("a record's body is not JSON") from exc
    if not isinstance(values, list) or not values or values[0] not in KINDS:
        raise ValueError("a record's body is a JSON array starting with 'attempt' or 'void'")
    names = ATTEMPT_FIELDS if values[0] == ATTEMPT else VOID_FIELDS
    if len(values) != len(names):
        raise ValueError(f"a {values[0]} record has {len(names)} fields")
    fields = dict(zip(names, values))
    for name, value in fields.items():
        if name == "at":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or not 0 <= value < 7258118400:
                raise ValueError("a record's time is seconds since 1970, before 2200")
        elif value is not None and not isinstance(value, str):
            raise ValueError(f"a record's {name} is a text or null")
    if not isinstance(fields["key"], str) or not fields["key"]:
        raise ValueError("a record names its key")
    return fields


def is_hash(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 64 and set(value) <= _HEX


def is_seq(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_SEQ


# --- keys and heads ------------------------------------------------------------------


def new_private_key() -> str:
    """A new till key: the 32 raw bytes of an Ed25519 private key, base64."""
    raw = Ed25519PrivateKey.generate().private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return base64.b64encode(raw).decode("ascii")


def _private(private_key: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(base64.b64decode(private_key, validate=True))


def public_key_of(private_key: str) -> str:
    raw = _private(private_key).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def parse_public_key(text: Any) -> Ed25519PublicKey:
    """A till's public key from its base64 text; ValueError if it is not one."""
    if not isinstance(text, str) or len(text) != 44:
        raise ValueError("a till's log key is 32 bytes in base64 (44 characters)")
    try:
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(text, validate=True))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("a till's log key is 32 bytes in base64 (44 characters)") from exc


def _head_message(device_id: str, seq: int, hash_: str) -> bytes:
    return _SIGNED + f"{device_id}\x00{seq}\x00{hash_}".encode("utf-8")


def sign_head(private_key: str, device_id: str, seq: int, hash_: str) -> str:
    """The till's signature (base64) over its log's head: that device's record `seq` has hash `hash_`."""
    return base64.b64encode(_private(private_key).sign(_head_message(device_id, seq, hash_))).decode("ascii")


def head_signed(public_key: str | Ed25519PublicKey, device_id: str, seq: int, hash_: str, signature: Any) -> bool:
    """True if `signature` is the till's over that head."""
    try:
        key = parse_public_key(public_key) if isinstance(public_key, str) else public_key
        raw = base64.b64decode(signature, validate=True) if isinstance(signature, str) else b""
        key.verify(raw, _head_message(device_id, seq, hash_))
    except (InvalidSignature, ValueError, binascii.Error):
        return False
    return True


# --- checking -------------------------------------------------------------------------


def verify_segment(records: Sequence[Mapping[str, Any]], *, prev: str = GENESIS, after: int = 0,
                   head: Mapping[str, Any] | None = None, public_key: str | None = None,
                   device_id: str = "") -> list[Problem]:
    """What is wrong with `records` ({seq, body, hash}, in the order given) as the records following
    record `after` whose hash is `prev`; with `head` ({seq, hash, sig}) and `public_key`, also whether the
    till signed that head and the records reach it. An empty list: the segment is whole."""
    problems: list[Problem] = []
    expected_seq, expected_prev = after + 1, prev
    recent: deque[str] = deque([prev], maxlen=REORDER_WINDOW)  # hashes a moved record may link to
    for index, record in enumerate(records):
        seq, body, hash_ = record.get("seq"), record.get("body"), record.get("hash")
        if not is_seq(seq) or not is_hash(hash_) or not isinstance(body, str):
            problems.append(Problem(MALFORMED, (seq,) if is_seq(seq) else (), f"record {index + 1} given is not "
                                    "{seq, body, hash} of the log's shape"))
            return problems
        if seq < expected_seq:
            problems.append(Problem(REORDERED, (seq,), f"record {seq} comes after record {expected_seq - 1}"))
            return problems
        if seq > expected_seq:
            missing = tuple(range(expected_seq, min(seq, expected_seq + 1000)))
            problems.append(Problem(GAP, missing, f"records {expected_seq} to {seq - 1} are missing"))
            expected_prev = None  # the link to a missing record cannot be checked
        try:
            parse_body(body)
        except ValueError as exc:
            problems.append(Problem(MALFORMED, (seq,), f"record {seq}: {exc}"))
            return problems
        if expected_prev is not None and link(expected_prev, body) != hash_:
            code = EDITED
            if index + 1 < len(records) and link(expected_prev, str(records[index + 1].get("body"))) == \
                    records[index + 1].get("hash"):
                code = REORDERED  # the next record links where this one should: they were swapped
            elif any(link(h, body) == hash_ for h in recent):
                code = REORDERED  # whole, but it follows a record nearby, not the one now before it: moved
            problems.append(Problem(code, (seq,), f"record {seq} does not follow from the record before it"
                                    if code == REORDERED else f"record {seq} was changed after it was chained"))
        expected_seq, expected_prev = seq + 1, hash_
        recent.append(hash_)
    if head is not None:
        problems.extend(_check_head(head, records, after, prev, public_key, device_id))
    return problems


def _check_head(head: Mapping[str, Any], records: Sequence[Mapping[str, Any]], after: int, prev: str,
                public_key: str | None, device_id: str) -> Iterable[Problem]:
    seq, hash_, sig = head.get("seq"), head.get("hash"), head.get("sig")
    if not (seq == 0 or is_seq(seq)) or not is_hash(hash_):
        yield Problem(MALFORMED, (), "the head is not {seq, hash, sig} of the log's shape")
        return
    if public_key is not None and not head_signed(public_key, device_id, seq, hash_, sig):
        yield Problem(BAD_SIGNATURE, (seq,), f"the head at record {seq} is not signed by this till's key")
    last_seq, last_hash = (records[-1].get("seq"), records[-1].get("hash")) if records else (after, prev)
    if last_seq == seq and last_hash != hash_:
        yield Problem(EDITED, (seq,), f"record {seq} differs from the head the till signed")
    elif isinstance(last_seq, int) and last_seq < seq:
        yield Problem(REWOUND, tuple(range(last_seq + 1, min(seq, last_seq + 1000) + 1)),
                      f"the log ends at record {last_seq}, before the head at record {seq} the till signed")
