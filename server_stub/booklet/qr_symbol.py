"""The one place a booklet QR symbol is made (zxing-cpp, error correction M), without numpy.

Both the render and its helper process (qr_helper) encode here. The helper
imports nothing else, so it is ready in about 0.03 s where one importing
numpy took 0.15–0.2 s (numpy alone, with OpenBLAS starting its threads):
every code it sends earlier is one the render does not encode.
"""

from __future__ import annotations

import struct
import sys

import zxingcpp

EC_LEVEL = "M"
LENGTH = struct.Struct(">I")  # before each text sent to the helper: its UTF-8 bytes
HEADER = struct.Struct(">I")  # before each symbol sent back: modules a side (then side × side bytes)


def symbol(text: str) -> tuple[int, bytes]:
    """Modules a side (quiet zone apart) and the modules row by row, one byte each: 0 dark, 255 light."""
    barcode = zxingcpp.create_barcode(text, zxingcpp.BarcodeFormat.QRCode, ec_level=EC_LEVEL)
    image = memoryview(barcode.to_image(scale=1, add_quiet_zones=False))
    return image.shape[0], image.tobytes()


def serve() -> None:
    """In the helper: the texts from stdin, each symbol to stdout as soon as it is encoded."""
    data, texts, at = sys.stdin.buffer.read(), [], 0
    while at < len(data):
        (length,), at = LENGTH.unpack_from(data, at), at + LENGTH.size
        texts.append(data[at:at + length].decode("utf8"))
        at += length
    out = sys.stdout.buffer
    for text in texts:
        size, modules = symbol(text)
        out.write(HEADER.pack(size) + modules)
        out.flush()
