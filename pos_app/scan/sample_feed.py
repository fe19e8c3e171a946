"""A made-up camera feed for the demo and the tests: voucher QR codes on a
phone held over a counter, tilted and a little blurred, between empty frames.

A phone may show a caption under its code (the voucher's discount and title,
as the customer's app shows them); the caller writes it, in the till's words,
and gives the font to draw it with (any Unicode: Guaraní, accents)."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np

FRAME_NAME = "frame_%04d.jpg"
JPEG_QUALITY = 90  # JPEG writes ~4× faster than PNG; at 90 the codes still read
MODULE_PX = 5  # a phone held ~25 cm from a 720p webcam shows a v12 code at about this scale
QUIET_MODULES = 4


def _qr_matrix(text: str) -> np.ndarray:
    """The code's modules (0 = dark, 255 = light) at error correction M, no quiet zone."""
    import zxingcpp

    barcode = zxingcpp.create_barcode(text, zxingcpp.BarcodeFormat.QRCode, ec_level="M")
    return np.asarray(barcode.to_image(scale=1, add_quiet_zones=False))


def _phone(text: str, caption: Sequence[str] = (), font: str | os.PathLike | None = None) -> np.ndarray:
    """A phone screen with the code on it, and its caption lines under it, in a dark case (BGR)."""
    modules = _qr_matrix(text)
    code = cv2.resize(modules, None, fx=MODULE_PX, fy=MODULE_PX, interpolation=cv2.INTER_NEAREST)
    side = code.shape[0] + 2 * QUIET_MODULES * MODULE_PX
    screen_w, screen_h = side + 40, int((side + 40) * 1.75)
    screen = np.full((screen_h, screen_w, 3), (250, 246, 242), np.uint8)
    cv2.rectangle(screen, (0, 0), (screen_w, 70), (64, 160, 40), -1)  # the app's green title bar
    cv2.putText(screen, "Pika", (16, 50), cv2.FONT_HERSHEY_SIMPLEX, 1.4, (255, 255, 255), 3, cv2.LINE_AA)
    top = 110
    left = (screen_w - code.shape[1]) // 2
    screen[top:top + code.shape[0], left:left + code.shape[1]] = code[:, :, None]
    _caption(screen, list(caption) or ["show at the till"], top + side + 8, font)
    bezel = 18
    phone = np.full((screen_h + 2 * bezel, screen_w + 2 * bezel, 3), (28, 28, 30), np.uint8)
    phone[bezel:-bezel, bezel:-bezel] = screen
    return phone


def _caption(screen: np.ndarray, lines: list[str], top: int, font: str | os.PathLike | None) -> None:
    """Lines of text from `top` down, the first bold and larger (the discount), each shrunk to the screen's width."""
    if font is None:  # Hershey fonts: ASCII only, enough for the tests' plain captions
        for i, line in enumerate(lines):
            cv2.putText(screen, line.encode("ascii", "replace").decode(), (24, top + 30 + 44 * i),
                        cv2.FONT_HERSHEY_SIMPLEX, 1.0, (60, 60, 60), 2, cv2.LINE_AA)
        return
    from PIL import Image, ImageDraw, ImageFont

    image = Image.fromarray(screen[:, :, ::-1])
    draw = ImageDraw.Draw(image)
    width = screen.shape[1] - 40
    y = top
    for i, line in enumerate(lines):
        size = 44 if i == 0 else 26
        face = ImageFont.truetype(str(font), size)
        while size > 12 and draw.textlength(line, font=face) > width:
            size -= 2
            face = ImageFont.truetype(str(font), size)
        draw.text((20, y), line, font=face, fill=(30, 110, 20) if i == 0 else (60, 60, 60))
        y += int(size * 1.35)
    screen[:, :] = np.asarray(image)[:, :, ::-1]


def _counter(size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A wooden counter top under warm light: a soft gradient and some grain."""
    w, h = size
    x = np.linspace(0.0, 1.0, w, dtype=np.float32)[None, :]
    y = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None]
    light = 0.75 + 0.25 * np.cos((x - 0.4) * 2.2) * np.cos((y - 0.3) * 1.8)
    grain = cv2.resize(rng.normal(0, 1, (h // 8, w // 2)).astype(np.float32), (w, h))
    base = np.array([70, 110, 150], np.float32)  # BGR brown
    image = (light[..., None] * base) * (1 + 0.06 * grain[..., None])
    return np.clip(image, 0, 255).astype(np.uint8)


def _place(frame: np.ndarray, phone: np.ndarray, t: float, rng: np.random.Generator) -> None:
    """Draws the phone into the frame as a hand holds it: off-centre, turned, tilted."""
    fh, fw = frame.shape[:2]
    ph, pw = phone.shape[:2]
    scale = min(0.85 * fh / ph, 1.0) * (0.93 + 0.05 * math.sin(t * 2.1))
    angle = math.radians(12 * math.sin(t * 1.3) + rng.uniform(-2, 2))
    cx = fw * (0.5 + 0.12 * math.sin(t * 0.9)) + rng.uniform(-6, 6)
    cy = fh * 0.5 + rng.uniform(-6, 6)
    tilt = 0.08 * math.sin(t * 1.7)  # perspective: one edge a little farther away
    hw, hh = pw * scale / 2, ph * scale / 2
    corners = np.array([[-hw * (1 - tilt), -hh], [hw * (1 + tilt), -hh], [hw * (1 + tilt), hh],
                        [-hw * (1 - tilt), hh]], np.float32)
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]], np.float32)
    dst = corners @ rot.T + np.array([cx, cy], np.float32)
    x0, y0 = np.floor(dst.min(axis=0)).astype(int)
    x1, y1 = np.ceil(dst.max(axis=0)).astype(int)
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, fw), min(y1, fh)
    src = np.array([[0, 0], [pw, 0], [pw, ph], [0, ph]], np.float32)
    matrix = cv2.getPerspectiveTransform(src, dst - np.array([x0, y0], np.float32))
    roi = frame[y0:y1, x0:x1]
    # Warping only the phone's bounding box keeps a frame at a few milliseconds.
    cv2.warpPerspective(phone, matrix, (x1 - x0, y1 - y0), dst=roi, flags=cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_TRANSPARENT)
    sigma = 0.4 + 0.5 * (0.5 + 0.5 * math.sin(t * 2.7))  # focus hunting
    cv2.GaussianBlur(roi, (0, 0), sigma, dst=roi)


def render_frames(texts: list[str], *, size: tuple[int, int] = (1280, 720), frames_per_code: int = 8,
                  blank_frames: int = 4, seed: int = 7, captions: Sequence[Sequence[str]] | None = None,
                  font: str | os.PathLike | None = None) -> Iterator[np.ndarray]:
    """The feed's BGR frames, in order: each text on `frames_per_code` frames,
    after `blank_frames` of the empty counter, and the counter again at the end;
    `captions[i]` under text i's code."""
    for frame in _frames(texts, size, frames_per_code, blank_frames, seed, captions, font):
        yield frame.copy()


def _frames(texts: list[str], size: tuple[int, int], frames_per_code: int, blank_frames: int,
            seed: int, captions: Sequence[Sequence[str]] | None = None,
            font: str | os.PathLike | None = None) -> Iterator[np.ndarray]:
    """Like `render_frames`, but every frame is drawn in one buffer, overwritten
    by the next: a fresh 2.7 MB array per frame costs as much as drawing it."""
    rng = np.random.default_rng(seed)
    w, h = size
    counter = _counter(size, rng)
    # Sensor noise: two fields drawn once, read at a new offset each frame
    # (drawing fresh noise would cost more than the rest of the frame).
    pad = 32
    noise_up = rng.integers(0, 7, (h + pad, w + pad, 3), dtype=np.uint8)
    noise_down = rng.integers(0, 7, (h + pad, w + pad, 3), dtype=np.uint8)
    frame = np.empty_like(counter)
    t = 0.0
    captions = list(captions or ())
    for i, text in enumerate(list(texts) + [None]):
        for _ in range(blank_frames):
            np.copyto(frame, counter)
            yield _noisy(frame, noise_up, noise_down, rng)
        if text is None:
            return
        phone = _phone(text, captions[i] if i < len(captions) else (), font)
        for _ in range(frames_per_code):
            np.copyto(frame, counter)
            _place(frame, phone, t, rng)
            t += 0.35
            yield _noisy(frame, noise_up, noise_down, rng)


def _noisy(frame: np.ndarray, noise_up: np.ndarray, noise_down: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = frame.shape[:2]
    dy, dx = rng.integers(0, noise_up.shape[0] - h), rng.integers(0, noise_up.shape[1] - w)
    cv2.add(frame, noise_up[dy:dy + h, dx:dx + w], dst=frame)
    cv2.subtract(frame, noise_down[dx % 7:dx % 7 + h, dy % 7:dy % 7 + w], dst=frame)
    return frame


def write_sample_feed(texts: list[str], folder: str | os.PathLike, *, size: tuple[int, int] = (1280, 720),
                      frames_per_code: int = 8, blank_frames: int = 4, seed: int = 7,
                      captions: Sequence[Sequence[str]] | None = None, font: str | os.PathLike | None = None) -> str:
    """Writes the feed (see `render_frames`) as JPEG frames into `folder` and
    returns their cv2 pattern, e.g. `folder/frame_%04d.jpg`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
    for n, frame in enumerate(_frames(texts, size, frames_per_code, blank_frames, seed, captions, font)):
        cv2.imwrite(str(folder / (FRAME_NAME % n)), frame, params)
    return str(folder / FRAME_NAME)
