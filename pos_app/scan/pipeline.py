"""One way from a picture to QR texts, shared by camera frames, image files,
the headless `decode` command and the benchmarks: grayscale once, size capped,
a cheap look first for live frames, a second look at small pictures."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from .decoders import Decoder, to_gray
from .image_header import image_size

# Larger frames are shrunk before decoding: time grows with pixels, and a
# code a cashier can hold up is never smaller than a few pixels per module at 4096.
MAX_SIDE = 4096
# Pictures up to this side (thumbnails, cropped screenshots) get a second look
# at twice the size when the first finds nothing: decoders miss 1–2 px modules.
# Camera frames (640×480 and up) never do, so an empty frame costs one pass.
SMALL_SIDE = 480
# Live frames look for light-on-dark (inverted) codes only one frame in this
# many: the retry doubles an empty frame's cost, and at 15–30 fps a dark-mode
# code is still read within a second or two.
INVERTED_EVERY = 25
MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_FILE_PIXELS = 40_000_000
MAX_FILE_SIDE = 16384


class ImageUnreadable(Exception):
    """An image file that cannot be scanned: missing, not a picture, too large."""


class ScanPipeline:
    """Frames in, QR texts out, through one decoder.

    Live camera frames (the default) get the decoder's quick look at full
    size, then its full look at half size: a frame costs ~1–2 ms, and a code
    missed in one frame is read in the next. `thorough` (image files, where
    there is no next frame) looks at full size with both."""

    def __init__(self, decoder: Decoder, *, thorough: bool = False, max_side: int = MAX_SIDE,
                 small_side: int = SMALL_SIDE):
        self.decoder = decoder
        self.thorough = thorough
        self.max_side = max_side
        self.small_side = small_side
        self._live_frames = 0

    def scan(self, frame: np.ndarray) -> list[str]:
        """The texts of the QR codes in a frame (BGR, BGRA or gray); [] if none or not an image."""
        gray = to_gray(frame)
        if gray is None:
            return []
        side = max(gray.shape)
        if side > self.max_side:
            scale = self.max_side / side
            gray = cv2.resize(gray, (max(1, round(gray.shape[1] * scale)), max(1, round(gray.shape[0] * scale))),
                              interpolation=cv2.INTER_AREA)
        if side <= self.small_side:
            return (self.decoder.decode(gray) or self.decoder.quick_decode(gray)
                    or self.decoder.decode(cv2.resize(gray, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)))
        if self.thorough:
            return self.decoder.decode(gray) or self.decoder.quick_decode(gray)
        texts = self.decoder.quick_decode(gray)
        if texts:
            return texts
        # Half size also averages away sensor noise the local binarizer would chase.
        half = cv2.resize(gray, (gray.shape[1] // 2, gray.shape[0] // 2), interpolation=cv2.INTER_AREA)
        self._live_frames += 1
        if self._live_frames % INVERTED_EVERY == 0:
            return self.decoder.decode(half)
        return self.decoder.live_decode(half)


def read_image_file(path: str | os.PathLike) -> np.ndarray:
    """A PNG, JPEG, WebP or BMP file as an array (BGR, BGRA or gray), or ImageUnreadable."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise ImageUnreadable(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ImageUnreadable(f"{path}: is a folder, not an image") from None
    except OSError as exc:
        raise ImageUnreadable(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if len(data) > MAX_FILE_BYTES:
        raise ImageUnreadable(f"{path}: larger than {MAX_FILE_BYTES // (1024 * 1024)} MB")
    header = image_size(data)
    if header is None:
        raise ImageUnreadable(f"{path}: not a PNG, JPEG, WebP or BMP image")
    kind, width, height = header
    if width == 0 or height == 0 or width * height > MAX_FILE_PIXELS or max(width, height) > MAX_FILE_SIDE:
        raise ImageUnreadable(f"{path}: a {width}×{height} {kind.upper()} is too large to scan "
                              f"(at most {MAX_FILE_PIXELS // 1_000_000} megapixels)")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None or image.size == 0:
        raise ImageUnreadable(f"{path}: a damaged {kind.upper()} image")
    return image


def scan_image_file(path: str | os.PathLike, decoder: Decoder) -> list[str]:
    """The QR texts in an image file (a customer's screenshot), or ImageUnreadable."""
    return ScanPipeline(decoder, thorough=True).scan(read_image_file(path))
