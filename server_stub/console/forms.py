"""A console form's fields read and checked: each wrong field gets its own message, and nothing is done.

Bodies are `application/x-www-form-urlencoded` only, at most 64 KB, strict
UTF-8. Every text is NFC-normalised and trimmed; control and format
characters (NUL, bidirectional overrides that make a name read backwards on
a till, private-use and unassigned code points) are refused, not silently
dropped, so what is stored is what the person saw. `done()` raises
`FormInvalid` with every field's message when any failed; the page shows them
beside the fields, with what was typed.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from urllib.parse import parse_qsl

from pos_app.words.i18n import N_

from ..errors import Invalid
from ..http import ApiError, Request

MAX_FORM_BYTES = 65_536
MAX_FIELDS = 200
_BIDI_CONTROLS = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")


class FormInvalid(Invalid):
    """Some fields are wrong: `fields` maps each to (its untranslated message, the message's fields)."""

    def __init__(self, fields: dict[str, tuple[str, dict]]):
        super().__init__("invalid_form", "some fields need correcting", {"fields": sorted(fields)})
        self.fields = fields


class Form:
    def __init__(self, pairs: list[tuple[str, str]]):
        self.values: dict[str, str] = {}
        self.lists: dict[str, list[str]] = {}
        for key, value in pairs:
            self.lists.setdefault(key, []).append(value)
            self.values.setdefault(key, value)  # the first of a repeated field, never a later one slipped in
        self.errors: dict[str, tuple[str, dict]] = {}

    def raw(self, name: str) -> str:
        return self.values.get(name, "")

    def _fail(self, name: str, message: str, **fields: object) -> None:
        self.errors.setdefault(name, (message, fields))

    def text(self, name: str, max_len: int, *, required: bool = True, multiline: bool = False) -> str | None:
        value = unicodedata.normalize("NFC", self.values.get(name, "")).strip()
        if multiline:
            value = value.replace("\r\n", "\n")
        if not value:
            if required:
                self._fail(name, N_("This field is required."))
            return None
        if len(value) > max_len:
            self._fail(name, N_("Too long: at most {max} characters."), max=max_len)
            return None
        if not _clean(value, multiline):
            self._fail(name, N_("Holds characters that cannot be shown (control or direction marks)."))
            return None
        return value

    def integer(self, name: str, low: int, high: int, *, required: bool = True) -> int | None:
        text = self.values.get(name, "").strip().replace("\u202f", "").replace("\xa0", "")
        if not text:
            if required:
                self._fail(name, N_("This field is required."))
            return None
        if not (text.isascii() and text.lstrip("-").isdigit()) or len(text) > 12:
            self._fail(name, N_("A whole number, please."))
            return None
        value = int(text)
        if not low <= value <= high:
            self._fail(name, N_("Between {low} and {high}."), low=low, high=high)
            return None
        return value

    def choice(self, name: str, options, *, required: bool = True) -> str | None:
        value = self.values.get(name, "")
        if not value and not required:
            return None
        if value not in options:
            self._fail(name, N_("Choose one of the options."))
            return None
        return value

    def flag(self, name: str) -> bool:
        return self.values.get(name) in ("1", "on", "true")

    def date(self, name: str, *, required: bool = True) -> dt.date | None:
        """An <input type=date>'s value, YYYY-MM-DD (a date, never epoch seconds)."""
        text = self.values.get(name, "").strip()
        if not text:
            if required:
                self._fail(name, N_("This field is required."))
            return None
        try:
            if len(text) != 10 or not text.isascii():
                raise ValueError(text)
            day = dt.date.fromisoformat(text)
        except ValueError:
            self._fail(name, N_("A date, please (year-month-day)."))
            return None
        if not 2000 <= day.year <= 2100:
            self._fail(name, N_("A date between 2000 and 2100."))
            return None
        return day

    def fail(self, name: str, message: str, **fields: object) -> None:
        """A field wrong for a reason of the page's own (a range that ends before it starts): `message`
        marked with N_ where written, translated where shown."""
        self._fail(name, message, **fields)

    def done(self) -> None:
        if self.errors:
            raise FormInvalid(dict(self.errors))


def _clean(value: str, multiline: bool) -> bool:
    for char in value:
        if char in _BIDI_CONTROLS:
            return False
        category = unicodedata.category(char)
        if category in ("Cc",) and not (multiline and char in "\n\t"):
            return False
        if category in ("Cs", "Co", "Cn"):
            return False
    return True


def read_form(request: Request) -> Form:
    """The POST body as a Form: 413 past 64 KB, 415 for another media type, 400 for bytes that are no UTF-8."""
    try:
        length = int(request.environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise ApiError(400, "invalid_value", "Content-Length is not a number") from None
    if length > MAX_FORM_BYTES:
        raise ApiError(413, "payload_too_large", f"the form is over {MAX_FORM_BYTES} bytes")
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if length and ctype != "application/x-www-form-urlencoded":
        raise ApiError(415, "unsupported_media_type", "send the form as application/x-www-form-urlencoded")
    raw = request.environ["wsgi.input"].read(length) if length > 0 else b""
    try:
        pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=False,
                          encoding="utf-8", errors="strict", max_num_fields=MAX_FIELDS)
    except (UnicodeDecodeError, ValueError):
        raise Invalid("invalid_form", "the form is not valid UTF-8") from None
    return Form(pairs)
