"""The day report's values as they read in a table cell: moments on the report's clock, names of staff and
vouchers, money, discounts, shares and counts — each one safe against a missing or odd value in the JSON
(a dash, or the value cleaned), so one bad field never stops the report from printing.

Apart from `day_report.py` so that the sections there read as what they show, not how each value is written.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from zoneinfo import ZoneInfo

from babel import dates as babel_dates

from ..core.domain import Discount
from ..words.i18n import (
    _,
    format_discount,
    format_locale,
    format_money,
    format_number,
    format_share,
    format_time,
    format_when,
)
from .blocks import clean


class Context:
    """What every section needs: how to write a moment, and names of staff and vouchers."""

    def __init__(self, report: dict):
        # A retailer's report over stores in several zones has none: moments are then told in UTC, except
        # items' own local times (each store's wall clock).
        self.tz = report.get("timezone") or "UTC"
        try:
            ZoneInfo(self.tz)
        except (KeyError, ValueError, TypeError):  # not a zone this machine knows: say UTC rather than fail
            self.tz = "UTC"
        self.utc_note = "" if report.get("timezone") else " UTC"
        self.single_day = bool(report.get("date")) or report.get("from") == report.get("to")
        self.staff = {e.get("staff_id"): e.get("name") for e in report.get("by_cashier") or [] if e.get("staff_id")}
        by_voucher = report.get("by_voucher") or {}
        self.titles = {e.get("voucher_id"): e.get("title") for kind in ("personal", "printed")
                       for e in by_voucher.get(kind) or []}

    def when(self, at: object) -> str:
        """A moment of the report: the time alone on a one-day report, else date and time."""
        if isinstance(at, str):
            try:
                at = datetime.fromisoformat(at).timestamp()
            except ValueError:
                return clean(at, 40)
        if not isinstance(at, (int, float)) or isinstance(at, bool) or not math.isfinite(at):
            return "—"
        try:
            return (format_time(at, self.tz) if self.single_day else format_when(at, self.tz)) + self.utc_note
        except (OverflowError, OSError, ValueError):
            return "—"

    def item_when(self, item: dict) -> str:
        """When a listed redemption happened, on its store's clock."""
        local = item.get("local_time")
        if isinstance(local, str):
            try:
                moment = datetime.fromisoformat(local)
            except ValueError:
                moment = None
            if moment is not None and moment.tzinfo is not None:
                style = babel_dates.format_time if self.single_day else babel_dates.format_datetime
                return style(moment, "short", locale=format_locale())
        return self.when(item.get("at"))

    def person(self, staff_id: object, name: object = None) -> str:
        if name:
            return clean(name)
        if staff_id:
            return clean(self.staff.get(staff_id) or staff_id)
        return _("No cashier logged in")

    def voucher(self, voucher_id: object, title: object = None) -> str:
        return clean(title or self.titles.get(voucher_id) or voucher_id or "—")


def code(item: dict) -> str:
    if item.get("code"):
        return clean(item["code"], 40)
    jti = clean(item.get("jti"), 40)
    return jti[:8] + "…" if len(jti) > 9 else jti or "—"


def money(amount: object, currency: str) -> str:
    try:
        return format_money(int(amount or 0), currency)
    except (ValueError, TypeError, KeyError, AttributeError):
        return clean(amount, 30)


def discount(data: object) -> str:
    if not isinstance(data, dict):
        return "—"
    try:
        return format_discount(Discount(data["kind"], int(data["value"]), data.get("currency") or "PYG"))
    except (KeyError, ValueError, TypeError, AttributeError):
        return "—"


def share(value: object) -> str:
    return format_share(value if isinstance(value, (int, float)) else None)


def count(value: object) -> str:
    return format_number(value if isinstance(value, (int, float)) and not isinstance(value, bool) else 0)


def codes(used: object) -> str:
    """A printed voucher's codes, the most used first: "KAAY × 5, MBA × 2"."""
    if not isinstance(used, dict) or not used:
        return "—"
    ranked = sorted(used.items(), key=lambda item: -item[1] if isinstance(item[1], (int, float)) else 0)
    return ", ".join(f"{clean(text, 24) or '—'} × {count(n)}" for text, n in ranked[:6])


def day(text: object) -> str:
    try:
        return babel_dates.format_date(date.fromisoformat(str(text)), "medium", locale=format_locale())
    except ValueError:
        return clean(text, 12) or "—"
