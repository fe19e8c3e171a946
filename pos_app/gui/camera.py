"""The camera for the window: frames read and decoded on a worker thread, previewed on the GUI.

The worker owns the capture device and the decoder; it sends the GUI small
preview images (at most `preview_fps`) and each text it decodes. A camera that
vanishes mid-shift is reported and retried every few seconds, never a freeze.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget

from ..store.settings import SETTINGS
from ..words.i18n import _
from .retranslate import Retranslating

log = logging.getLogger(__name__)
RETRY_S = 2.0


class CameraFeed(QObject):
    """Reads frames from a camera, video file or image sequence; decodes each one."""

    preview = Signal(QImage)
    decoded = Signal(str)
    state_changed = Signal(str, str)  # state, detail: running / lost / unavailable / ended / stopped

    def __init__(self, spec: str | int, *, decoder: str = SETTINGS["decoder"].default, loop: bool = False,
                 preview_fps: float = 25.0, preview_width: int = 640, realtime: bool = True,
                 opener: Callable | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self.spec, self.decoder_name, self.loop = spec, decoder, loop
        self.realtime = realtime  # a file plays at its frame rate, like a camera; benches run it flat out
        self._opener = opener  # how a spec becomes a frame source (tests give a camera that unplugs)
        self.preview_interval = 1.0 / preview_fps
        self.preview_width = preview_width
        self.state = "stopped"
        self.frames = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="camera", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 3.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _set_state(self, state: str, detail: str = "") -> None:
        if state != self.state:
            self.state = state
            self.state_changed.emit(state, detail)

    def _run(self) -> None:
        from ..scan.decoders import make_decoder
        from ..scan.frames import CameraUnavailable, open_source
        from ..scan.pipeline import ScanPipeline

        pipeline = ScanPipeline(make_decoder(self.decoder_name))
        opener = self._opener or open_source
        while not self._stop.is_set():
            try:
                source = opener(self.spec, loop=self.loop)
            except CameraUnavailable as exc:
                self._set_state("unavailable" if self.state != "lost" else "lost", str(exc))
                self._stop.wait(RETRY_S)
                continue
            try:
                self._set_state("running", source.description)
                ended = self._read_frames(source, pipeline)
            finally:
                source.close()
            if ended:
                self._set_state("ended", "")
                return
            if not self._stop.is_set():
                self._set_state("lost", "")
                self._stop.wait(RETRY_S)
        self._set_state("stopped", "")

    def _read_frames(self, source, pipeline) -> bool:
        """Frames until stopped (False), lost (False) or the file ended (True)."""
        import cv2

        live = getattr(source, "live", False)
        pace = 1.0 / source.fps if self.realtime and source.fps and not live else 0.0
        next_preview = 0.0
        while not self._stop.is_set():
            started = time.monotonic()
            frame = source.read()
            if frame is None:
                if getattr(source, "lost", False):
                    return False
                if getattr(source, "ended", True):
                    return True
                self._stop.wait(0.01)  # a camera that missed a frame: ask again
                continue
            self.frames += 1
            for text in pipeline.scan(frame):
                self.decoded.emit(text)
            if started >= next_preview:
                # Keep to the rate on average: stepping from `started` would halve a
                # 30 fps camera to 15 previews a second under a 20 fps cap.
                next_preview = max(next_preview + self.preview_interval, started - self.preview_interval)
                height, width = frame.shape[:2]
                scale = self.preview_width / width
                small = cv2.resize(frame, (self.preview_width, max(1, int(height * scale))),
                                   interpolation=cv2.INTER_AREA)
                if small.ndim == 2:
                    small = cv2.cvtColor(small, cv2.COLOR_GRAY2RGB)
                else:
                    small = cv2.cvtColor(small, cv2.COLOR_BGR2RGB)
                h, w = small.shape[:2]
                self.preview.emit(QImage(small.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy())
            if pace:  # a file plays at its own speed, like a camera would
                self._stop.wait(max(0.0, pace - (time.monotonic() - started)))
        return False


class CameraView(Retranslating, QLabel):
    """The preview, or a plain sentence when there is no picture."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("cameraView")
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setMinimumSize(320, 180)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setWordWrap(True)
        self.setTextFormat(Qt.TextFormat.PlainText)  # a camera's error text is data, never markup
        self._state, self._detail = "off", ""
        self._image: QImage | None = None
        self.retranslate()

    def show_frame(self, image: QImage) -> None:
        self._image = image
        if self._state == "running":
            self.setPixmap(QPixmap.fromImage(image).scaled(
                self.size(), Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.FastTransformation))

    def set_state(self, state: str, detail: str = "") -> None:
        self._state, self._detail = state, detail
        self.retranslate()

    def retranslate(self) -> None:
        if self._state == "running":
            if self._image is None:
                self.setText(_("Camera starting…"))
            return
        texts = {
            "off": _("No camera selected. Scan with the scanner or type the code."),
            "unavailable": _("No camera found. Scan with the scanner or type the code; "
                             "a manager can pick a camera in Settings."),
            "lost": _("The camera stopped sending pictures (unplugged?). Trying again… "
                      "You can still scan or type codes."),
            "ended": _("The sample camera feed has ended."),
            "stopped": _("Camera off."),
        }
        self.clear()
        self.setText(texts.get(self._state, ""))

