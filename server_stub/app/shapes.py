"""What requests must look like: the bounds of ids and names, a sync entry's fields, query numbers."""

from __future__ import annotations

from pos_app.core.domain import IDEMPOTENCY_KEY, Method

from ..errors import Invalid
from ..http import Request
from ..validation import BOOL, INT, NONE, NUM, STR


API = "/api/v1"
_ID = 64  # longest id or name field we take
_NAME = 200
VALID_METHODS = Method.ALL


def _query_int(request: Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise Invalid("invalid_value", f"{name} must be a whole number")
    return max(lo, min(hi, int(raw)))


def _optional_json(request: Request) -> dict:
    """A body that may be left out (no Content-Length, or 0): {} then; otherwise the JSON as `json()` reads it."""
    if request.environ.get("CONTENT_LENGTH") not in (None, "", "0") \
            or request.environ.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked":
        return request.json()
    return {}


_TILL_REPORT = {"app_version": (STR, False, 32), "outbox": (INT, False, None),
                "outbox_oldest_at": (NUM + NONE, False, None),
                # entries the backend refused for good, set aside at the till (reconcile's parked_old)
                "parked": (INT, False, None), "parked_oldest_at": (NUM + NONE, False, None)}
# A sync Entry is a redemption (no `type`, as tills have always sent) or a
# manager's void (`type: "void"`); one shape declares both (openapi.json).
_VOID_REASON = 1000  # on the wire; the rule (pos_app.core.voids) keeps 200 characters after stripping
_SYNC_ENTRY = {
    "type": (STR, False, 16), "key": (STR, True, 64), "at": (NUM, True, None), "accepted": (BOOL, False, None),
    "reason": (STR + NONE, False, 32), "kind": (STR + NONE, False, 16),
    "voucher_id": (STR + NONE, False, _ID), "jti": (STR + NONE, False, 128),
    "code": (STR + NONE, False, 64), "method": (STR, False, 16), "staff_id": (STR + NONE, False, _ID),
    "decided": (STR, False, 8), "input": (STR + NONE, False, 8192), "redemption_key": (STR, False, 64), "void_reason": (STR, False, _VOID_REASON),
    "staff_proof": (STR, False, 64),  # a void's proof of its manager (pos_app.core.pins.void_proof): 64 hex
}
_REDEMPTION_ONLY = ("accepted", "reason", "kind", "voucher_id", "jti", "code", "method", "decided", "input")
_VOID_REQUIRED = ("redemption_key", "void_reason", "staff_id")


def _entry_fields(entry: dict, i: int) -> str:
    """The entry's type, once its fields fit that type (400 missing_field / unknown_field otherwise)."""
    kind = entry.get("type", "redemption")
    if kind == "void":
        required, refused = _VOID_REQUIRED, _REDEMPTION_ONLY
    elif kind == "redemption":
        required, refused = ("accepted", "method", "decided"), ("redemption_key", "void_reason", "staff_proof")
    else:
        raise Invalid("invalid_value", f"entries[{i}].type is redemption or void")
    for name in required:
        if name not in entry:
            raise Invalid("missing_field", f"entries[{i}] ({kind}) needs the field {name!r}")
    for name in refused:
        if name in entry:
            raise Invalid("unknown_field", f"entries[{i}] ({kind}) has the field {name!r}")
    if kind == "void" and (not isinstance(entry["staff_id"], str) or not IDEMPOTENCY_KEY.match(entry["redemption_key"])):
        raise Invalid("invalid_value", f"entries[{i}]: a void names its staff_id and a redemption_key")
    return kind
