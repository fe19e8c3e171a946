"""The day report's hour chart as SVG drawn here, on the server: no script, nothing to load, printable.

The same chart as the till's (`pos_app/gui/report/chart.py`) and the PDF's: redemptions by hour of the
store's day, 24 slots, summed over the days of a range. The drawing scales with the page (a viewBox, width
100 %), drawn twice: narrow for a phone's 390 px (hours labelled every three) and wide for a desktop, the
stylesheet showing the one that fits. Each bar carries its hour and count as a <title> (read aloud, shown
on hover), and the whole is one image with its own label.
Colours come from the stylesheet (classes), as the security policy allows no inline style.
"""

from __future__ import annotations

from markupsafe import Markup, escape

HEIGHT = 260
NARROW, WIDE = 480, 900  # a phone's drawing and a desktop's: the page shows one (the stylesheet chooses)
LEFT, RIGHT, TOP, BOTTOM = 64, 8, 14, 52  # room for the value axis' numbers and the hour labels and title
HOURS = 24


def nice_top(top: int) -> tuple[int, int]:
    """(axis maximum, step): a round step giving 4 to 5 gridlines over the tallest bar."""
    if top <= 4:
        return 4, 1
    raw = top / 4
    magnitude = 10 ** (len(str(int(raw))) - 1)
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    step = max(1, int(step))
    return step * -(-top // step), step


def hour_chart(counts: list[int], *, title: str, hour_label: str, count_label: str, bar_title,
               width: int = NARROW) -> Markup:
    """The SVG of 24 counts (hour 0 first), `width` units wide (NARROW labels every third hour, WIDE every
    hour). `bar_title(hour, count)` says one bar in words (translated by the caller, as every text here is)."""
    if len(counts) != HOURS:
        raise ValueError("the chart needs 24 hours")
    counts = [max(0, int(c)) for c in counts]
    top, step = nice_top(max(counts, default=0))
    plot_w, plot_h = width - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    every = 3 if width < WIDE else 1
    slot = plot_w / HOURS
    base = TOP + plot_h
    kind = "narrow" if width < WIDE else "wide"
    parts = [f'<svg class="hour-chart {kind}" viewBox="0 0 {width} {HEIGHT}" role="img" aria-label="{escape(title)}" '
             f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>']
    for value in range(0, top + 1, step):
        y = base - plot_h * value / top
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{width - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
                     f'<text class="tick" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{value}</text>')
    for hour, count in enumerate(counts):
        x = LEFT + hour * slot
        if count:
            height = plot_h * count / top
            parts.append(f'<rect class="bar" data-hour="{hour}" data-count="{count}" x="{x + slot * 0.12:.1f}" '
                         f'y="{base - height:.1f}" width="{slot * 0.76:.1f}" height="{height:.1f}">'
                         f'<title>{escape(bar_title(hour, count))}</title></rect>')
        if hour % every == 0:
            parts.append(f'<text class="tick" x="{x + slot / 2:.1f}" y="{base + 20}" '
                         f'text-anchor="middle">{hour}</text>')
    parts.append(f'<line class="axis" x1="{LEFT}" x2="{width - RIGHT}" y1="{base}" y2="{base}"/>'
                 f'<text class="axis-title" x="{LEFT + plot_w / 2:.1f}" y="{HEIGHT - 6}" '
                 f'text-anchor="middle">{escape(hour_label)}</text>'
                 f'<text class="axis-title" transform="translate(16 {TOP + plot_h / 2:.1f}) rotate(-90)" '
                 f'text-anchor="middle">{escape(count_label)}</text></svg>')
    return Markup("".join(parts))
