"""Codes from image files (customers send screenshots): every format the till
accepts reads back, and a file that is not a picture, or is one too large to
hold in memory, is refused with ImageUnreadable before cv2 allocates it."""

from __future__ import annotations

import struct
import time
import zlib

import cv2
import numpy as np
import pytest

from pos_app.core import tokens
from pos_app.scan.decoders import make_decoder
from pos_app.scan.image_header import image_size
from pos_app.scan.pipeline import MAX_FILE_BYTES, ImageUnreadable, scan_image_file
from scan_fixtures import on_frame, personal_tokens, qr_picture


@pytest.fixture(scope="module")
def token() -> str:
    return personal_tokens(tokens.generate_private_key(), 1)[0]


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_header_bomb(width: int, height: int) -> bytes:
    """A well-formed PNG start claiming width×height 8-bit gray pixels, with a few real rows."""
    rows = zlib.compress(b"\x00" * (width + 1) * 16)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + _png_chunk(b"IDAT", rows) + _png_chunk(b"IEND", b""))


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp", ".bmp"])
def test_each_format_reads_back_and_its_header_gives_its_size(tmp_path, token, suffix):
    frame = on_frame(qr_picture(token), size=(1000, 600))
    path = tmp_path / f"screenshot{suffix}"
    assert cv2.imwrite(str(path), frame)
    assert image_size(path.read_bytes())[1:] == (1000, 600)
    for name in ("zxing", "zbar"):
        assert scan_image_file(path, make_decoder(name)) == [token]


@pytest.mark.parametrize("chunk, quality, alpha", [("VP8 ", 90, False), ("VP8L", 101, False), ("VP8X", 90, True)])
def test_every_webp_header_kind_gives_its_size(chunk, quality, alpha):
    """Lossy, lossless (quality > 100) and extended (lossy with alpha) WebP."""
    image = np.full((37, 53, 4 if alpha else 3), 200, np.uint8)
    ok, data = cv2.imencode(".webp", image, [cv2.IMWRITE_WEBP_QUALITY, quality])
    assert ok and bytes(data[12:16]) == chunk.encode()
    assert image_size(data.tobytes()) == ("webp", 53, 37)


def test_a_header_bomb_is_refused_before_decoding(tmp_path):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_header_bomb(20_000, 20_000))
    assert bomb.stat().st_size < 2_000
    started = time.perf_counter()
    with pytest.raises(ImageUnreadable, match="20000×20000 PNG is too large"):
        scan_image_file(bomb, make_decoder("zxing"))
    assert time.perf_counter() - started < 0.5  # refused from the header, not after allocating 400 MB


def test_files_that_are_not_pictures_are_refused(tmp_path):
    decoder = make_decoder("zxing")
    text = tmp_path / "voucher.png"
    text.write_text("eyJhbGciOiJFUzI1NiJ9 — a token pasted into a file named .png\n")
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    real = tmp_path / "real.png"
    cv2.imwrite(str(real), qr_picture("HELLO"))
    cut = tmp_path / "cut.png"
    cut.write_bytes(real.read_bytes()[: real.stat().st_size // 2])
    huge = tmp_path / "huge.bmp"
    with huge.open("wb") as f:  # sparse: no disk used
        f.truncate(MAX_FILE_BYTES + 1)
    cases = {text: "not a PNG, JPEG, WebP or BMP", empty: "not a PNG", cut: "damaged PNG",
             tmp_path / "missing.png": "no such file", tmp_path: "is a folder", huge: "larger than 64 MB"}
    for path, message in cases.items():
        with pytest.raises(ImageUnreadable, match=message):
            scan_image_file(path, decoder)
    assert scan_image_file(real, decoder) == ["HELLO"]


def test_a_picture_without_a_code_gives_no_texts(tmp_path):
    path = tmp_path / "cat.jpg"
    cv2.imwrite(str(path), np.random.default_rng(5).integers(0, 256, (480, 640, 3), dtype=np.uint8))
    assert scan_image_file(path, make_decoder("zxing")) == []
