"""Drawing one card into its slot: a voucher, an ad, a sponsored listing, an image, a house ad.

Each tier has its own look (border weight and colour, background); premium
listings get a gold border and the "Destacado" badge. Sizes scale with the
slot, and every text is wrapped and cut to the lines it has: nothing spills
out of its card.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader

from pos_app.pdf import fonts
from pos_app.pdf.fonts import BOLD, MONO, REGULAR

from . import qr
from .model import Card

BADGE = "Destacado · Ojehechaukáva"
HOUSE = {"es": "Más ofertas en la app Pika", "gn": "Hetave ñemboguejy Pika app-pe"}
HOUSE_BODY = {"es": "Descargala gratis y usá tus cupones desde el celular.",
              "gn": "Emboguejy rei ha eipuru nde ñemboguejy pumbyrýpe."}
LABELS = {"ad": "Publicidad", "sponsored": "Patrocinado", "image": "Publicidad"}
MIN_QR = 18 * mm  # with its quiet zone: a phone or a till's webcam reads it from paper

INK = (0.10, 0.12, 0.14)
MUTED = (0.36, 0.39, 0.42)
GOLD = (0.79, 0.63, 0.15)


@dataclass(frozen=True)
class Style:
    border: tuple[float, float, float]
    width: float
    fill: tuple[float, float, float]
    accent: tuple[float, float, float]


TIER_STYLES = {
    1: Style((0.04, 0.33, 0.39), 0, (0.04, 0.33, 0.39), (1, 1, 1)),
    2: Style((0.04, 0.33, 0.39), 2.0, (0.91, 0.96, 0.96), (0.04, 0.33, 0.39)),
    3: Style((0.16, 0.50, 0.38), 1.5, (0.93, 0.97, 0.95), (0.16, 0.50, 0.38)),
    4: Style((0.77, 0.34, 0.16), 1.2, (0.99, 0.95, 0.92), (0.77, 0.34, 0.16)),
    5: Style((0.55, 0.55, 0.55), 0.6, (1, 1, 1), (0.04, 0.33, 0.39)),
}
HOUSE_STYLE = Style((0.75, 0.75, 0.75), 0.5, (0.97, 0.97, 0.97), (0.45, 0.45, 0.45))


def draw_card(c, card: Card, x: float, y: float, w: float, h: float, scale: float,
              codes: Callable[[str], qr.Code] = qr.encode) -> None:
    """The card inside the rectangle (x, y, w, h); `scale` is 1 for a single A5 space; `codes`
    gives a voucher's QR code by its token (the render's shares the work with a helper process)."""
    style = HOUSE_STYLE if card.kind == "house" else TIER_STYLES[card.tier]
    c.saveState()
    c.setFillColorRGB(*style.fill)
    border = GOLD if card.premium and card.tier > 1 else style.border
    width = max(style.width, 1.6) if card.premium and card.tier > 1 else style.width
    if width:
        c.setStrokeColorRGB(*border)
        c.setLineWidth(width)
    c.roundRect(x, y, w, h, 2.2 * mm * min(scale, 1.5), stroke=1 if width else 0, fill=1)
    c.restoreState()
    pad = 2.4 * mm * min(scale, 1.6)
    top = y + h - pad
    if card.premium:
        top = _badge(c, x + pad, top, scale) - 1.2 * mm * scale
    if card.kind == "voucher":
        _voucher(c, card, style, x + pad, y + pad, w - 2 * pad, top - y - pad, scale, codes)
    elif card.kind == "image":
        _image(c, card, style, x + pad, y + pad, w - 2 * pad, top - y - pad, scale)
    else:
        _ad(c, card, style, x + pad, y + pad, w - 2 * pad, top - y - pad, scale)


def _badge(c, x: float, top: float, scale: float) -> float:
    size = 5.6 * min(scale, 1.6)
    w = fonts.width(BADGE, BOLD, size) + 2.4 * size / 5.6 * mm
    h = size * 1.55
    c.saveState()
    c.setFillColorRGB(*GOLD)
    c.roundRect(x, top - h, w, h, h / 2, stroke=0, fill=1)
    c.setFillColorRGB(1, 1, 1)
    fonts.draw(c, x + 1.2 * size / 5.6 * mm, top - h + 0.32 * h, BADGE, BOLD, size)
    c.restoreState()
    return top - h


@lru_cache(maxsize=4096)
def _wrap(text: str, font: str, size: float, width: float, max_lines: int) -> tuple[str, ...]:
    """fonts.wrap, remembered: it measures every candidate line with reportlab's pure-Python
    stringWidth, and a booklet repeats its texts (the validity lines on every card, an
    advertiser's name and offer on each of its cards). About 0.1 s of the benchmark's
    512 cards, whose texts are all alike; less where every card differs."""
    return tuple(fonts.wrap(text, font, size, width, max_lines))


def _lines(c, text: str, font: str, size: float, x: float, top: float, width: float, max_lines: int,
           color=INK, leading: float = 1.2) -> float:
    """Wrapped text from `top` down; returns the new top."""
    if not text or max_lines <= 0:
        return top
    c.setFillColorRGB(*color)
    for line in _wrap(text, font, size, width, max_lines):
        top -= size * leading
        fonts.draw(c, x, top + size * (leading - 1) / 2 + size * 0.18, line, font, size)
    return top


def _voucher(c, card: Card, style: Style, x, y, w, h, scale, codes) -> None:
    code_size = min(15 * scale, 22)
    q = min(h - code_size * 1.5, w * 0.44, 70 * mm)
    if q < MIN_QR:  # a QR too small to scan is worse than none: the layout must give it room
        raise ValueError(f"a voucher card of {w / mm:.0f} × {h / mm:.0f} mm has no room for an 18 mm code")
    qx, qy = x + w - q, y + h - q
    qr.draw(c, codes(card.token), qx, qy, q)
    code = card.code
    while code_size > 7 and fonts.width(code, MONO, code_size) > q:
        code_size -= 0.5
    c.setFillColorRGB(*INK)
    fonts.draw(c, qx + q / 2, qy - code_size * 1.12, code, MONO, code_size, align="center")
    tw = w - q - 2.6 * mm * min(scale, 1.5)
    s = scale if scale < 1 else min(scale, 1.6)
    top = y + h
    color = style.accent if card.tier > 1 else style.accent
    top = _lines(c, card.advertiser.upper(), BOLD, 5.6 * s, x, top, tw, 1, MUTED)
    top = _lines(c, card.discount, BOLD, 13 * s, x, top, tw, 1, color, leading=1.15)
    es, gn = card.texts.get("es", {}), card.texts.get("gn", {})
    top = _lines(c, es.get("title", ""), BOLD, 7.2 * s, x, top, tw, 2)
    top = _lines(c, gn.get("title", ""), REGULAR, 6.8 * s, x, top, tw, 2, style.accent if card.tier > 1 else MUTED)
    bottom = y + 6.2 * s * 1.25 * 2  # room kept for the validity lines
    room = int((top - bottom) // (5.6 * s * 1.2))
    top = _lines(c, es.get("body", ""), REGULAR, 5.6 * s, x, top, tw, min(3, (room + 1) // 2), MUTED)
    room = int((top - bottom) // (5.6 * s * 1.2))
    _lines(c, gn.get("body", ""), REGULAR, 5.6 * s, x, top, tw, min(3, room), MUTED)
    vy = y
    for lang in ("gn", "es"):
        text = card.validity.get(lang, "")
        if text:
            c.setFillColorRGB(*INK)
            for line in _wrap(text, REGULAR, 5.4 * s, tw, 1):
                fonts.draw(c, x, vy + 0.5, line, REGULAR, 5.4 * s)
            vy += 5.4 * s * 1.25


def _ad(c, card: Card, style: Style, x, y, w, h, scale) -> None:
    s = scale if scale < 1 else min(scale, 2.4)
    on_dark = card.tier == 1 and card.kind != "house"
    ink = (1, 1, 1) if on_dark else INK
    accent = GOLD if on_dark else style.accent
    es, gn = card.texts.get("es", {}), card.texts.get("gn", {})
    top = y + h
    label = LABELS.get(card.kind, "")
    if label:
        top = _lines(c, label.upper(), BOLD, 5 * s, x, top, w, 1, accent)
    if card.kind == "house":
        es = es or {"title": HOUSE["es"], "body": HOUSE_BODY["es"]}
        gn = gn or {"title": HOUSE["gn"], "body": HOUSE_BODY["gn"]}
    title_size = 11 * s if card.kind != "house" else 8.5 * min(s, 2)
    top = _lines(c, es.get("title", ""), BOLD, title_size, x, top, w, 2, ink)
    top = _lines(c, gn.get("title", ""), REGULAR, title_size * 0.8, x, top, w, 2, accent)
    bottom = y + (7 * s * 1.3 if card.advertiser else 0)
    body = 6.6 * s
    room = int((top - bottom) // (body * 1.25))
    top = _lines(c, es.get("body", ""), REGULAR, body, x, top - body * 0.4, w, (room + 1) // 2, ink, 1.25)
    room = int((top - bottom) // (body * 1.25))
    _lines(c, gn.get("body", ""), REGULAR, body, x, top, w, room, MUTED if not on_dark else (0.85, 0.9, 0.9), 1.25)
    if card.advertiser:
        c.setFillColorRGB(*accent)
        fonts.draw(c, x, y + 1, fonts.wrap(card.advertiser, BOLD, 7 * s, w, 1)[0], BOLD, 7 * s)


def _image(c, card: Card, style: Style, x, y, w, h, scale) -> None:
    s = min(scale, 2)
    caption = 6.5 * s * 1.4 if card.advertiser else 0
    if card.image:
        c.drawImage(ImageReader(io.BytesIO(card.image)), x, y + caption, w, h - caption,
                    preserveAspectRatio=True, anchor="c", mask="auto")
    if card.advertiser:
        c.setFillColorRGB(*(GOLD if card.tier == 1 else style.accent))
        fonts.draw(c, x, y + 1, fonts.wrap(card.advertiser, BOLD, 6.5 * s, w, 1)[0], BOLD, 6.5 * s)
