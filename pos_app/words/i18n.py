"""The till's languages: gettext catalogs (`translations/`, or the installed package's), and babel formatting.

Qt-free, so the window, the reports and the headless commands share one
`_()` and one way to write money and times. Texts are translated into
Guaraní, but numbers, money and dates in a Guaraní UI follow es_PY: babel's
`gn` locale inherits root number symbols, which are wrong for Paraguay.
"""

from __future__ import annotations

import datetime as _dt
import threading
from functools import lru_cache
from typing import Callable
from zoneinfo import ZoneInfo

from babel import dates as _dates
from babel import numbers as _numbers
from babel.support import NullTranslations, Translations

from .. import resources
from ..core.domain import LANGUAGES, Discount

DOMAIN = "pika"
DEFAULT_LANGUAGE = "es"
TRANSLATIONS_DIR = resources.directory("translations")

# The locale babel formats with, per UI language.
FORMAT_LOCALE = {"es": "es_PY", "gn": "es_PY", "en": "en", "pt": "pt_BR"}
# Names shown in the language switch: each language in its own words.
LANGUAGE_NAMES = {"es": "Español", "gn": "Avañe'ẽ", "en": "English", "pt": "Português"}

_state = threading.local()
_current = DEFAULT_LANGUAGE
_listeners: list[Callable[[str], None]] = []


@lru_cache(maxsize=None)
def catalog(language: str) -> NullTranslations:
    """The compiled catalog of a language; English is the source, so it may be empty."""
    if language not in LANGUAGES:
        raise ValueError(f"unknown language {language!r}")
    found = Translations.load(str(TRANSLATIONS_DIR), [language], DOMAIN)
    if not isinstance(found, Translations) and language != "en":
        raise FileNotFoundError(f"no compiled catalog for {language!r} in {TRANSLATIONS_DIR}: run `pybabel compile`")
    return found


def language() -> str:
    return getattr(_state, "language", None) or _current


def set_language(lang: str) -> None:
    """Switch the UI language for everyone; listeners re-read their texts."""
    global _current
    catalog(lang)  # fail before switching
    _current = lang
    for listener in list(_listeners):
        listener(lang)


def on_language_change(listener: Callable[[str], None]) -> None:
    _listeners.append(listener)


class using:
    """Within a `with`, this thread formats and translates in another language (reports, PDFs)."""

    def __init__(self, lang: str):
        catalog(lang)
        self.lang = lang

    def __enter__(self) -> "using":
        self.previous = getattr(_state, "language", None)
        _state.language = self.lang
        return self

    def __exit__(self, *exc: object) -> None:
        _state.language = self.previous


def _(message: str) -> str:
    return catalog(language()).ugettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return catalog(language()).ungettext(singular, plural, n)


def N_(message: str) -> str:
    """Marks a text for extraction where it is defined; it is translated where shown."""
    return message


def format_locale() -> str:
    return FORMAT_LOCALE[language()]


def format_money(minor_units: int, currency: str = "PYG") -> str:
    """An amount in the currency's minor units (PYG has none) for the UI's locale."""
    digits = _numbers.get_currency_precision(currency)
    return _numbers.format_currency(minor_units / (10 ** digits) if digits else minor_units,
                                    currency, locale=format_locale())


def format_discount(discount: Discount) -> str:
    if discount.kind == "percent":
        return _numbers.format_percent(discount.value / 100, locale=format_locale())
    return format_money(discount.value, discount.currency)


def format_number(value: int | float) -> str:
    return _numbers.format_decimal(value, locale=format_locale())


def format_share(value: float | None) -> str:
    """A share (0..1) as a percentage; a dash when there is nothing to divide."""
    if value is None:
        return "—"
    return _numbers.format_percent(value, "#,##0.#%", locale=format_locale())


def _local(at: float, timezone: str | None) -> _dt.datetime:
    zone = ZoneInfo(timezone) if timezone else None
    return _dt.datetime.fromtimestamp(at, tz=zone or _dt.timezone.utc)


def format_time(at: float, timezone: str | None = None) -> str:
    return _dates.format_time(_local(at, timezone), "short", locale=format_locale())


def format_date(at: float | _dt.date, timezone: str | None = None) -> str:
    day = at if isinstance(at, _dt.date) else _local(at, timezone)
    return _dates.format_date(day, "medium", locale=format_locale())


def format_when(at: float, timezone: str | None = None, now: float | None = None) -> str:
    """A moment as a cashier reads it: the time alone if it was today, else date and time."""
    moment = _local(at, timezone)
    if now is not None and _local(now, timezone).date() == moment.date():
        return _dates.format_time(moment, "short", locale=format_locale())
    return _dates.format_datetime(moment, "short", locale=format_locale())
