"""The validity lines of a voucher card, in Spanish and Guaraní.

A card tells its last day, and its first one too when the voucher starts
after the edition's month has begun: a reader of the March booklet must
not bring a coupon on the 2nd that only works from the 15th. Days are
written by babel in es_PY (Guaraní uses Paraguay's dates too).
"""

from __future__ import annotations

import datetime
from zoneinfo import ZoneInfo

from babel.dates import format_date

WORDS = {  # (starts after the 1st, has a last day) → lang → text
    (True, True): {"es": "Válido del {first} al {last}", "gn": "Oiko {first} guive {last} peve"},
    (True, False): {"es": "Válido desde el {first}", "gn": "Oiko {first} guive"},
    (False, True): {"es": "Válido hasta el {last}", "gn": "Oiko {last} peve"},
    (False, False): {"es": "Sin fecha de vencimiento", "gn": "Ndopáiri"},
}


def _day(instant: float, zone: ZoneInfo) -> str:
    return format_date(datetime.datetime.fromtimestamp(instant, zone).date(), "dd/MM/y", locale="es_PY")


def lines(valid_from: float | None, valid_until: float | None, month_start: float, timezone: str) -> dict[str, str]:
    """lang → the card's validity text; `valid_until` is exclusive, so its day is the one before."""
    zone = ZoneInfo(timezone)
    late = valid_from is not None and valid_from > month_start
    first = _day(valid_from, zone) if late else ""
    last = _day(valid_until - 1, zone) if valid_until is not None else ""
    return {lang: text.format(first=first, last=last) for lang, text in WORDS[(late, valid_until is not None)].items()}
