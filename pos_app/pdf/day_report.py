"""The manager's day report on paper: one or two A4 pages from the report's JSON, in the language asked.

Made from the very JSON the API and the CLI give (`pos_app.core.report.build`), so paper and screen agree.
Long tables end with "and N more": the report never runs past two pages (the CSV holds every line). Texts
people typed (titles, names, till names) are cleaned of control characters and clipped to their cell.
"""

from __future__ import annotations

import io
import math
import time
import unicodedata
from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import date, datetime
from zoneinfo import ZoneInfo

from babel import dates as babel_dates
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas

from ..words import reasons
from ..core.domain import Discount, Method
from ..words.i18n import (
    _,
    format_discount,
    format_locale,
    format_money,
    format_number,
    format_share,
    format_time,
    format_when,
    using,
)
from . import fonts
from .chart import bar_chart
from .fonts import BOLD, REGULAR

PAGE_W, PAGE_H = A4
MARGIN = 14 * mm
WIDTH = PAGE_W - 2 * MARGIN
FOOTER_Y = MARGIN - 6
BOTTOM = MARGIN + 6  # lowest a block may reach: the footer sits under it
MAX_PAGES = 2
GAP = 10  # between blocks, and between columns side by side
BODY, ROW, TITLE = 7.5, 10.6, 9.5
INK = (0.12, 0.14, 0.17)
MUTED = (0.42, 0.45, 0.50)
BRAND = (0.04, 0.33, 0.39)
RULE = (0.80, 0.83, 0.86)
STRIPE = (0.955, 0.965, 0.975)
TILE = (0.94, 0.96, 0.97)
ALERT = (0.72, 0.09, 0.09)
ALERT_BG = (0.99, 0.89, 0.88)

# Caps per table; the last page may cut further so the report always fits.
LIMITS = {"stores": 12, "personal": 10, "printed": 8, "cashiers": 10, "tills": 10, "fraud": 8, "voids": 8,
          "conflicts": 8}
_DROPPED = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}  # controls, bidi overrides, lone surrogates, unassigned


def clean(value: object, limit: int = 160) -> str:
    """A typed text made printable: no control or format characters, one line, at most `limit` characters."""
    text = value if isinstance(value, str) else "" if value is None else str(value)
    text = text[:limit * 4]  # bound the work a 10,000-character title can ask for
    text = "".join(" " if unicodedata.category(ch) in _DROPPED else ch for ch in text)
    return " ".join(text.split())[:limit]


def clip(text: str, font: str, size: float, width: float) -> str:
    """One line no wider than `width`, cut with an ellipsis if need be."""
    if fonts.width(text, font, size) <= width:
        return text
    lo, hi = 0, len(text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if fonts.width(text[:mid].rstrip() + "…", font, size) <= width:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo].rstrip() + "…"


def _text(c, x: float, y: float, text: str, font: str, size: float, color=INK, align: str = "left",
          width: float | None = None) -> None:
    c.setFillColorRGB(*color)
    fonts.draw(c, x, y, clip(text, font, size, width) if width is not None else text, font, size, align)


# --- blocks: things of a known height, placed top to bottom ----------------------------------


class Block(ABC):
    """A piece of a page: knows its height at a width, draws itself under a top edge, and may give a
    shorter version of itself (fewer table rows) when room runs out."""

    @abstractmethod
    def height(self, width: float) -> float: ...

    def min_height(self, width: float) -> float:
        return self.height(width)

    def shrink(self, width: float, room: float) -> Block | None:
        return self if self.height(width) <= room else None

    @abstractmethod
    def draw(self, c, x: float, top: float, width: float) -> None: ...


class Column:
    def __init__(self, title: str, weight: float, align: str = "left"):
        self.title, self.weight, self.align = title, weight, align


class Table(Block):
    """A titled table; rows past `limit` (and past the room left) become one "and N more" line."""

    def __init__(self, title: str, columns: Sequence[Column], rows: Sequence[Sequence[str]], *,
                 total: int | None = None, limit: int = 1000, flagged: Sequence[bool] = (), empty: str = "",
                 note: str = ""):
        self.title, self.columns = title, list(columns)
        self.total = len(rows) if total is None else total
        self.rows = list(rows)[:limit]
        self.flagged = list(flagged)[:len(self.rows)]
        self.empty = empty or _("None.")
        self.note = note

    def _more(self) -> int:
        return self.total - len(self.rows)

    def height(self, width: float) -> float:
        if not self.rows:
            return TITLE + 6 + ROW * (1 + bool(self._more()))
        return TITLE + 6 + ROW * (1 + len(self.rows) + bool(self._more()) + bool(self.note))

    def min_height(self, width: float) -> float:
        return TITLE + 6 + ROW * (min(len(self.rows), 1) + 2 + bool(self.note))

    def shrink(self, width: float, room: float) -> Table | None:
        if self.height(width) <= room:
            return self
        fixed = TITLE + 6 + ROW * (1 + 1 + bool(self.note))  # title, header, the "more" line, the note
        keep = int((room - fixed) // ROW)
        if keep < 1 and self.rows:
            return None
        cut = Table(self.title, self.columns, self.rows[:max(keep, 0)], total=self.total,
                    flagged=self.flagged, empty=self.empty, note=self.note)
        return cut if cut.height(width) <= room else None

    def draw(self, c, x: float, top: float, width: float) -> None:
        _text(c, x, top - TITLE, self.title, BOLD, TITLE, BRAND, width=width)
        y = top - TITLE - 6
        if not self.rows:
            _text(c, x, y - ROW + 3, self.empty, REGULAR, BODY, MUTED, width=width)
            if self._more():
                _text(c, x, y - 2 * ROW + 3, self._more_text(), REGULAR, BODY, MUTED, width=width)
            return
        total_weight = sum(col.weight for col in self.columns)
        edges, left = [], x
        for col in self.columns:
            w = width * col.weight / total_weight
            edges.append((left, w))
            left += w
        pad = 2.5
        for col, (cx, cw) in zip(self.columns, edges):
            size = BODY - 1
            while size > 5.5 and fonts.width(col.title, BOLD, size) > cw - 2 * pad:  # a long word in Guaraní
                size -= 0.25
            self._cell(c, cx, cw, pad, y - ROW + 3, col.title, BOLD, size, MUTED, col.align)
        y -= ROW
        c.setStrokeColorRGB(*RULE)
        c.setLineWidth(0.6)
        c.line(x, y + 0.5, x + width, y + 0.5)
        for i, row in enumerate(self.rows):
            flagged = i < len(self.flagged) and self.flagged[i]
            if flagged or i % 2:
                c.setFillColorRGB(*(ALERT_BG if flagged else STRIPE))
                c.rect(x, y - ROW, width, ROW, stroke=0, fill=1)
            for j, (col, (cx, cw)) in enumerate(zip(self.columns, edges)):
                text = row[j] if j < len(row) else ""
                font = BOLD if flagged and j == 0 else REGULAR
                self._cell(c, cx, cw, pad, y - ROW + 3, text, font, BODY, ALERT if flagged else INK, col.align)
            y -= ROW
        if self._more():
            _text(c, x + pad, y - ROW + 3, self._more_text(), REGULAR, BODY, MUTED, width=width - 2 * pad)
            y -= ROW
        if self.note:
            _text(c, x + pad, y - ROW + 3, self.note, REGULAR, BODY - 0.5, MUTED, width=width - 2 * pad)

    def _more_text(self) -> str:
        return _("… and {n} more").format(n=format_number(self._more()))

    @staticmethod
    def _cell(c, cx, cw, pad, y, text, font, size, color, align) -> None:
        inner = max(1.0, cw - 2 * pad)
        text = clip(text, font, size, inner)
        ax = cx + pad if align == "left" else cx + cw - pad if align == "right" else cx + cw / 2
        _text(c, ax, y, text, font, size, color, align)


class Side(Block):
    """Blocks side by side, each in its share of the width; shorter ones shrink to the room together."""

    def __init__(self, *parts: tuple[Block, float]):
        self.parts = list(parts)

    def _widths(self, width: float) -> list[float]:
        total = sum(weight for _block, weight in self.parts)
        usable = width - GAP * (len(self.parts) - 1)
        return [usable * weight / total for _block, weight in self.parts]

    def height(self, width: float) -> float:
        return max(block.height(w) for (block, _weight), w in zip(self.parts, self._widths(width)))

    def min_height(self, width: float) -> float:
        return max(block.min_height(w) for (block, _weight), w in zip(self.parts, self._widths(width)))

    def shrink(self, width: float, room: float) -> Side | None:
        parts = []
        for (block, weight), w in zip(self.parts, self._widths(width)):
            fitted = block.shrink(w, room)
            if fitted is None:
                return None
            parts.append((fitted, weight))
        return Side(*parts)

    def draw(self, c, x: float, top: float, width: float) -> None:
        for (block, _weight), w in zip(self.parts, self._widths(width)):
            block.draw(c, x, top, w)
            x += w + GAP


class Chart(Block):
    def __init__(self, title: str, values: Sequence[int], labels: Sequence[str], *, height: float = 128,
                 empty: str = ""):
        self.title, self.values, self.labels, self.h, self.empty = title, list(values), list(labels), height, empty

    def height(self, width: float) -> float:
        return TITLE + 6 + self.h

    def draw(self, c, x: float, top: float, width: float) -> None:
        _text(c, x, top - TITLE, self.title, BOLD, TITLE, BRAND, width=width)
        # About 16 pt per label, so labels never run into each other.
        every = max(1, math.ceil(len(self.values) * 16 / max(width - 30, 1)))
        bar_chart(c, x, top - TITLE - 6 - self.h, width, self.h, self.values, self.labels, label_every=every,
                  number=format_number, empty_text=self.empty)


class Tiles(Block):
    """The headline figures, four to a row: a label, a big number, a small note."""

    ROW_H, PER_ROW = 40, 4

    def __init__(self, tiles: Sequence[tuple[str, str, str, bool]], notes: Sequence[str] = ()):
        self.tiles, self.notes = list(tiles), [n for n in notes if n]

    def height(self, width: float) -> float:
        rows = math.ceil(len(self.tiles) / self.PER_ROW)
        return rows * self.ROW_H + (rows - 1) * 6 + len(self.notes) * ROW + (3 if self.notes else 0)

    def draw(self, c, x: float, top: float, width: float) -> None:
        gap = 6
        tile_w = (width - gap * (self.PER_ROW - 1)) / self.PER_ROW
        for i, (label, value, note, alert) in enumerate(self.tiles):
            row, col = divmod(i, self.PER_ROW)
            tx, ty = x + col * (tile_w + gap), top - row * (self.ROW_H + 6) - self.ROW_H
            c.setFillColorRGB(*(ALERT_BG if alert else TILE))
            c.roundRect(tx, ty, tile_w, self.ROW_H, 3, stroke=0, fill=1)
            inner = tile_w - 12
            _text(c, tx + 6, ty + self.ROW_H - 10, label, REGULAR, 7, ALERT if alert else MUTED, width=inner)
            size = 14.0
            while size > 8 and fonts.width(value, BOLD, size) > inner:
                size -= 0.5
            _text(c, tx + 6, ty + 13, value, BOLD, size, ALERT if alert else INK, width=inner)
            if note:
                _text(c, tx + 6, ty + 4, note, REGULAR, 6.2, ALERT if alert else MUTED, width=inner)
        y = top - self.height(width) + len(self.notes) * ROW
        for note in self.notes:
            _text(c, x, y - ROW + 3, note, REGULAR, BODY - 0.3, MUTED, width=width)
            y -= ROW


class Header(Block):
    def __init__(self, title: str, store: str, lines: Sequence[str]):
        self.title, self.store, self.lines = title, store, list(lines)

    def height(self, width: float) -> float:
        return 44 + ROW * len(self.lines) + 4

    def draw(self, c, x: float, top: float, width: float) -> None:
        brand = _("Pika Till")
        brand_w = fonts.width(brand, BOLD, 9) + 8
        _text(c, x, top - 10, self.title.upper(), BOLD, 8.5, BRAND, width=width - brand_w)
        _text(c, x + width, top - 10, brand, BOLD, 9, MUTED, align="right")
        _text(c, x, top - 32, self.store, BOLD, 17, INK, width=width)
        y = top - 44
        for line in self.lines:
            _text(c, x, y - ROW + 2, line, REGULAR, BODY + 0.5, MUTED, width=width)
            y -= ROW
        c.setStrokeColorRGB(*BRAND)
        c.setLineWidth(1.2)
        c.line(x, y - 2, x + width, y - 2)


# --- the report's contents --------------------------------------------------------------------


class _Context:
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


def _code(item: dict) -> str:
    if item.get("code"):
        return clean(item["code"], 40)
    jti = clean(item.get("jti"), 40)
    return jti[:8] + "…" if len(jti) > 9 else jti or "—"


def _money(amount: object, currency: str) -> str:
    try:
        return format_money(int(amount or 0), currency)
    except (ValueError, TypeError, KeyError, AttributeError):
        return clean(amount, 30)


def _discount(data: object) -> str:
    if not isinstance(data, dict):
        return "—"
    try:
        return format_discount(Discount(data["kind"], int(data["value"]), data.get("currency") or "PYG"))
    except (KeyError, ValueError, TypeError, AttributeError):
        return "—"


def _share(value: object) -> str:
    return format_share(value if isinstance(value, (int, float)) else None)


def _n(value: object) -> str:
    return format_number(value if isinstance(value, (int, float)) and not isinstance(value, bool) else 0)


def _method_names() -> dict[str, str]:
    return {Method.CAMERA: _("Camera QR"), Method.SCANNER: _("Barcode scanner"), Method.TYPED: _("Typed code"),
            Method.PRINTED: _("Printed code"), Method.IMAGE: _("Picture of a code")}


def _period(report: dict) -> tuple[str, str]:
    """The report's title and its days in words."""
    locale = format_locale()
    try:
        first = date.fromisoformat(report.get("from") or report.get("date") or "")
        last = date.fromisoformat(report.get("to") or report.get("from") or "")
    except (TypeError, ValueError):
        return _("Day report"), "—"
    if first == last:
        return _("Day report"), babel_dates.format_date(first, "full", locale=locale)
    days = (last - first).days + 1
    return _("Report of several days"), _("{first} to {last} ({days} days)").format(
        first=babel_dates.format_date(first, "medium", locale=locale),
        last=babel_dates.format_date(last, "medium", locale=locale), days=format_number(days))


def _where(scope: dict) -> str:
    if scope.get("till"):
        return _("Till: {till}").format(till=clean(scope["till"], 60))
    if "store_id" in scope and not scope.get("store_id") and scope.get("retailer_id"):
        return _("All stores and tills of the retailer")
    return _("All tills of the store")


def _generated(at: float, tz: str) -> str:
    moment = datetime.fromtimestamp(at, ZoneInfo(tz))
    return babel_dates.format_datetime(moment, "medium", locale=format_locale())


def _blocks(report: dict, generated_at: float) -> tuple[list[Block], str]:
    """The report's pieces in reading order, and the line under every page."""
    ctx = _Context(report)
    header, tiles, running = _headline(report, ctx, generated_at)
    by_method, by_decided, key_figures = _how(report)
    personal, printed = _vouchers(report, ctx)
    stores, cashiers, tills = _where_and_who(report, ctx)
    refusals, fraud, voids, conflicts = _trouble(report, ctx)
    return [
        header, tiles, _charts(report, ctx),
        *([stores] if stores is not None else []),  # a retailer's report: its stores first
        Side((by_method, 1), (key_figures, 1)),
        personal, printed,
        Side((cashiers, 1), (tills, 1)),
        Side((refusals, 1), (by_decided, 1)),
        fraud, voids, conflicts,
    ], running


def _headline(report: dict, ctx: _Context, generated_at: float) -> tuple[Header, Tiles, str]:
    scope = report.get("scope") or {}
    title, period = _period(report)
    store = clean(scope.get("store_name") or scope.get("retailer_name"), 120) or "—"
    try:
        generated = _generated(generated_at, ctx.tz)
    except (ValueError, KeyError, OSError):
        generated = format_when(generated_at)
    header = Header(title, store, [
        f"{period}  ·  {_where(scope)}",
        _("Time zone: {tz}  ·  Generated {when}").format(
            tz=clean(report["timezone"], 60) if report.get("timezone") else _("each store's own"), when=generated),
    ])

    kpis = report.get("kpis") or {}
    conflicts = report.get("conflicts") or {}
    flagged = (report.get("fraud") or {}).get("flagged") or 0
    notes = []
    if report.get("discount_unpriced"):
        notes.append(_("Not in the discount total: {n} redemptions of percentage vouchers (the amount depends on "
                       "the sale).").format(n=_n(report["discount_unpriced"])))
    others = report.get("discount_other_currencies") or {}
    if others:
        notes.append(_("Discounts in other currencies: {amounts}").format(
            amounts=", ".join(_money(a, c) for c, a in list(others.items())[:6])))
    currency = (report.get("discount_total") or {}).get("currency") or "PYG"
    tiles = Tiles([
        (_("Redemptions"), _n(report.get("count")), "", False),
        (_("Discount given"), _money((report.get("discount_total") or {}).get("amount"), currency), "", False),
        (_("Attempts"), _n(report.get("attempts")), _("scans and typed codes"), False),
        (_("Refusals"), _n((report.get("refused") or {}).get("count")),
         _("{share} of attempts").format(share=_share(kpis.get("refusal_rate"))), False),
        (_("Decided offline"), _share(kpis.get("offline_share")), _("of attempts"), False),
        (_("Conflicts"), _n(conflicts.get("count")),
         _("{share} of accepted").format(share=_share(kpis.get("conflict_rate"))), bool(conflicts.get("count"))),
        (_("Voided"), _n((report.get("voids") or {}).get("count")), "", False),
        (_("Fraud signals"), _n(flagged), _("flagged") if flagged else _("none flagged"), bool(flagged)),
    ], notes)

    return header, tiles, f"{store}  ·  {period}"


def _charts(report: dict, ctx: _Context) -> Block:
    hours = [int(v) if isinstance(v, (int, float)) else 0 for v in (report.get("by_hour") or [0] * 24)][:24]
    no_data = _("No redemptions")
    if ctx.single_day:
        charts: Block = Chart(_("Redemptions by hour"), hours, [str(h) for h in range(len(hours))], empty=no_data)
    else:
        days = report.get("by_day") or []
        day_values = [int(d.get("count") or 0) for d in days]
        day_labels = [str(d.get("date") or "")[8:10].lstrip("0") for d in days]
        charts = Side((Chart(_("Redemptions by hour, days summed"), hours,
                             [str(h) for h in range(len(hours))], empty=no_data), 1),
                      (Chart(_("Redemptions by day"), day_values, day_labels, empty=no_data), 1))

    return charts


def _how(report: dict) -> tuple[Table, Table, Table]:
    """By method, online and offline, and the key figures."""
    kpis = report.get("kpis") or {}
    count = report.get("count") or 0
    methods = report.get("by_method") or {}
    names = _method_names()
    method_rows = [(names.get(m, clean(m, 30)), _n(n), _share(round(n / count, 4) if count else None))
                   for m, n in methods.items() if isinstance(n, (int, float))]
    by_method = Table(_("By method"), [Column(_("Method"), 3), Column(_("Redemptions"), 1.6, "right"),
                                       Column(_("Share"), 1.2, "right")], method_rows)
    decided = report.get("decided") or {}
    decided_rows = [(_("Online: the backend decided"), _n(decided.get("online")),
                     _share(round((decided.get("online") or 0) / count, 4) if count else None)),
                    (_("Offline: the till decided alone"), _n(decided.get("offline")),
                     _share(round((decided.get("offline") or 0) / count, 4) if count else None))]
    by_decided = Table(_("Online and offline"), [Column(_("Decided"), 3), Column(_("Redemptions"), 1.6, "right"),
                                                 Column(_("Share"), 1.2, "right")], decided_rows)

    def ms(value: object) -> str:
        return _("{ms} ms").format(ms=format_number(value)) if isinstance(value, (int, float)) else "—"

    kpi_rows = [
        (_("Scan to verdict, median"), ms(kpis.get("processing_ms_p50"))),
        (_("Scan to verdict, 95 % within"), ms(kpis.get("processing_ms_p95"))),
        (_("Redeemed with the camera"), _share(kpis.get("camera_share"))),
        (_("Redeemed with a typed code"), _share(kpis.get("typed_share"))),
        (_("Attempts decided offline"), _share(kpis.get("offline_share"))),
        (_("Successful syncs"), _share(kpis.get("sync_success_rate"))),
        (_("Conflict rate"), _share(kpis.get("conflict_rate"))),
        (_("Refusal rate"), _share(kpis.get("refusal_rate"))),
    ]
    key_figures = Table(_("Key figures"), [Column(_("Figure"), 3.2), Column(_("Value"), 1.4, "right")], kpi_rows,
                        note=_("— : nothing measured"))

    return by_method, by_decided, key_figures


def _vouchers(report: dict, ctx: _Context) -> tuple[Table, Table]:
    currency = (report.get("discount_total") or {}).get("currency") or "PYG"
    by_voucher = report.get("by_voucher") or {}
    personal = by_voucher.get("personal") or []
    personal_table = Table(
        _("Personal vouchers"),
        [Column(_("Voucher"), 6), Column(_("Discount"), 1.6, "right"), Column(_("Redemptions"), 1.5, "right"),
         Column(_("Discount total"), 1.9, "right")],
        [(ctx.voucher(e.get("voucher_id"), e.get("title")), _discount(e.get("discount")), _n(e.get("count")),
          _money(e.get("discount_total"), currency)) for e in personal[:LIMITS["personal"]]],
        total=len(personal))
    printed = by_voucher.get("printed") or []
    printed_table = Table(
        _("Printed vouchers (booklet codes)"),
        [Column(_("Voucher"), 4.2), Column(_("Codes used"), 2.6), Column(_("Daily limit"), 1.4, "right"),
         Column(_("Discount"), 1.4, "right"), Column(_("Redemptions"), 1.5, "right"),
         Column(_("Discount total"), 1.9, "right")],
        [(ctx.voucher(e.get("voucher_id"), e.get("title")), _codes(e.get("codes")),
          _n(e["store_day_limit"]) if e.get("store_day_limit") else "—", _discount(e.get("discount")),
          _n(e.get("count")), _money(e.get("discount_total"), currency)) for e in printed[:LIMITS["printed"]]],
        total=len(printed))

    return personal_table, printed_table


def _where_and_who(report: dict, ctx: _Context) -> tuple[Table | None, Table, Table]:
    currency = (report.get("discount_total") or {}).get("currency") or "PYG"
    stores = report.get("by_store") or []
    store_table = Table(
        _("By store"), [Column(_("Store"), 4.2), Column(_("Redemptions"), 1.5, "right"),
                        Column(_("Discount"), 1.9, "right"), Column(_("Refusals"), 1.4, "right"),
                        Column(_("Conflicts"), 1.5, "right"), Column(_("Voided"), 1.4, "right"),
                        Column(_("Offline"), 1.5, "right")],
        [(clean(e.get("name"), 80) or clean(e.get("store_id"), 64) or "—", _n(e.get("count")),
          _money(e.get("discount"), currency), _n(e.get("refused")), _n(e.get("conflicts")), _n(e.get("voids")),
          _n(e.get("offline"))) for e in stores[:LIMITS["stores"]]],
        total=len(stores)) if stores else None
    cashiers = report.get("by_cashier") or []
    cashier_table = Table(
        _("By cashier"), [Column(_("Cashier"), 3), Column(_("Redemptions"), 1.7, "right"),
                          Column(_("Refusals"), 1.4, "right"), Column(_("Discount"), 1.9, "right")],
        [(ctx.person(e.get("staff_id"), e.get("name")), _n(e.get("count")), _n(e.get("refused")),
          _money(e.get("discount"), currency)) for e in cashiers[:LIMITS["cashiers"]]],
        total=len(cashiers))
    tills = report.get("by_till") or []
    till_table = Table(
        _("By till"), [Column(_("Till"), 2.0), Column(_("Redemptions"), 1.5, "right"),
                       Column(_("Refusals"), 1.4, "right"), Column(_("Conflicts"), 1.5, "right"),
                       Column(_("Offline"), 1.8, "right")],
        [(clean(e.get("till"), 60) or "—", _n(e.get("count")), _n(e.get("refused")), _n(e.get("conflicts")),
          _n(e.get("offline"))) for e in tills[:LIMITS["tills"]]],
        total=len(tills))

    return store_table, cashier_table, till_table


def _trouble(report: dict, ctx: _Context) -> tuple[Table, Table, Table, Table]:
    """Refusals by reason, fraud signals, voids and conflicts."""
    refused = report.get("refused") or {}
    voids = report.get("voids") or {}
    conflicts = report.get("conflicts") or {}
    by_reason = refused.get("by_reason") or {}
    attempts = report.get("attempts") or 0
    reason_table = Table(
        _("Refused, by reason"), [Column(_("Reason"), 4), Column(_("Attempts"), 1.4, "right"),
                                  Column(_("Share"), 1.2, "right")],
        [(reasons.headline(None if r == "unknown" else r), _n(n),
          _share(round(n / attempts, 4) if attempts and isinstance(n, (int, float)) else None))
         for r, n in by_reason.items()],
        empty=_("No refused attempts."))

    fraud_rows, fraud_flags, fraud_total = _fraud_rows(report.get("fraud") or {}, ctx, LIMITS["fraud"])
    fraud_table = Table(_("Fraud signals"), [Column(_("Signal"), 4.2), Column(_("Where"), 2.4),
                                             Column(_("Details"), 6.2)],
                        fraud_rows, total=fraud_total, flagged=fraud_flags,
                        empty=_("No signals: nothing unusual."))

    void_items = voids.get("items") or []
    void_table = Table(
        _("Voided redemptions"),
        [Column(_("When"), 1.4), Column(_("Till"), 1.4), Column(_("Voucher"), 2.6), Column(_("Code"), 1.2),
         Column(_("Voided by"), 1.6), Column(_("Voided at"), 1.4), Column(_("Reason"), 4.2)],
        [(ctx.item_when(e), clean(e.get("till"), 60), ctx.voucher(e.get("voucher_id"), e.get("title")),
          _code(e), ctx.person(e["void_staff_id"]) if e.get("void_staff_id") else "—",
          ctx.when(e["void_at"]) if e.get("void_at") is not None else "—",
          clean(e.get("void_reason")) or "—") for e in void_items[:LIMITS["voids"]]],
        total=voids.get("count") if isinstance(voids.get("count"), int) else len(void_items),
        empty=_("No redemption was voided."))

    conflict_items = conflicts.get("items") or []
    conflict_table = Table(
        _("Conflicts: redeemed first at another till"),
        [Column(_("When"), 1.5), Column(_("Till"), 1.8), Column(_("Voucher"), 3.6), Column(_("Code"), 1.3),
         Column(_("Redeemed first"), 3.6)],
        [(ctx.item_when(e), clean(e.get("till"), 60), ctx.voucher(e.get("voucher_id"), e.get("title")),
          _code(e), _first(e.get("winner"), ctx)) for e in conflict_items[:LIMITS["conflicts"]]],
        total=conflicts.get("count") if isinstance(conflicts.get("count"), int) else len(conflict_items),
        empty=_("No conflicts."))

    return reason_table, fraud_table, void_table, conflict_table


def _codes(codes: object) -> str:
    if not isinstance(codes, dict) or not codes:
        return "—"
    ranked = sorted(codes.items(), key=lambda item: -item[1] if isinstance(item[1], (int, float)) else 0)
    return ", ".join(f"{clean(code, 24) or '—'} × {_n(n)}" for code, n in ranked[:6])


def _day(text: object) -> str:
    try:
        return babel_dates.format_date(date.fromisoformat(str(text)), "medium", locale=format_locale())
    except ValueError:
        return clean(text, 12) or "—"


def _first(winner: object, ctx: _Context) -> str:
    if not isinstance(winner, dict) or not winner:
        return "—"
    return _("{till}, {when}").format(till=clean(winner.get("till"), 60) or _("another till"),
                                      when=ctx.when(winner.get("at")))


def _fraud_rows(fraud: dict, ctx: _Context, limit: int) -> tuple[list[tuple[str, str, str]], list[bool], int]:
    """Up to `limit` lines of signals worth a look (flagged first, the kinds taking turns so each shows),
    their flags, and how many there are in all."""
    kinds = [
        # A till's ordinary busiest minute is no signal: only flagged velocity is listed.
        [("velocity", e) for e in fraud.get("velocity") or [] if e.get("flagged")],
        [("repeated", e) for e in fraud.get("repeated_refusals") or []],
        [("overuse", e) for e in fraud.get("printed_overuse") or []],
        [("over_total", e) for e in fraud.get("printed_over_total") or []],
    ]
    flagged = [[item for item in kind if item[1].get("flagged", True)] for kind in kinds]
    others = [[item for item in kind if not item[1].get("flagged", True)] for kind in kinds]
    chosen: list[tuple[str, dict]] = []
    for group in (flagged, others):
        for turn in range(limit):
            chosen += [kind[turn] for kind in group if turn < len(kind)]
    chosen = chosen[:limit]
    rows = [_fraud_row(kind, e, ctx) for kind, e in chosen]
    return rows, [bool(e.get("flagged", True)) for _kind, e in chosen], sum(len(kind) for kind in kinds)


def _fraud_row(kind: str, e: dict, ctx: _Context) -> tuple[str, str, str]:
    if kind == "velocity":
        details = _("{n} redemptions within a minute, from {when}").format(
            n=_n(e.get("peak_per_minute")), when=ctx.when(e.get("peak_at")))
        if e.get("rate_limited"):
            details += "; " + _("{n} refused as too fast").format(n=_n(e["rate_limited"]))
        return _("Fast redemptions"), clean(e.get("till"), 60), details
    if kind == "repeated":
        why = ", ".join(f"{reasons.headline(None if r == 'unknown' else r)} × {_n(n)}"
                        for r, n in list((e.get("reasons") or {}).items())[:4])
        details = _("{n} refusals ({why}) at {tills}, {first} to {last}").format(
            n=_n(e.get("refusals")), why=why, tills=", ".join(clean(t, 40) for t in (e.get("tills") or [])[:3]),
            first=ctx.when(e.get("first_at")), last=ctx.when(e.get("last_at")))
        return _("Code tried again and again"), _code(e), details
    if kind == "over_total":
        details = _("{n} past its limit of {limit} in all, at {tills}").format(
            n=_n(e.get("uses_over")), limit=_n(e.get("total_limit")) if e.get("total_limit") is not None else "—",
            tills=", ".join(clean(t, 40) for t in (e.get("tills") or [])[:3]))
        return _("Printed, past its total limit"), ctx.voucher(e.get("voucher_id")), details
    over = bool(e.get("flagged"))
    signal = _("Printed, over its daily limit") if over else _("Printed, at its daily limit")
    details = _("{uses} uses, limit {limit} a day, on {day}").format(
        uses=_n(e.get("uses")), limit=_n(e.get("store_day_limit")), day=_day(e.get("date")))
    return signal, ctx.voucher(e.get("voucher_id")), details


# --- pages --------------------------------------------------------------------------------------


def paginate(blocks: Sequence[Block], width: float = WIDTH) -> list[list[tuple[Block, float]]]:
    """Blocks placed top to bottom on at most two pages: a block that does not fit the first page goes to the
    second; on the last page each block leaves room for the smallest version of those after it."""
    pages: list[list[tuple[Block, float]]] = [[]]
    top = PAGE_H - MARGIN
    y = top
    i = 0
    while i < len(blocks):
        block = blocks[i]
        room = y - BOTTOM
        if len(pages) < MAX_PAGES:
            if block.height(width) <= room:
                pages[-1].append((block, y))
                y -= block.height(width) + GAP
                i += 1
                continue
            pages.append([])
            y = top
            continue
        reserve = sum(b.min_height(width) + GAP for b in blocks[i + 1:])
        fitted = block.shrink(width, max(room - reserve, min(block.min_height(width), room)))
        if fitted is not None:
            pages[-1].append((fitted, y))
            y -= fitted.height(width) + GAP
        i += 1
    return [page for page in pages if page]


def render(report: dict, *, language: str = "es", generated_at: float | None = None) -> bytes:
    """The report as a PDF of one or two A4 pages, in `language` (es, gn, en or pt)."""
    fonts.register()
    generated_at = time.time() if generated_at is None else generated_at
    with using(language):
        blocks, running = _blocks(report, generated_at)
        pages = paginate(blocks)
        out = io.BytesIO()
        # initialFontName: else every page names Helvetica, an unembedded font without ẽ ĩ ũ ỹ.
        c = Canvas(out, pagesize=A4, pageCompression=1, initialFontName=REGULAR, initialFontSize=BODY)
        c.setTitle(clean(f"{_('Day report')} — {running}", 200))
        c.setAuthor("Pika")
        c.setCreator("Pika Till")
        for number, page in enumerate(pages, 1):
            for block, top in page:
                block.draw(c, MARGIN, top, WIDTH)
            _footer(c, running, number, len(pages))
            c.showPage()
        c.save()
    return out.getvalue()


def _footer(c, running: str, number: int, pages: int) -> None:
    c.setStrokeColorRGB(*RULE)
    c.setLineWidth(0.5)
    c.line(MARGIN, FOOTER_Y + 9, PAGE_W - MARGIN, FOOTER_Y + 9)
    page = f"{number}/{pages}"
    page_w = fonts.width(page, BOLD, 8) + 10
    _text(c, MARGIN, FOOTER_Y, running, REGULAR, 7, MUTED, width=WIDTH - page_w)
    _text(c, PAGE_W - MARGIN, FOOTER_Y, page, BOLD, 8, MUTED, align="right")
