"""QR decoders behind one small interface, so the till can switch between
zxing-cpp (the default: more codes, faster) and pyzbar, and measure both."""

from __future__ import annotations

from typing import Protocol

import cv2
import numpy as np

from . import DECODERS
# No QR (21×21 modules at least) fits in fewer pixels; skip the decoder call.
MIN_SIDE = 21


class DecoderUnavailable(RuntimeError):
    """A decoder's library cannot be loaded on this machine (e.g. no libzbar0)."""


class Decoder(Protocol):
    name: str

    def decode(self, image: np.ndarray) -> list[str]:
        """The texts of every QR code in a BGR or grayscale uint8 image; [] if none."""

    def quick_decode(self, image: np.ndarray) -> list[str]:
        """A cheaper look for live frames (the next frame is another chance);
        a decoder without one decodes as `decode` does."""

    def live_decode(self, image: np.ndarray) -> list[str]:
        """`decode` without its costly retries, for live frames; a decoder without one decodes as `decode`."""


def to_gray(image: object) -> np.ndarray | None:
    """A contiguous 8-bit grayscale view of an image, or None if it is no image.

    Accepts gray (H×W or H×W×1), BGR and BGRA (transparent pixels become white,
    as a screenshot with an alpha channel looks on screen), 8 or 16 bits."""
    if not isinstance(image, np.ndarray) or image.size == 0 or image.ndim not in (2, 3):
        return None
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype == np.bool_:
        image = image.astype(np.uint8) * 255
    elif image.dtype != np.uint8:
        return None
    if image.ndim == 3:
        channels = image.shape[2]
        if channels == 1:
            image = image[:, :, 0]
        elif channels == 3:
            image = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_BGR2GRAY)
        elif channels == 4:
            gray = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_BGRA2GRAY)
            alpha = image[:, :, 3]
            if alpha.min() < 255:
                # gray·a + white·(1−a), in integers: a QR drawn on a transparent
                # background would otherwise sit on black and vanish.
                a = alpha.astype(np.uint16)
                gray = ((gray.astype(np.uint16) * a + 255 * (255 - a)) // 255).astype(np.uint8)
            image = gray
        else:
            return None
    return np.ascontiguousarray(image)


def _unique(texts) -> list[str]:
    """Texts in order of first appearance (a decoder may report one code twice)."""
    return list(dict.fromkeys(texts))


class ZxingDecoder:
    """zxing-cpp, QR codes only, text as encoded (no GS1/ECI rewriting)."""

    name = "zxing"

    def __init__(self) -> None:
        import zxingcpp

        self._read = zxingcpp.read_barcodes
        self._formats = zxingcpp.BarcodeFormat.QRCode
        # Plain: the code's own characters. The default (HRI) rewrites control
        # characters and GS1 data for people, which would change a token.
        self._text_mode = zxingcpp.TextMode.Plain
        self._global = zxingcpp.Binarizer.GlobalHistogram

    def decode(self, image: np.ndarray) -> list[str]:
        gray = to_gray(image)
        if gray is None or min(gray.shape) < MIN_SIDE:
            return []
        found = self._read(gray, formats=self._formats, text_mode=self._text_mode)
        return _unique(b.text for b in found if b.valid and b.text)

    def quick_decode(self, image: np.ndarray) -> list[str]:
        """One global threshold instead of local ones: a lit phone screen is
        evenly bright, and on a textured counter the local binarizer spends
        ~15× longer chasing finder-pattern look-alikes."""
        gray = to_gray(image)
        if gray is None or min(gray.shape) < MIN_SIDE:
            return []
        # No downscaled, rotated or inverted retries: on an empty frame they
        # are all the work; a code is found at full size or in the next look.
        found = self._read(gray, formats=self._formats, text_mode=self._text_mode, binarizer=self._global,
                           try_downscale=False, try_rotate=False, try_invert=False)
        return _unique(b.text for b in found if b.valid and b.text)

    def live_decode(self, image: np.ndarray) -> list[str]:
        """The local binarizer without the inverted retry, which doubles an empty frame's cost;
        the Pika app shows dark-on-light codes, and pictures (`decode`) still get it."""
        gray = to_gray(image)
        if gray is None or min(gray.shape) < MIN_SIDE:
            return []
        found = self._read(gray, formats=self._formats, text_mode=self._text_mode, try_invert=False)
        return _unique(b.text for b in found if b.valid and b.text)


class ZbarDecoder:
    """pyzbar over the zbar C library (libzbar0), QR codes only."""

    name = "zbar"

    def __init__(self) -> None:
        try:
            from pyzbar import pyzbar
        except ImportError as exc:  # pyzbar raises ImportError when libzbar is missing
            raise DecoderUnavailable(f"the zbar decoder needs the zbar library (libzbar0): {exc}") from exc
        self._decode = pyzbar.decode
        self._symbols = [pyzbar.ZBarSymbol.QRCODE]

    def decode(self, image: np.ndarray) -> list[str]:
        gray = to_gray(image)
        if gray is None or min(gray.shape) < MIN_SIDE:
            return []
        found = self._decode(gray, symbols=self._symbols)
        # zbar hands back bytes it has already converted to UTF-8 where it could.
        return _unique(d.data.decode("utf-8", errors="replace") for d in found if d.data)

    quick_decode = live_decode = decode  # zbar has one binarizer and no retries to leave out


_BY_NAME = {"zxing": ZxingDecoder, "zbar": ZbarDecoder}


def make_decoder(name: str) -> Decoder:
    """A decoder by name: "zxing" (default) or "zbar"."""
    try:
        cls = _BY_NAME[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown QR decoder {name!r}: choose one of {', '.join(DECODERS)}") from None
    return cls()
