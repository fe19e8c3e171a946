"""A distinct sound for accepted and for refused, so the cashier hears the verdict.

QSoundEffect plays from memory with low latency. A machine without an audio
device (most servers, CI) stays silent: nothing here raises or warns.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QLoggingCategory, QObject, QUrl

from .. import resources

SOUNDS_DIR = resources.directory("sounds")
log = logging.getLogger(__name__)


class VerdictSounds(QObject):
    def __init__(self, parent: QObject | None = None, *, enabled: bool = True):
        super().__init__(parent)
        self.enabled = enabled
        self._effects = {}

    def load(self) -> None:
        """Open the audio output (Qt Multimedia takes a moment: the window calls this once it is shown)."""
        if not self.enabled or self._effects:
            return
        # Qt Multimedia reports the missing PipeWire library of a machine without sound at import.
        QLoggingCategory.setFilterRules("qt.multimedia.symbolsresolver=false")
        try:
            from PySide6.QtMultimedia import QMediaDevices, QSoundEffect
        except ImportError as exc:  # Qt Multimedia missing its system libraries: stay silent
            log.info("no sound: %s", exc)
            self.enabled = False
            return
        if QMediaDevices.defaultAudioOutput().isNull():
            log.info("no sound: this machine has no audio output")
            self.enabled = False
            return
        for name in ("accepted", "refused"):
            effect = QSoundEffect(self)
            effect.setSource(QUrl.fromLocalFile(str(SOUNDS_DIR / f"{name}.wav")))
            effect.setVolume(0.8)
            self._effects[name] = effect

    def play(self, accepted: bool) -> None:
        effect = self._effects.get("accepted" if accepted else "refused")
        if effect is not None:
            effect.play()
