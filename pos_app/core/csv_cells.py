"""The one rule for a CSV cell a spreadsheet must not run: the backend's and the till's CSVs all use it.

A cell whose text begins with = + - @, a tab or a carriage return is read
by spreadsheets as a formula (=HYPERLINK(...) phones home, =cmd|... runs
one). OWASP's advice is followed: such a cell is prefixed with an
apostrophe, which spreadsheets show as text and do not keep. Every text
cell goes through it, not only the ones typed by people: ids, codes and
reasons arrive from tills that may be hostile.
"""

from __future__ import annotations

from typing import Any, Iterable

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """`value` as a spreadsheet will show it; numbers and None pass as they are (a negative number is a number)."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def safe_row(values: Iterable[Any]) -> list[Any]:
    return [safe_cell(value) for value in values]

