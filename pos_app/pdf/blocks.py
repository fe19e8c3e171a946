"""A small layout engine for A4 documents: blocks of a known height (titled tables, side-by-side columns, bar
charts, headline tiles, a page header) placed top to bottom over a few pages, each with a footer line.

It knows nothing of reports: the day report (`day_report.py`) builds its pages from these blocks, so what a
page looks like is decided here once and what it says there. Texts are cleaned and clipped to their cell, so a
hostile title cannot run off the page.
"""

from __future__ import annotations

import io
import math
import unicodedata
from abc import ABC, abstractmethod
from collections.abc import Sequence

from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas

from ..words.i18n import _, format_number
from . import fonts
from .chart import bar_chart
from .fonts import BOLD, REGULAR

PAGE_W, PAGE_H = A4
MARGIN = 14 * mm
WIDTH = PAGE_W - 2 * MARGIN
FOOTER_Y = MARGIN - 6
BOTTOM = MARGIN + 6  # lowest a block may reach: the footer sits under it
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



# --- pages --------------------------------------------------------------------------------------


def paginate(blocks: Sequence[Block], max_pages: int, width: float = WIDTH) -> list[list[tuple[Block, float]]]:
    """Blocks placed top to bottom on at most `max_pages` pages: a block that does not fit a page before the last
    goes to the next; on the last page each block leaves room for the smallest version of those after it."""
    pages: list[list[tuple[Block, float]]] = [[]]
    top = PAGE_H - MARGIN
    y = top
    i = 0
    while i < len(blocks):
        block = blocks[i]
        room = y - BOTTOM
        if len(pages) < max_pages:
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


def document(blocks: Sequence[Block], *, title: str, footer: str, max_pages: int) -> bytes:
    """The blocks paginated into a PDF, `footer` and the page number under every page."""
    pages = paginate(blocks, max_pages)
    out = io.BytesIO()
    # initialFontName: else every page names Helvetica, an unembedded font without ẽ ĩ ũ ỹ.
    c = Canvas(out, pagesize=A4, pageCompression=1, initialFontName=REGULAR, initialFontSize=BODY)
    c.setTitle(title)
    c.setAuthor("Pika")
    c.setCreator("Pika Till")
    for number, page in enumerate(pages, 1):
        for block, top in page:
            block.draw(c, MARGIN, top, WIDTH)
        _footer(c, footer, number, len(pages))
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
