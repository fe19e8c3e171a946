"""QR codes for the booklet: encoded by zxing-cpp, drawn as vector runs.

Encoding dominates the cost of a booklet: pure-Python encoders take 13–24 ms
a code, zxing-cpp's writer about 1.5 ms (a 309-byte token: byte mode, as
base64url has lower case, which is version 13 at EC M). Of that 1.5 ms,
about 1.1 ms is zint choosing the data mask: it scores all eight masks by
the ISO 18004 penalty rules. A fixed mask (`data_mask=`) costs 0.4 ms, but
the standard asks for the best one and a fixed mask can leave finder-like
patterns in the data, so the booklet keeps the choice. `to_image()` costs
next to nothing. zxing-cpp holds the GIL while encoding (two threads are
slower than one), so qr_helper spreads the codes over a second process.

The modules are drawn as one filled path of horizontal runs (one rectangle
per run of dark modules in a row), in module units under one transform:
sharp at any print resolution, where a 1-pixel-per-module image scaled up by
the viewer did not decode in zbar. A code has about 1,200 runs; the operator
text is built with numpy from a table of number strings (0.17 ms a code)
rather than formatted run by run in Python (0.6 ms).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .qr_symbol import symbol  # error correction M

QUIET_MODULES = 4  # the quiet zone ISO/IEC 18004 asks for, each side


@dataclass(frozen=True)
class Code:
    """A QR code ready to draw: its text, its modules a side (quiet zone apart), its run operators."""
    text: str
    size: int
    ops: str


def encode(text: str) -> Code:
    return from_symbol(text, *symbol(text))


def from_symbol(text: str, size: int, modules: bytes) -> Code:
    """The Code of a symbol from qr_symbol.symbol, made here or by the helper process."""
    return Code(text, size, run_ops(_dark(size, modules)))


def matrix(text: str) -> np.ndarray:
    """The code's modules as a boolean array, True for dark, without the quiet zone."""
    return _dark(*symbol(text))


def _dark(size: int, modules: bytes) -> np.ndarray:
    return np.frombuffer(modules, dtype=np.uint8).reshape(size, size) < 128


def _token_table() -> tuple[np.ndarray, int]:
    """Rows of ASCII bytes, zero-padded: "0 " … "199 " (a QR is at most 177 modules), then "1 re "."""
    words = [f"{i} ".encode() for i in range(200)] + [b"1 re "]
    table = np.zeros((len(words), max(map(len, words))), dtype=np.uint8)
    for i, word in enumerate(words):
        table[i, :len(word)] = np.frombuffer(word, dtype=np.uint8)
    return table, len(words) - 1


_TABLE, _RE = _token_table()


def run_ops(modules: np.ndarray) -> str:
    """PDF path operators: one `x y w 1 re` per horizontal run of dark modules (row 0 on top)."""
    rows, cols = modules.shape
    padded = np.zeros((rows, cols + 2), dtype=np.int8)
    padded[:, 1:-1] = modules
    edges = np.diff(padded, axis=1).ravel()  # rows of cols + 1 edges; runs never cross a row
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    start_r, start_c = np.divmod(starts, cols + 1)
    words = np.empty((starts.size, 4), dtype=np.intp)
    words[:, 0], words[:, 1], words[:, 2], words[:, 3] = start_c, start_r, ends - starts, _RE
    text = _TABLE[words].ravel()
    return text[text != 0].tobytes()[:-1].decode("ascii")  # the padding dropped, and the last space


def draw(canvas, code: Code, x: float, y: float, size: float) -> None:
    """The code with its quiet zone in the square of side `size` whose bottom-left is (x, y)."""
    module = size / (code.size + 2 * QUIET_MODULES)
    canvas.saveState()
    canvas.setFillColorRGB(1, 1, 1)
    canvas.rect(x, y, size, size, stroke=0, fill=1)  # the quiet zone is white even on a tinted card
    canvas.restoreState()
    top = y + size - QUIET_MODULES * module
    left = x + QUIET_MODULES * module
    # Rows grow downwards in module units: a flip in the transform, one fill for the whole code.
    canvas.addLiteral(f"q {module:.5f} 0 0 {-module:.5f} {left:.4f} {top:.4f} cm 0 g {code.ops} f Q")
