"""Bar charts drawn straight on a reportlab canvas: the report's hours (and days) on paper.

A plotting library would bring a second renderer and its fonts into the PDF;
a few rectangles and DejaVu labels are all a day's bars need.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from . import fonts
from .fonts import REGULAR

BAR = (0.16, 0.50, 0.72)  # used by the bars alone, so a rasterised page can find them
GRID = (0.86, 0.88, 0.90)
AXIS = (0.45, 0.48, 0.52)
LABEL = (0.35, 0.38, 0.42)


def nice_step(top: float, lines: int = 4) -> int:
    """A round step (1, 2, 5 × 10ⁿ) giving about `lines` grid lines up to `top`."""
    if top <= lines:
        return 1
    raw = top / lines
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if factor * power >= raw:
            return int(factor * power)
    return int(10 * power)


def bar_chart(c, x: float, y: float, w: float, h: float, values: Sequence[int], labels: Sequence[str], *,
              label_every: int = 1, number=str, empty_text: str = "", size: float = 6.5) -> None:
    """Bars for `values` in the box whose bottom-left corner is (x, y): round grid lines, each bar's value
    above it when there is room, and every `label_every`-th label under its bar.

    `number` formats the grid's and bars' numbers in the report's locale.
    """
    top = max(values, default=0)
    step = nice_step(top)
    ceiling = max(step, math.ceil(top / step) * step)
    ticks = list(range(0, ceiling + 1, step))
    axis_w = max(fonts.width(number(t), REGULAR, size) for t in ticks) + 4
    base = y + size + 4  # room for the labels under the bars
    plot_x, plot_w = x + axis_w, w - axis_w
    plot_h = h - (base - y) - size - 3  # room for the values over the highest bar
    c.saveState()
    c.setLineWidth(0.4)
    for tick in ticks:
        ty = base + plot_h * tick / ceiling
        c.setStrokeColorRGB(*(AXIS if tick == 0 else GRID))
        c.line(plot_x, ty, plot_x + plot_w, ty)
        c.setFillColorRGB(*LABEL)
        fonts.draw(c, plot_x - 3, ty - size * 0.35, number(tick), REGULAR, size, align="right")
    n = max(1, len(values))
    slot = plot_w / n
    bar_w = slot * (0.72 if n <= 40 else 0.85)
    for i, value in enumerate(values):
        bx = plot_x + i * slot + (slot - bar_w) / 2
        if value:
            bh = plot_h * value / ceiling
            c.setFillColorRGB(*BAR)
            c.rect(bx, base, bar_w, bh, stroke=0, fill=1)
            text = number(value)
            if fonts.width(text, REGULAR, size - 0.5) <= slot:
                c.setFillColorRGB(*LABEL)
                fonts.draw(c, bx + bar_w / 2, base + bh + 1.5, text, REGULAR, size - 0.5, align="center")
        if i % label_every == 0 and i < len(labels):
            c.setFillColorRGB(*LABEL)
            fonts.draw(c, bx + bar_w / 2, y + 1, labels[i], REGULAR, size, align="center")
    if not top and empty_text:
        c.setFillColorRGB(*LABEL)
        fonts.draw(c, plot_x + plot_w / 2, base + plot_h / 2, empty_text, REGULAR, size + 1.5, align="center")
    c.restoreState()
