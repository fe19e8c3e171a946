"""QR codes for the booklet: encoded by zxing-cpp, drawn as vector runs.

Encoding dominates the cost of a booklet: pure-Python encoders take 13–24 ms
a code, zxing-cpp's writer about 1 ms. The modules are drawn as one filled
path of horizontal runs (one rectangle per run of dark modules in a row), in
module units under one transform: sharp at any print resolution, where a
1-pixel-per-module image scaled up by the viewer did not decode in zbar.
"""

from __future__ import annotations

import numpy as np
import zxingcpp

QUIET_MODULES = 4  # the quiet zone ISO/IEC 18004 asks for, each side
EC_LEVEL = "M"


def matrix(text: str) -> np.ndarray:
    """The code's modules as a boolean array, True for dark, without the quiet zone."""
    barcode = zxingcpp.create_barcode(text, zxingcpp.BarcodeFormat.QRCode, ec_level=EC_LEVEL)
    return np.asarray(barcode.to_image(scale=1, add_quiet_zones=False)) < 128


def run_ops(modules: np.ndarray) -> str:
    """PDF path operators: one `x y w 1 re` per horizontal run of dark modules (row 0 on top)."""
    rows, cols = modules.shape
    padded = np.zeros((rows, cols + 2), dtype=np.int8)
    padded[:, 1:-1] = modules
    edges = np.diff(padded, axis=1)
    start_r, start_c = np.nonzero(edges == 1)  # row-major order: starts and ends pair up
    _, end_c = np.nonzero(edges == -1)
    return " ".join(f"{c} {r} {w} 1 re" for r, c, w in zip(start_r.tolist(), start_c.tolist(),
                                                           (end_c - start_c).tolist()))


def draw(canvas, modules: np.ndarray, x: float, y: float, size: float) -> None:
    """The code with its quiet zone in the square of side `size` whose bottom-left is (x, y)."""
    n = modules.shape[0]
    module = size / (n + 2 * QUIET_MODULES)
    canvas.saveState()
    canvas.setFillColorRGB(1, 1, 1)
    canvas.rect(x, y, size, size, stroke=0, fill=1)  # the quiet zone is white even on a tinted card
    canvas.restoreState()
    top = y + size - QUIET_MODULES * module
    left = x + QUIET_MODULES * module
    # Rows grow downwards in module units: a flip in the transform, one fill for the whole code.
    canvas.addLiteral(f"q {module:.5f} 0 0 {-module:.5f} {left:.4f} {top:.4f} cm 0 g {run_ops(modules)} f Q")
