"""Where camera frames come from: a webcam by index, a video file, an image
sequence (`feed/%04d.png`) or a folder of pictures, behind one small interface
the scanning worker reads from (the demo and the tests use files, not a webcam)."""

from __future__ import annotations

import glob
import os
import re
import sys
import time
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from .pipeline import ImageUnreadable, read_image_file

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
DEFAULT_CAMERA_FPS = 30.0
DEFAULT_IMAGES_FPS = 15.0
# A webcam that fails this many reads in a row is taken as gone (unplugged):
# one failed read happens on busy USB buses, ten do not.
LOST_AFTER = 10
# Asked of backends that support it, so an unplugged camera cannot block a read for long.
READ_TIMEOUT_MS = 2000
_PRINTF_INT = re.compile(r"%0?\d*d")


class CameraUnavailable(Exception):
    """A frame source that cannot be opened; the message is for the cashier or operator."""


class FrameSource(Protocol):
    description: str
    fps: float
    ended: bool  # a file or sequence ran out (never for a webcam)
    lost: bool  # a webcam stopped delivering (unplugged)

    def read(self) -> np.ndarray | None:
        """The next frame (BGR), or None when none is available now or any more."""

    def close(self) -> None: ...


class _Pacer:
    """Hands out frames of a file no faster than its frame rate, when asked to."""

    def __init__(self, fps: float, realtime: bool):
        self.interval = 1.0 / fps if realtime and fps > 0 else 0.0
        self.due = 0.0

    def wait(self) -> None:
        if not self.interval:
            return
        now = time.monotonic()
        if self.due > now:
            time.sleep(self.due - now)
        self.due = max(now, self.due) + self.interval


class CaptureSource:
    """A `cv2.VideoCapture`: a webcam (`live`), a video file or an image sequence."""

    def __init__(self, capture: cv2.VideoCapture, description: str, *, live: bool, loop: bool = False,
                 fps: float | None = None, realtime: bool = False, lost_after: int = LOST_AFTER):
        self._cap = capture
        self.description = description
        self.live = live
        self.loop = loop and not live
        reported = capture.get(cv2.CAP_PROP_FPS)
        default = DEFAULT_CAMERA_FPS if live else DEFAULT_IMAGES_FPS
        self.fps = float(fps or (reported if 1 <= reported <= 240 else default))
        # Image sequences know their length; reading past it makes cv2 print a warning per loop.
        count = capture.get(cv2.CAP_PROP_FRAME_COUNT)
        self._count = int(count) if not live and count > 0 else 0
        self._index = 0
        self._failures = 0
        self._lost_after = lost_after
        self._pacer = _Pacer(self.fps, realtime and not live)
        self.ended = False
        self.lost = False
        self.closed = False

    def read(self) -> np.ndarray | None:
        if self.closed or self.ended or self.lost:
            return None
        if self._count and self._index >= self._count and not self._rewind():
            return None
        self._pacer.wait()
        ok, frame = self._cap.read()
        if ok and frame is not None and frame.size:
            self._index += 1
            self._failures = 0
            return frame
        if self.live:
            self._failures += 1
            self.lost = self._failures >= self._lost_after
            return None
        if self._index and self._rewind():  # a video whose length was not known ended
            ok, frame = self._cap.read()
            if ok and frame is not None and frame.size:
                self._index = 1
                return frame
        self.ended = True
        return None

    def _rewind(self) -> bool:
        if not self.loop:
            self.ended = True
            return False
        self._index = 0
        return bool(self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0))

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._cap.release()


class FolderSource:
    """Picture files in name order, as frames (a folder, or one screenshot)."""

    def __init__(self, files: list[Path], description: str, *, loop: bool = False, fps: float | None = None,
                 realtime: bool = False):
        self._files = files
        self.description = description
        self.loop = loop
        self.fps = float(fps or DEFAULT_IMAGES_FPS)
        self._index = 0
        self._good = 0  # pictures read in this pass: a loop of only broken files must end
        self._pacer = _Pacer(self.fps, realtime)
        self.ended = False
        self.lost = False
        self.closed = False

    def read(self) -> np.ndarray | None:
        while not (self.closed or self.ended):
            if self._index >= len(self._files):
                if not self.loop or not self._good:
                    self.ended = True
                    return None
                self._index = self._good = 0
            path = self._files[self._index]
            self._index += 1
            try:
                frame = read_image_file(path)
            except ImageUnreadable:
                continue  # one bad picture in a folder is skipped, not fatal
            self._good += 1
            self._pacer.wait()
            return frame
        return None

    def close(self) -> None:
        self.closed = True


def _device_index(spec: object) -> int | None:
    if isinstance(spec, int) and not isinstance(spec, bool):
        return spec
    if isinstance(spec, str) and spec.strip().isdigit():
        return int(spec.strip())
    return None


def _open_camera(index: int, *, fps: float | None) -> CaptureSource:
    # On Linux a camera is a /dev/videoN node: checking it first is instant and
    # spares the log the backend's warnings when there is none.
    if sys.platform.startswith("linux") and not os.path.exists(f"/dev/video{index}"):
        raise CameraUnavailable(f"no camera number {index} on this computer")
    cap = cv2.VideoCapture(index)
    if not cap.isOpened():
        cap.release()
        raise CameraUnavailable(f"camera number {index} cannot be opened (unplugged, or in use by another program?)")
    cap.set(cv2.CAP_PROP_READ_TIMEOUT_MSEC, READ_TIMEOUT_MS)  # ignored where unsupported
    return CaptureSource(cap, f"camera {index}", live=True, fps=fps)


def open_source(spec: int | str | os.PathLike, *, loop: bool = False, fps: float | None = None,
                realtime: bool = False) -> FrameSource:
    """A frame source for a camera index (0 or "0"), a video file, an image
    sequence pattern (`feed/%04d.png`), a folder of pictures or one picture.

    `loop` starts files over at their end; `realtime` paces files at `fps`
    (a webcam paces itself). Raises CameraUnavailable with a plain message."""
    index = _device_index(spec)
    if index is not None:
        return _open_camera(index, fps=fps)
    text = os.fspath(spec)
    path = Path(text)
    if text.startswith("/dev/"):
        cap = cv2.VideoCapture(text)
        if not cap.isOpened():
            cap.release()
            raise CameraUnavailable(f"camera {text} cannot be opened")
        return CaptureSource(cap, f"camera {text}", live=True, fps=fps)
    if _PRINTF_INT.search(text):
        if not glob.glob(_PRINTF_INT.sub("*", glob.escape(text))):
            raise CameraUnavailable(f"no pictures match {text}")
        cap = cv2.VideoCapture(text, cv2.CAP_IMAGES)
        if not cap.isOpened():
            cap.release()
            raise CameraUnavailable(f"the pictures {text} cannot be read as a sequence")
        return CaptureSource(cap, f"pictures {text}", live=False, loop=loop, fps=fps, realtime=realtime)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not files:
            raise CameraUnavailable(f"no pictures in the folder {text}")
        return FolderSource(files, f"pictures in {text}", loop=loop, fps=fps, realtime=realtime)
    if not path.exists():
        raise CameraUnavailable(f"no such file: {text}")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return FolderSource([path], f"picture {text}", loop=loop, fps=fps, realtime=realtime)
    cap = cv2.VideoCapture(text)
    if not cap.isOpened():
        cap.release()
        raise CameraUnavailable(f"{text} is not a video this till can play")
    return CaptureSource(cap, f"video {text}", live=False, loop=loop, fps=fps, realtime=realtime)


def list_cameras(max_index: int = 4) -> list[int]:
    """Indexes of the cameras that open, among 0..max_index-1 (instant when there are none)."""
    found = []
    for index in range(max_index):
        try:
            source = _open_camera(index, fps=None)
        except CameraUnavailable:
            continue
        source.close()
        found.append(index)
    return found
