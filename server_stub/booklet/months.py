"""Month names for the booklet's pages, in Spanish (babel, es_PY) and Guaraní.

babel's Guaraní data has no month names of its own, so the Guaraní ones are
written here: the usual Jasy- forms (jasy = moon, month).
"""

from __future__ import annotations

import datetime

from babel.dates import format_date

GN_MONTHS = ("Jasyteĩ", "Jasykõi", "Jasyapy", "Jasyrundy", "Jasypo", "Jasypoteĩ", "Jasypokõi", "Jasypoapy",
             "Jasyporundy", "Jasypa", "Jasypateĩ", "Jasypakõi")


def month_es(month: str) -> str:
    year, number = map(int, month.split("-"))
    return format_date(datetime.date(year, number, 1), "LLLL 'de' y", locale="es_PY")


def month_gn(month: str) -> str:
    year, number = map(int, month.split("-"))
    return f"{GN_MONTHS[number - 1]} {year}"
