"""The booklet PDF: pages of the layout, each card in its slot, with cut lines,
page numbers, and the edition and its month on every page (reportlab)."""

from __future__ import annotations

import io

from reportlab.lib.pagesizes import A5, A6
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas

from pos_app.pdf import fonts
from pos_app.pdf.fonts import BOLD, REGULAR

from . import qr
from .cards import GOLD, HOUSE, HOUSE_BODY, INK, MUTED, draw_card
from .layout import COLUMNS, ROWS, Layout, Slot
from .model import Card, EditionInfo
from .months import month_es, month_gn
from .qr_helper import Codes
from .streams import PageStreams

PAGE_SIZES = {"A5": A5, "A6": A6}
BRAND = (0.04, 0.33, 0.39)
# Margins in mm for A5; A6 takes them scaled by its width.
_SIDE, _HEAD, _FOOT, _INSET = 7, 11, 10, 1.4


class Geometry:
    """Where the grid of 8 spaces sits on a page of a given paper."""

    def __init__(self, paper: str):
        self.width, self.height = PAGE_SIZES[paper]
        k = self.width / A5[0]
        self.k = k
        self.side, self.head, self.foot = _SIDE * mm * k, _HEAD * mm * k, _FOOT * mm * k
        self.inset = _INSET * mm * k
        self.cell_w = (self.width - 2 * self.side) / COLUMNS
        self.cell_h = (self.height - self.head - self.foot) / ROWS
        # The single A5 card is the unit every size scales from.
        self.unit_w, self.unit_h = A5[0] / COLUMNS - 2 * _SIDE * mm / COLUMNS, (A5[1] - (_HEAD + _FOOT) * mm) / ROWS

    def rect(self, slot: Slot) -> tuple[float, float, float, float]:
        """The slot's rectangle (x, y, w, h): the cut lines run along it."""
        row, col = divmod(slot.position, COLUMNS)
        cols = 1 if slot.size == "single" else COLUMNS
        rows = {"single": 1, "quarter": 1, "half": 2, "full": 4}[slot.size]
        x = self.side + col * self.cell_w
        top = self.height - self.head - row * self.cell_h
        return x, top - rows * self.cell_h, cols * self.cell_w, rows * self.cell_h

    def scale(self, w: float, h: float) -> float:
        return min((w - 2 * self.inset) / (self.unit_w - 2 * _INSET * mm),
                   (h - 2 * self.inset) / (self.unit_h - 2 * _INSET * mm))


def render_pdf(edition: EditionInfo, layout: Layout, cards: dict[str, Card], *,
               invariant: bool = False) -> bytes:
    """The PDF of a laid-out edition; `cards` maps placement ids to what they print."""
    fonts.register()
    geo = Geometry(edition.paper)
    out = io.BytesIO()
    # initialFontName: else every page names Helvetica, an unembedded font without ẽ ĩ ũ ỹ.
    c = Canvas(out, pagesize=(geo.width, geo.height), invariant=int(invariant), pageCompression=1,
               initialFontName=REGULAR, initialFontSize=8)
    c.setTitle(f"{edition.title} — {month_es(edition.month)}")
    c.setAuthor("Pika")
    c.setSubject(f"edition {edition.id}")
    with Codes(_tokens_in_order(layout, cards)) as codes, PageStreams(c) as streams:
        for page in range(1, layout.pages + 1):
            cover = layout.covers.get(page)
            slots = layout.page_slots(page)
            if cover:
                _cover_page(c, geo, edition, layout, page, cover, cards.get(slots[0].placement_id), codes)
            else:
                _interior_page(c, geo, edition, layout, page, slots, cards, codes)
            c.showPage()
            streams.page_done()
    c.save()
    return out.getvalue()


def _tokens_in_order(layout: Layout, cards: dict[str, Card]) -> list[str]:
    """The vouchers' tokens in the order the pages draw them (a cover shows its first slot's card)."""
    tokens = []
    for page in range(1, layout.pages + 1):
        slots = layout.page_slots(page)
        for slot in slots[:1] if layout.covers.get(page) else slots:
            card = cards.get(slot.placement_id) if slot.placement_id else None
            if card is not None and card.kind == "voucher":
                tokens.append(card.token)
    return tokens


def _card_for(slot: Slot, cards: dict[str, Card]) -> Card:
    if slot.placement_id is None:
        return Card(kind="house", tier=5)
    return cards[slot.placement_id]


def _interior_page(c, geo: Geometry, edition: EditionInfo, layout: Layout, page: int, slots: list[Slot],
                   cards: dict[str, Card], codes: Codes) -> None:
    _header(c, geo, edition)
    for slot in slots:
        x, y, w, h = geo.rect(slot)
        card = _card_for(slot, cards)
        i = geo.inset
        draw_card(c, card, x + i, y + i, w - 2 * i, h - 2 * i, geo.scale(w, h), codes)
    _cut_lines(c, geo, slots)
    _footer(c, geo, edition, page, layout.pages)


def _header(c, geo: Geometry, edition: EditionInfo) -> None:
    k = geo.k
    base = geo.height - geo.head + 3.6 * mm * k
    c.setFillColorRGB(*BRAND)
    fonts.draw(c, geo.side + geo.inset, base, "Pika", BOLD, 10 * k)
    c.setFillColorRGB(*MUTED)
    title = fonts.wrap(edition.title, REGULAR, 7 * k, geo.width / 2 - geo.side - 14 * mm * k, 1)[0]
    fonts.draw(c, geo.side + geo.inset + 10 * mm * k, base, title, REGULAR, 7 * k)
    fonts.draw(c, geo.width - geo.side - geo.inset, base,
               f"{month_es(edition.month)} · {month_gn(edition.month)}", REGULAR, 7 * k, align="right")


def _footer(c, geo: Geometry, edition: EditionInfo, page: int, pages: int, on_dark: bool = False) -> None:
    k = geo.k
    base = geo.foot - 6.2 * mm * k
    c.setFillColorRGB(*((1, 1, 1) if on_dark else MUTED))
    fonts.draw(c, geo.width / 2, base, f"{page} / {pages}", BOLD, 7.5 * k, align="center")
    fonts.draw(c, geo.side + geo.inset, base, f"{edition.title} · {edition.month}"[:60], REGULAR, 5.5 * k)
    fonts.draw(c, geo.width - geo.side - geo.inset, base, "✂ Recortá · Eikytĩ", REGULAR, 5.5 * k, align="right")


def _cut_lines(c, geo: Geometry, slots: list[Slot]) -> None:
    c.saveState()
    c.setStrokeColorRGB(0.6, 0.6, 0.6)
    c.setLineWidth(0.35)
    c.setDash(2.2, 1.8)
    path = c.beginPath()
    for slot in slots:
        x, y, w, h = geo.rect(slot)
        path.rect(x, y, w, h)
    c.drawPath(path, stroke=1, fill=0)
    c.restoreState()


def _cover_page(c, geo: Geometry, edition: EditionInfo, layout: Layout, page: int, cover: str,
                card: Card | None, codes: Codes) -> None:
    k = geo.k
    c.setFillColorRGB(*BRAND)
    c.rect(0, 0, geo.width, geo.height, stroke=0, fill=1)
    band = 0.0
    if cover == "front":  # the masthead: what this booklet is, whatever the cover ad
        band = 46 * mm * k if card else 0
        _masthead(c, geo, edition, full=card is None)
    if card is not None:
        x, y = geo.side, geo.foot
        w, h = geo.width - 2 * geo.side, geo.height - geo.head - geo.foot - band
        draw_card(c, card, x, y, w, h, geo.scale(w, h), codes)
        if cover != "front":
            _cover_header(c, geo, edition)
    elif cover == "back":
        _cover_header(c, geo, edition)
        c.setFillColorRGB(1, 1, 1)
        cx = geo.width / 2
        fonts.draw(c, cx, geo.height * 0.58, HOUSE["es"], BOLD, 15 * k, align="center")
        fonts.draw(c, cx, geo.height * 0.58 - 20 * k, HOUSE["gn"], REGULAR, 12 * k, align="center")
        c.setFillColorRGB(0.85, 0.92, 0.92)
        fonts.draw(c, cx, geo.height * 0.58 - 44 * k, HOUSE_BODY["es"], REGULAR, 8 * k, align="center")
        fonts.draw(c, cx, geo.height * 0.58 - 56 * k, HOUSE_BODY["gn"], REGULAR, 8 * k, align="center")
    elif cover != "front":
        _cover_header(c, geo, edition)
        draw_card(c, Card(kind="house", tier=5), geo.side, geo.foot, geo.width - 2 * geo.side,
                  geo.height - geo.head - geo.foot, geo.scale(geo.width, geo.height))
    _footer(c, geo, edition, page, layout.pages, on_dark=True)


def _cover_header(c, geo: Geometry, edition: EditionInfo) -> None:
    k = geo.k
    base = geo.height - geo.head + 3.6 * mm * k
    c.setFillColorRGB(1, 1, 1)
    fonts.draw(c, geo.side, base, "Pika", BOLD, 10 * k)
    fonts.draw(c, geo.width - geo.side, base, f"{month_es(edition.month)} · {month_gn(edition.month)}",
               REGULAR, 7 * k, align="right")


def _masthead(c, geo: Geometry, edition: EditionInfo, full: bool) -> None:
    k = geo.k
    top = geo.height - 16 * mm * k
    c.setFillColorRGB(1, 1, 1)
    fonts.draw(c, geo.side, top, "Pika", BOLD, 34 * k)
    c.setFillColorRGB(*GOLD)
    for i, line in enumerate(fonts.wrap(edition.title, BOLD, 13 * k, geo.width - 2 * geo.side, 2)):
        fonts.draw(c, geo.side, top - (18 + 15 * i) * k, line, BOLD, 13 * k)
    c.setFillColorRGB(1, 1, 1)
    fonts.draw(c, geo.side, top - 52 * k, f"{month_es(edition.month)} · {month_gn(edition.month)}", REGULAR, 10 * k)
    if full:  # no cover ad sold: the cover says what is inside
        c.setFillColorRGB(1, 1, 1)
        fonts.draw(c, geo.side, geo.height * 0.45, "Cupones del mes", BOLD, 20 * k)
        c.setFillColorRGB(0.85, 0.92, 0.92)
        fonts.draw(c, geo.side, geo.height * 0.45 - 22 * k, "Jasy ñemboguejy", REGULAR, 15 * k)
        fonts.draw(c, geo.side, geo.height * 0.45 - 50 * k, HOUSE_BODY["es"], REGULAR, 8 * k)
        fonts.draw(c, geo.side, geo.height * 0.45 - 62 * k, HOUSE_BODY["gn"], REGULAR, 8 * k)


__all__ = ["render_pdf", "Geometry", "qr", "INK"]
