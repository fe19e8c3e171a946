"""Drawing one card into its slot: a voucher, an ad, a sponsored listing, an image, a house ad.

Each tier has its own look (border weight and colour, background); premium
listings get a gold border and the "Destacado" badge. Sizes scale with the
slot, and nothing spills out of its card. What a voucher card must show whole
(its value, titles, code and validity) is sized down to a floor and then
wrapped, never cut; only the terms take the room left and may be cut.
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
# A module of 0.45 mm: a voucher's token (about 309 bytes, byte mode) is a version 13 code at EC M,
# 69 modules a side, 77 with the quiet zone: 34.7 mm. At 150 dpi that is 2.7 pixels a module, and
# both zbar and zxing-cpp read every code there; at 0.42 mm zbar missed 1 in 48, at 0.34 mm (the old
# 26 mm code of an A5 single) 2 in 20. It fits an A5 single space (67 × 47 mm) and an A6 half.
MODULE = 0.45 * mm
# The printed code's baseline below the QR's square, in its size: DejaVu Sans Mono's ascent (0.76) and a gap.
CODE_DROP = 0.95

INK = (0.10, 0.12, 0.14)
MUTED = (0.36, 0.39, 0.42)
GOLD = (0.79, 0.63, 0.15)
ON_DARK = ((1, 1, 1), (0.85, 0.90, 0.90))  # ink and muted ink on a tier 1 card's dark fill


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
        _voucher(c, card, style, x + pad, y + pad, w - 2 * pad, top - y - pad, scale, codes, pad)
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


def fit(text: str, font: str, size: float, floor: float, width: float, max_lines: int) -> tuple[float, tuple[str, ...]]:
    """The size and lines that show all of `text` in `width`: the largest size from `size` down to
    `floor` that needs at most `max_lines` lines and splits no word; at the floor, as many lines as
    it takes. Never an ellipsis: a value or a code cut short is worse than a small one."""
    s = size
    while True:
        lines = _wrap(text, font, s, width, 10_000)
        if s <= floor or (len(lines) <= max_lines and all(fonts.width(w, font, s) <= width for w in text.split())):
            return s, lines
        s = max(floor, s - 0.25)


def _qr_side(modules: int, w: float, h: float) -> float:
    """The code's square, quiet zone included: modules of at least MODULE, larger where the card allows."""
    need = (modules + 2 * qr.QUIET_MODULES) * MODULE
    return max(need, min(w * 0.44, h * 0.8, 70 * mm))


def _voucher(c, card: Card, style: Style, x, y, w, h, scale, codes, pad: float) -> None:
    code = codes(card.token)
    q = _qr_side(code.size, w, h)
    # The quiet zone is white and may lie on the card's padding: only the modules need the inner box.
    bleed = min(qr.QUIET_MODULES * q / (code.size + 2 * qr.QUIET_MODULES), pad)
    code_size, code_lines = fit(card.code, MONO, min(15 * scale, 22), 6, q, 1)
    # The printed code goes under the QR, clear of its quiet zone (printed into that white square, a
    # code on a dark cover was half white), and down into the card's padding to 1 mm from its edge: a
    # code is capitals and digits, nothing below the baseline. Else it goes whole in the text column.
    below = h - (q - bleed) + pad - 1 * mm
    code_size = min(code_size, max(6, below / CODE_DROP // 0.25 * 0.25))
    under = code_size * CODE_DROP <= below
    if q - 2 * bleed > h or q > w * 0.62:  # a QR too small to scan is worse than none: the layout gives it room
        raise ValueError(f"a voucher card of {w / mm:.0f} × {h / mm:.0f} mm has no room for a {q / mm:.1f} mm code")
    qx, qy = x + w - q + bleed, y + h - q + bleed
    qr.draw(c, code, qx, qy, q)
    ink, muted = ON_DARK if card.tier == 1 else (INK, MUTED)
    if under:
        c.setFillColorRGB(*ink)
        fonts.draw(c, qx + q / 2, qy - code_size * CODE_DROP, code_lines[0], MONO, code_size, align="center")
    tw = w - q - 2.6 * mm * min(scale, 1.5)
    s = scale if scale < 1 else min(scale, 1.6)
    es, gn = card.texts.get("es", {}), card.texts.get("gn", {})
    accent = style.accent
    # What a card must show whole, top down; the validity lines sit at the bottom. Sizes come down
    # together until they fit the card's height, each text to its floor.
    head = [(card.advertiser.upper(), BOLD, 5.6, 4.5, 1, muted, 1.2), (card.discount, BOLD, 13, 6, 1, accent, 1.15),
            (es.get("title", ""), BOLD, 7.2, 5, 2, ink, 1.2),
            (gn.get("title", ""), REGULAR, 6.8, 5, 2, accent if card.tier > 1 else muted, 1.2)]
    foot = [(card.validity.get(lang, ""), REGULAR, 5.4, 4.5, 1, ink, 1.25) for lang in ("es", "gn")]
    if not under:
        foot.insert(0, (card.code, MONO, min(15 * scale, 22) / s, 6 / s, 1, ink, 1.15))
    for shrink in (1, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4):
        placed = [(fit(t, f, size * s * shrink, floor, tw, n), color, lead) + (f,)
                  for t, f, size, floor, n, color, lead in head + foot if t]
        used = sum(size * lead * len(lines) for (size, lines), color, lead, f in placed)
        if used <= h:
            break
    else:
        raise ValueError(f"a voucher card of {w / mm:.0f} × {h / mm:.0f} mm cannot show its texts whole")
    heads, feet = placed[:len([1 for t, *_ in head if t])], placed[len([1 for t, *_ in head if t]):]
    top = y + h
    for (size, lines), color, lead, font in heads:
        top = _draw_lines(c, lines, font, size, x, top, color, lead)
    bottom = y + sum(size * lead * len(lines) for (size, lines), color, lead, f in feet)
    vy = bottom
    for (size, lines), color, lead, font in feet:
        vy = _draw_lines(c, lines, font, size, x, vy, color, lead)
    body = max(4.5, 5.6 * s * shrink)
    for lang in ("es", "gn"):  # the terms take the room left, cut if they must
        room = int((top - bottom) // (body * 1.2))
        top = _lines(c, card.texts.get(lang, {}).get("body", ""), REGULAR, body, x, top, tw, min(3, room), muted)


def _draw_lines(c, lines, font: str, size: float, x: float, top: float, color, leading: float) -> float:
    c.setFillColorRGB(*color)
    for line in lines:
        top -= size * leading
        fonts.draw(c, x, top + size * (leading - 1) / 2 + size * 0.18, line, font, size)
    return top


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
