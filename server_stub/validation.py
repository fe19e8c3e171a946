"""Request bodies checked against a declared shape: types, required fields, no extras."""

from __future__ import annotations

from typing import Any

from .errors import Invalid

# A field spec: (types, required, max_length or None)
Spec = dict[str, tuple[tuple[type, ...], bool, int | None]]

STR = (str,)
INT = (int,)
NUM = (int, float)
BOOL = (bool,)
DICT = (dict,)
LIST = (list,)
NONE = (type(None),)
# Whole numbers beyond ±(2**53 - 1) lose precision as JSON numbers elsewhere and overflow SQLite's INTEGER.
MAX_SAFE_INT = 2**53 - 1


def check(body: Any, spec: Spec, where: str = "body") -> dict:
    """The body if it fits `spec`, else Invalid (400) naming the first problem."""
    if not isinstance(body, dict):
        raise Invalid("wrong_type", f"{where} must be a JSON object")
    unknown = sorted(set(body) - set(spec))
    if unknown:
        raise Invalid("unknown_field", f"{where} has unknown field {unknown[0][:64]!r}")
    for name, (types, required, max_len) in spec.items():
        if name not in body:
            if required:
                raise Invalid("missing_field", f"{where} needs the field {name!r}")
            continue
        value = body[name]
        if isinstance(value, bool) and bool not in types:
            raise Invalid("wrong_type", f"{where}.{name} has the wrong type")
        if not isinstance(value, types):
            raise Invalid("wrong_type", f"{where}.{name} has the wrong type")
        if isinstance(value, float) and value != value:  # NaN
            raise Invalid("invalid_value", f"{where}.{name} is not a number")
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_SAFE_INT:
            raise Invalid("invalid_value", f"{where}.{name} is out of range")
        if max_len is not None and isinstance(value, (str, list, dict)) and len(value) > max_len:
            raise Invalid("invalid_value", f"{where}.{name} is too long")
        if isinstance(value, str) and "\x00" in value:
            raise Invalid("invalid_value", f"{where}.{name} contains a NUL character")
    return body
