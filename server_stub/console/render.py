"""The console's pages drawn from Jinja2 templates: autoescaped, in the session's language, babel's formats.

One Environment per process (templates compiled once). Texts go through the
till's own catalogs (`pos_app.words.i18n`, domain `pika`), so the console and
the till say a thing in the same words; a template writes `_("… {name} …",
name=x)`, the project's `{}` fields, and the result is escaped like any value.
Money and dates follow the language's format locale (es_PY for Guaraní).
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from babel import dates as babel_dates
from jinja2 import Environment, PackageLoader, StrictUndefined

from pos_app.core.domain import LANGUAGES
from pos_app.words import i18n, labels, reasons

from .pages.static import version as static_version


def translate(message: str, **fields: object) -> str:
    text = i18n._(message)
    return text.format(**fields) if fields else text


def translate_n(singular: str, plural: str, n: int, **fields: object) -> str:
    return i18n.ngettext(singular, plural, n).format(n=i18n.format_number(n), **fields)


def _money(minor: int | None, currency: str = "PYG") -> str:
    return "—" if minor is None else i18n.format_money(int(minor), currency or "PYG")


def _when(at: float | None, timezone: str | None = None) -> str:
    if at is None:
        return "—"
    moment = dt.datetime.fromtimestamp(at, tz=ZoneInfo(timezone) if timezone else dt.timezone.utc)
    return babel_dates.format_datetime(moment, "short", locale=i18n.format_locale())


def _date(value: float | dt.date | None, timezone: str | None = None) -> str:
    return "—" if value is None else i18n.format_date(value, timezone)


def _input_date(at: float | None, timezone: str | None = None) -> str:
    """A moment as an <input type=date> holds it: YYYY-MM-DD in the store's (or UTC's) calendar."""
    if at is None:
        return ""
    return dt.datetime.fromtimestamp(at, tz=ZoneInfo(timezone) if timezone else dt.timezone.utc).date().isoformat()


ENV = Environment(
    loader=PackageLoader("server_stub.console", "templates"),
    autoescape=True,
    undefined=StrictUndefined,  # a misspelt name in a template fails its test, not silently blank
    trim_blocks=True,
    lstrip_blocks=True,
    auto_reload=False,
)
ENV.globals.update(
    _=translate, ngettext=translate_n, LANGUAGES=LANGUAGES, LANGUAGE_NAMES=i18n.LANGUAGE_NAMES,
    headline=reasons.headline, method_name=labels.method_name, kind_name=labels.kind_name,
    decided_name=labels.decided_name, static=static_version,
)
ENV.filters.update(
    money=_money, when=_when, date=_date, input_date=_input_date, number=i18n.format_number,
    share=i18n.format_share, discount=i18n.format_discount,
)


def render(template: str, language: str, **context: object) -> bytes:
    """The page in `language`, as UTF-8."""
    with i18n.using(language):
        return ENV.get_template(template).render(lang=language, **context).encode("utf-8")
