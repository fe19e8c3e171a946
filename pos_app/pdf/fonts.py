"""DejaVu Sans for the booklet and the reports: shipped with the till (assets/fonts), registered once per process.

reportlab's built-in Helvetica has no ẽ ĩ ũ ỹ nor ₲; DejaVu Sans (Debian's
fonts-dejavu-core) covers every Guaraní letter. Text holding a combining
mark (g̃, and the capital G̃ that Unicode has no single letter for) is shaped
with HarfBuzz so the mark sits on its letter, and carries its original text
as /ActualText so `pdftotext` and screen readers still read "G̃".

The fonts travel with the till (DejaVu 2.37, Bitstream Vera licence) instead
of being looked up in the system's folders: Windows and macOS have no DejaVu,
a PDF must come out the same on every till, and a fallback to the system's
copy would hide an install that lost its own. PIKA_FONT_DIR, if set, comes
first (a newer DejaVu to try).
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont, shapeStr

from .. import resources

REGULAR, BOLD, MONO = "PikaSans", "PikaSans-Bold", "PikaMono-Bold"
_FILES = {REGULAR: "DejaVuSans.ttf", BOLD: "DejaVuSans-Bold.ttf", MONO: "DejaVuSansMono-Bold.ttf"}
_COMBINING = re.compile("[\u0300-\u036f]")
_lock = threading.Lock()
_registered = False


class FontMissing(RuntimeError):
    """The till's own copy of a font is missing: a broken install."""


def find_font(filename: str) -> Path:
    """The font file, from PIKA_FONT_DIR if it is set and has it, else the till's own copy."""
    override = os.environ.get("PIKA_FONT_DIR")
    if override and (Path(override) / filename).is_file():
        return Path(override) / filename
    shipped = resources.path("fonts", filename)
    if shipped.is_file():
        return shipped
    raise FontMissing(f"{filename} is missing from {shipped.parent}: reinstall the till")


def register() -> None:
    """Register the booklet's fonts with reportlab, once per process."""
    global _registered
    if _registered:
        return
    with _lock:
        if _registered:
            return
        for name, filename in _FILES.items():
            pdfmetrics.registerFont(TTFont(name, str(find_font(filename))))
        _registered = True


def width(text: str, font: str, size: float) -> float:
    return pdfmetrics.stringWidth(text, font, size)


def draw(canvas, x: float, y: float, text: str, font: str, size: float, align: str = "left") -> None:
    """Draw one line; shaped (and its text kept as ActualText) only when it holds a combining mark."""
    canvas.setFont(font, size)
    if align != "left":
        w = width(text, font, size)
        x -= w if align == "right" else w / 2
    if not _COMBINING.search(text):
        canvas.drawString(x, y, text)
        return
    actual = ("FEFF" + text.encode("utf-16-be").hex()).upper()
    canvas.addLiteral(f"/Span <</ActualText <{actual}>>> BDC")
    canvas.drawString(x, y, shapeStr(text, font, size))
    canvas.addLiteral("EMC")


def wrap(text: str, font: str, size: float, max_width: float, max_lines: int) -> list[str]:
    """Words wrapped to a width, at most `max_lines` lines, the last cut with an ellipsis if need be."""
    lines: list[str] = []
    current = ""
    words = text.split()
    for i, word in enumerate(words):
        candidate = f"{current} {word}" if current else word
        if width(candidate, font, size) <= max_width:
            current = candidate
            continue
        if current:
            lines.append(current)
        current = word
        while width(current, font, size) > max_width and len(current) > 1:  # one overlong word
            cut = len(current) - 1
            while cut > 1 and width(current[:cut] + "-", font, size) > max_width:
                cut -= 1
            lines.append(current[:cut] + "-")
            current = current[cut:]
        if len(lines) >= max_lines:
            return _ellipsis(lines[:max_lines], font, size, max_width)
    if current:
        lines.append(current)
    if len(lines) > max_lines:
        return _ellipsis(lines[:max_lines], font, size, max_width)
    return lines


def _ellipsis(lines: list[str], font: str, size: float, max_width: float) -> list[str]:
    last = lines[-1]
    while last and width(last + "…", font, size) > max_width:
        last = last[:-1].rstrip()
    lines[-1] = last + "…"
    return lines
