"""The wire shapes the till and the backend share, checked (docs/api.md): one contract, in the shared floor.

The enrollment answer, the catalog, the feed's events and a voucher are
parsed and checked here before anything is written, numbers and texts
bounded, so a malformed answer is one ValueError and never half a catalog,
and a feed event that does not fit is an `UnfitEvent` the till parks; the
backend checks each event it writes with `check_event`. The client
(`pos_app.sync.client`) reads a verdict's voucher with the same
`parse_voucher`. Also the shape of
the sync Entries the till itself sends, so an entry put back from a damaged
store is checked against what this till could have written.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

from . import tokens
from .lan_roster import parse_lan
from .domain import IDEMPOTENCY_KEY, Voucher
from .verdict import is_timezone, printed_form

DEFAULT_TIMEZONE = "America/Asuncion"
VOUCHER_KINDS = ("personal", "printed")
DISCOUNT_KINDS = ("percent", "amount")
# The fields of a sync Entry (docs/api.md); the backend refuses any other. `input` is
# what the till scanned: the proof the backend judges again (the rest is the till's say).
ENTRY_FIELDS = ("key", "at", "accepted", "reason", "kind", "voucher_id", "jti", "code",
                "method", "staff_id", "decided", "input")
# The times a till may send (epoch seconds): 1970 to 2200. A finite number past them
# (JSON has 1e308) is no time, and must never reach a database or a feed.
LATEST_TIME = 7_258_118_400.0
VOID_FIELDS = ("type", "key", "at", "redemption_key", "void_reason", "staff_id", "staff_proof")
ENROLLMENT_FACTS = ("device_id", "device_token", "retailer_id", "store_id")
# What the catalog and the feed carry is bounded so that whatever passes a till can apply:
# times as `is_time`, counts, limits, amounts and seqs whole numbers from 0 to MAX_WHOLE (what
# JSON and SQLite both hold exactly), texts at most MAX_TEXT characters and storable (no NUL,
# no lone surrogate: SQLite's UTF-8 cannot hold one).
MAX_WHOLE = 2**53 - 1
MAX_TEXT = 10_000
MAX_VOUCHER_TEXTS = 16  # languages in a voucher's texts, and texts per language
# How many days a till may judge personal codes without hearing from the backend (the catalog's policy).
DEFAULT_OFFLINE_DAYS, OFFLINE_DAYS = 7, (1, 90)


@dataclass(frozen=True)
class Catalog:
    """`GET /catalog`'s answer, checked: rows ready for the store's tables."""

    retailer_id: str
    retailer_name: str
    store_id: str
    store_name: str
    timezone: str
    keys: list[tuple[str, str]]
    vouchers: list[Voucher]
    printed_codes: list[tuple[str, str]]
    claims: list[tuple[str, str, str, float]]
    staff: list[tuple[str, str, str, str, str | None, str | None]]
    revoked: list[str]
    server_time: Any
    issuer: str = ""  # the `iss` of the backend's tokens; "" from a backend older than the check
    offline_days: int = DEFAULT_OFFLINE_DAYS  # policy.offline_days: how long a till may judge personal codes unheard
    lan: dict | None = None  # the store's LAN keys and roster (core/lan_roster.py); None from an older backend


def parse_enrollment(answer: Any) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """`POST /devices/enroll`'s answer: the till's identity facts and its keys (kid, pem)."""
    where = "enrollment"
    _mapping(answer, where)
    facts = {name: _text(answer, name, where) for name in ENROLLMENT_FACTS}
    if _optional_text(answer, "issuer", where):  # kept as the till's `issuer` setting (tokens' `iss`)
        facts["issuer"] = answer["issuer"]
    parse_lan(answer.get("lan"), where)  # checked with the rest; the store keeps it (save_enrollment)
    return facts, parse_keys(answer.get("keys", []), where)


def parse_catalog(catalog: Any, *, known_retailer: str = "", known_store: str = "") -> Catalog:
    """`GET /catalog`'s answer; ValueError if malformed or for another retailer or store than the known ones."""
    where = "catalog"
    _mapping(catalog, where)
    retailer = _mapping(catalog.get("retailer"), "catalog retailer")
    store = _mapping(catalog.get("store"), "catalog store")
    retailer_id = _text(retailer, "id", "catalog retailer")
    store_id = _text(store, "id", "catalog store")
    timezone = _timezone(store.get("timezone", DEFAULT_TIMEZONE), "catalog store")
    for known, given, what in ((known_retailer, retailer_id, "retailer"), (known_store, store_id, "store")):
        if known and known != given:
            raise ValueError(f"the catalog is for another {what} ({given}, not {known})")
    keys = parse_keys(_list(catalog, "keys", where), where)
    vouchers = [parse_voucher(v) for v in _list(catalog, "vouchers", where)]
    printed = [_parse_printed_code(p) for p in _list(catalog, "printed_codes", where)]
    claims = [_parse_claim(c) for c in _list(catalog, "claims", where)]
    staff = [_parse_staff(s) for s in _list(catalog, "staff", where)]
    revoked = _list(catalog, "revoked", where)
    if not all(isinstance(jti, str) and jti and _storable(jti) for jti in revoked):
        raise ValueError("catalog revoked: every entry must be a token id")
    # The backend's clock, only as a hint (the skew comes from every answer): an odd one is dropped.
    server_time = catalog.get("server_time") if is_time(catalog.get("server_time")) else None
    parse_epoch(catalog, where)  # checked here; the feed's page is where the till acts on it
    lan = parse_lan(catalog.get("lan"), where)
    return Catalog(retailer_id=retailer_id, retailer_name=_optional_text(retailer, "name", "catalog retailer") or "",
                   store_id=store_id, store_name=_optional_text(store, "name", "catalog store") or "",
                   timezone=timezone, keys=keys, vouchers=vouchers,
                   printed_codes=printed, claims=claims, staff=staff, revoked=revoked,
                   server_time=server_time, issuer=_optional_text(catalog, "issuer", where) or "",
                   offline_days=_offline_days(catalog.get("policy")), lan=lan)


def _offline_days(policy: Any) -> int:
    """The catalog's `policy.offline_days` (1..90); the default when the backend names no policy."""
    if policy is None:
        return DEFAULT_OFFLINE_DAYS
    days = _mapping(policy, "catalog policy").get("offline_days", DEFAULT_OFFLINE_DAYS)
    low, high = OFFLINE_DAYS
    if isinstance(days, bool) or not isinstance(days, int) or not low <= days <= high:
        raise ValueError(f"catalog policy: offline_days must be a whole number from {low} to {high}")
    return days


@dataclass(frozen=True)
class UnfitEvent:
    """A feed event this till cannot apply, with why: the store parks it and moves on (docs/sync.md)."""

    reason: str
    data: Any  # the event's data as it came


def parse_feed(events: Any, cursor: Any) -> list[tuple[int, str | None, Any]]:
    """A page of `GET /feed`: each event as (seq, type, parsed data).

    An event whose data does not fit its type comes as (seq, type, UnfitEvent), so one
    bad event never holds up the page; ValueError only if the page itself is malformed
    (no list, no cursor, an event without its seq).
    """
    if not isinstance(events, list):
        raise ValueError("feed events must be a list")
    if isinstance(cursor, bool) or not isinstance(cursor, int) or not 0 <= cursor <= MAX_WHOLE:
        raise ValueError("the feed cursor must be a whole number")
    return [_read_event(e) for e in events]


@dataclass(frozen=True)
class Epoch:
    """What a feed page or the catalog says of the backend's history: its epoch (new after each restore from a
    backup), since when (the backup's time) and the event log's head; None where an older backend says none."""

    epoch: str | None
    since: float | None
    head: int | None


def parse_epoch(answer: Any, where: str) -> Epoch:
    """The epoch fields of `GET /feed`'s or `GET /catalog`'s answer; ValueError if present but malformed."""
    answer = _mapping(answer, where)
    epoch, since, head = answer.get("epoch"), answer.get("epoch_since"), answer.get("head")
    if epoch is not None and not (isinstance(epoch, str) and 0 < len(epoch) <= 64 and _storable(epoch)):
        raise ValueError(f"{where}: epoch must be a text of 1 to 64 characters")
    if since is not None and not is_time(since):
        raise ValueError(f"{where}: epoch_since must be a time from 1970 to {int(LATEST_TIME)} (epoch seconds)")
    if head is not None and (isinstance(head, bool) or not isinstance(head, int) or not 0 <= head <= MAX_WHOLE):
        raise ValueError(f"{where}: head must be a whole number")
    return Epoch(epoch, None if since is None else float(since), head)


def parse_keys(keys: Any, where: str) -> list[tuple[str, str]]:
    if not isinstance(keys, list):
        raise ValueError(f"{where}: keys must be a list")
    rows = []
    for key in keys:
        key = _mapping(key, f"{where} key")
        kid, pem = _text(key, "kid", f"{where} key"), _text(key, "pem", f"{where} key")
        tokens.TrustSet.from_pems([pem])  # ValueError for anything but a P-256 public key
        rows.append((kid, pem))
    return rows


def parse_voucher(data: Any) -> Voucher:
    """A voucher from JSON the backend sent; ValueError unless it has the API's shape."""
    where = "voucher"
    data = _mapping(data, where)
    voucher_id = _text(data, "id", where)
    where = f"voucher {voucher_id}"
    _text(data, "retailer_id", where)
    _text(data, "status", where)
    if data.get("kind") not in VOUCHER_KINDS:
        raise ValueError(f"{where}: kind must be one of {VOUCHER_KINDS}")
    discount = _mapping(data.get("discount"), f"{where} discount")
    if discount.get("kind") not in DISCOUNT_KINDS or _optional_int(discount, "value", where) is None:
        raise ValueError(f"{where}: a discount is a kind ({DISCOUNT_KINDS}) and a whole value")
    _optional_text(discount, "currency", where)
    texts = data.get("texts") or {}
    if not (isinstance(texts, Mapping) and len(texts) <= MAX_VOUCHER_TEXTS and all(
            isinstance(lang, str) and _storable(lang) and isinstance(fields, Mapping)
            and len(fields) <= MAX_VOUCHER_TEXTS
            and all(isinstance(k, str) and isinstance(v, str) and _storable(k) and _storable(v)
                    for k, v in fields.items())
            for lang, fields in texts.items())):
        raise ValueError(f"{where}: texts must map languages to texts by name")
    for name in ("valid_from", "valid_until"):
        if _optional_int(data, name, where) is not None and not is_time(data[name]):
            raise ValueError(f"{where}: {name} must be a time from 1970 to {int(LATEST_TIME)}")
    for name in ("total_limit", "store_day_limit"):
        _optional_int(data, name, where)
    _optional_text(data, "retailer_name", where)
    try:
        return Voucher.from_json({**data, "discount": dict(discount), "retailer_name": data.get("retailer_name") or ""})
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{where}: {exc}") from exc


def parse_event(event: Any) -> tuple[int, str | None, Any]:
    """(seq, type, parsed data); the type is None for types this till does not know.
    ValueError unless the event fits its type's shape."""
    event = _mapping(event, "feed event")
    seq = _seq(event)
    kind = event.get("type")
    if not isinstance(kind, str) or not kind:
        raise ValueError("feed event: seq and type are required")
    if kind not in _EVENT_PARSERS:
        return seq, None, None  # a newer backend's event: nothing this till must act on
    return seq, kind, check_event(kind, event.get("data"))


def check_event(kind: str, data: Any) -> Any:
    """The parsed data of an event of type `kind`; ValueError unless a till can apply it.

    The backend calls it before it writes an event (server_stub.operations.common.add_event),
    so it never writes one its tills would have to park.
    """
    parser = _EVENT_PARSERS.get(kind)
    if parser is None:
        raise ValueError(f"feed event: no till knows the type {kind!r}")
    return parser(data)


def _seq(event: Mapping[str, Any]) -> int:
    seq = _optional_int(event, "seq", "feed event")
    if seq is None or seq <= 0:
        raise ValueError("feed event: seq and type are required")
    return seq


def _read_event(event: Any) -> tuple[int, str | None, Any]:
    """parse_event, but an event that names its seq and does not fit is kept as an UnfitEvent."""
    seq = _seq(_mapping(event, "feed event"))
    try:
        return parse_event(event)
    except (ValueError, RecursionError) as exc:
        kind = event.get("type")
        return seq, kind if isinstance(kind, str) else None, UnfitEvent(str(exc), event.get("data"))


def is_time(value: Any) -> bool:
    """A number that can be a time a till gives: finite, from 1970 to LATEST_TIME."""
    return (not isinstance(value, bool) and isinstance(value, (int, float)) and 0 <= value <= LATEST_TIME
            and math.isfinite(value))  # the range first: a huge int has no float to test


def is_outbox_entry(payload: Any) -> bool:
    """An outbox entry of the shape this till writes (a redemption's ENTRY_FIELDS, or a void's)."""
    if not isinstance(payload, Mapping) or not isinstance(payload.get("key"), str) \
            or not IDEMPOTENCY_KEY.match(payload["key"]):
        return False
    if not is_time(payload.get("at")) or payload["at"] <= 0:
        return False
    if payload.get("type") == "void":
        return set(payload) <= set(VOID_FIELDS) and isinstance(payload.get("redemption_key"), str)
    return (set(payload) <= set(ENTRY_FIELDS) and isinstance(payload.get("method"), str)
            and isinstance(payload.get("input"), (str, type(None))))


# --- the small checks --------------------------------------------------------------


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{where}: expected an object")
    return value


def _list(data: Mapping[str, Any], name: str, where: str) -> list:
    value = data.get(name, [])
    if not isinstance(value, list):
        raise ValueError(f"{where}: {name} must be a list")
    return value


def _storable(value: str) -> bool:
    """Short enough, no NUL, and encodable (a lone surrogate is not)."""
    if len(value) > MAX_TEXT or "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _text(data: Mapping[str, Any], name: str, where: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{where}: {name} must be a non-empty text")
    if not _storable(value):
        raise ValueError(f"{where}: {name} is too long or holds a NUL or a lone surrogate")
    return value


def _optional_text(data: Mapping[str, Any], name: str, where: str) -> str | None:
    value = data.get(name)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{where}: {name} must be a text")
    if value is not None and not _storable(value):
        raise ValueError(f"{where}: {name} is too long or holds a NUL or a lone surrogate")
    return value


def _optional_int(data: Mapping[str, Any], name: str, where: str) -> int | None:
    value = data.get(name)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise ValueError(f"{where}: {name} must be a whole number")
    if value is not None and not 0 <= value <= MAX_WHOLE:
        raise ValueError(f"{where}: {name} must be from 0 to {MAX_WHOLE}")
    return value


def _time(data: Mapping[str, Any], name: str, where: str) -> float:
    value = data.get(name)
    if not is_time(value):
        raise ValueError(f"{where}: {name} must be a time from 1970 to {int(LATEST_TIME)} (epoch seconds)")
    return value


def _timezone(value: Any, where: str) -> str:
    if not is_timezone(value):
        raise ValueError(f"{where}: unknown timezone {value!r}")
    return value


# --- the catalog's rows and the feed's events ----------------------------------------


def _parse_printed_code(data: Any) -> tuple[str, str]:
    where = "printed code"
    data = _mapping(data, where)
    code = _text(data, "code", where)
    # Stored in the form decide() looks it up with.
    return printed_form(code) or code, _text(data, "voucher_id", where)


def _parse_claim(data: Any) -> tuple[str, str, str, float]:
    where = "claim"
    data = _mapping(data, where)
    digest = _text(data, "code_digest", where)
    if len(digest) != 32 or digest.strip("0123456789abcdef"):
        raise ValueError(f"{where}: code_digest must be 32 hex digits")
    return (digest, _text(data, "jti", where),
            _text(data, "voucher_id", where), _time(data, "expires_at", where))


def _parse_staff(data: Any) -> tuple[str, str, str, str, str | None, str | None]:
    """(id, name, role, pin_hash, store_id, proof_salt): the salt of the PIN's proof key, which a till
    needs to prove a void (pos_app.core.pins); None from a backend older than proofs."""
    where = "staff"
    data = _mapping(data, where)
    return (_text(data, "id", where), _text(data, "name", where), _text(data, "role", where),
            _text(data, "pin_hash", where), _optional_text(data, "store_id", where),
            _optional_text(data, "proof_salt", where))


def _parse_redemption(data: Any) -> Mapping[str, Any]:
    where = "feed redemption"
    data = _mapping(data, where)
    _text(data, "voucher_id", where)
    _time(data, "at", where)
    for name in ("jti", "kind", "code", "store_id", "till"):
        _optional_text(data, name, where)
    return data


def _parse_void(data: Any) -> Mapping[str, Any]:
    where = "feed void"
    data = _mapping(data, where)
    for name in ("id", "redemption_key", "reason"):
        _text(data, name, where)
    _optional_text(data, "staff_id", where)
    _time(data, "at", where)
    # Whether the backend saw the manager's proof: True, False, or None (made at the backend, or before proofs).
    if data.get("verified") is not None and not isinstance(data.get("verified"), bool):
        raise ValueError(f"{where}: verified must be true, false or null")
    return data


def _parse_revocation(data: Any) -> str:
    return _text(_mapping(data, "feed revocation"), "jti", "feed revocation")


def _parse_staff_removed(data: Any) -> str:
    """The id of a member this till must forget (disabled, or moved to another store): a type of its own,
    so a till that knows only `staff` skips it rather than keep the member."""
    return _text(_mapping(data, "feed staff_removed"), "id", "feed staff_removed")


def _parse_lan(data: Any) -> str:
    """The store whose LAN keys or roster changed: its tills fetch the catalog at once (the event says no more)."""
    return _text(_mapping(data, "feed lan"), "store_id", "feed lan")


MAX_KEYS = 32  # keys published at once: a rotation adds one, expiry takes them away


def _parse_keys(data: Any) -> list[tuple[str, str]]:
    """The keys tills verify with now, all of them (kid, pem): a signing-key rotation; at least one."""
    keys = parse_keys(_mapping(data, "feed keys").get("keys"), "feed keys")
    if not 1 <= len(keys) <= MAX_KEYS:
        raise ValueError(f"feed keys: 1 to {MAX_KEYS} keys")
    return keys


_EVENT_PARSERS = {
    "keys": _parse_keys,
    "redemption": _parse_redemption,
    "voucher": parse_voucher,
    "claim": _parse_claim,
    "printed_code": _parse_printed_code,
    "revocation": _parse_revocation,
    "staff": _parse_staff,
    "staff_removed": _parse_staff_removed,
    "void": _parse_void,
    "lan": _parse_lan,
}
