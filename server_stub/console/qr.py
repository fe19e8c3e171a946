"""A QR code as an image a page can show without another request: an SVG in a data: URI (img-src allows it).

Encoded by the booklet's one QR maker (zxing-cpp, error correction M), so a
code on the console is made as the printed ones are, and drawn as one path of
horizontal runs, with the quiet zone ISO/IEC 18004 asks for. The SVG scales
sharp to any size; `crispEdges` keeps the modules' edges from blurring.
"""

from __future__ import annotations

import base64

from ..booklet.qr_symbol import symbol

QUIET = 4


def svg(text: str) -> str:
    size, modules = symbol(text)
    runs = []
    for y in range(size):
        row = modules[y * size:(y + 1) * size]
        x = 0
        while x < size:
            if row[x] < 128:
                start = x
                while x < size and row[x] < 128:
                    x += 1
                runs.append(f"M{start + QUIET} {y + QUIET}h{x - start}v1h-{x - start}z")
            else:
                x += 1
    side = size + 2 * QUIET
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {side} {side}" shape-rendering="crispEdges">'
            f'<rect width="{side}" height="{side}" fill="#fff"/><path fill="#000" d="{"".join(runs)}"/></svg>')


def data_uri(text: str) -> str:
    """The code of `text` as a `data:image/svg+xml;base64,…` URI for an <img src>."""
    return "data:image/svg+xml;base64," + base64.b64encode(svg(text).encode("ascii")).decode("ascii")
