"""A USB barcode scanner in keyboard mode, recognised anywhere in the window.

A scanner types a whole code in a burst (a few ms a key) and usually closes
it with Enter; people type far slower. This filter watches every key press:
the first keys of a burst pass through (they might be a person's), the rest
are held back, and when the burst ends it is either a scan (emitted, and what
leaked into a text field is taken back out) or a fast typist's roll (the held
keys are given back). A scanner set up without Enter is recognised when a
long burst goes quiet.

A scanner presses Shift for every capital, as a person does, and AltGr for
some characters on a non-US layout: a modifier's own press carries no text,
so it neither ends nor splits a burst, nor counts in it (releases are never
looked at). Ctrl or Alt held with a key is a shortcut and ends the burst.

Gaps are measured with the window system's own key timestamps when it gives
them: keys that queued up while the window was busy (painting a verdict, a
slow slot) are processed late but were typed quickly, and must still count
as one burst. Without timestamps the gap is the time between processing.
"""

from __future__ import annotations

import time

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QApplication, QLineEdit, QWidget

ENTER_KEYS = (Qt.Key.Key_Return, Qt.Key.Key_Enter)
# Keys that only change what the next key types: they belong to the burst around them.
MODIFIER_KEYS = frozenset({
    Qt.Key.Key_Shift, Qt.Key.Key_Control, Qt.Key.Key_Alt, Qt.Key.Key_AltGr, Qt.Key.Key_Meta,
    Qt.Key.Key_Super_L, Qt.Key.Key_Super_R, Qt.Key.Key_Hyper_L, Qt.Key.Key_Hyper_R,
    Qt.Key.Key_CapsLock, Qt.Key.Key_NumLock, Qt.Key.Key_Mode_switch,
})
MAX_SCAN_CHARS = 8192  # longer than any code; the verdict refuses what is longer still


class ScannerListener(QObject):
    """Emits `scanned(text, ended_with_enter)` for each burst that is a scan."""

    scanned = Signal(str, bool)

    def __init__(self, parent: QObject | None = None, *, max_gap_ms: float = 40.0, min_length: int = 6,
                 min_length_without_enter: int = 12, idle_ms: int = 150, passthrough: int = 2):
        super().__init__(parent)
        self.max_gap = max_gap_ms / 1000
        self.min_length = min_length
        self.min_length_without_enter = min_length_without_enter
        self.passthrough = passthrough
        self.enabled = True
        self._idle = QTimer(self, singleShot=True, interval=idle_ms)
        self._idle.timeout.connect(self._went_quiet)
        self._reset()

    def _reset(self) -> None:
        self._chars: list[str] = []
        self._last = 0.0
        self._last_stamp = 0
        self._held = 0
        self._target: QWidget | None = None

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if event.type() != QEvent.Type.KeyPress or not self.enabled:
            return False
        # The app's filter sees an event again for each parent it propagates to;
        # only its first receiver counts.
        focus = QApplication.focusWidget()
        if not isinstance(obj, QWidget) or not (obj is focus or (focus is None and obj.isWindow())):
            return False
        return self._key(obj, event)  # type: ignore[arg-type]

    def _gap(self, now: float, stamp: int) -> float:
        """Seconds since the previous key of the burst, by the window system's clock if both have one."""
        if stamp and self._last_stamp and stamp >= self._last_stamp:
            return (stamp - self._last_stamp) / 1000
        return now - self._last

    def _key(self, receiver: QWidget, event: QKeyEvent) -> bool:
        if event.key() in MODIFIER_KEYS:
            return False
        now = time.monotonic()
        stamp = event.timestamp()
        quick = bool(self._chars) and self._gap(now, stamp) <= self.max_gap
        if event.key() in ENTER_KEYS:
            if quick and len(self._chars) >= self.min_length:
                self._finish_scan(ended_with_enter=True)
                return True
            self._give_back()
            return False
        text = event.text()
        if len(text) != 1 or not text.isprintable() or event.modifiers() & (
                Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier):
            self._went_quiet()
            return False
        if not quick:
            self._went_quiet()
            self._target = receiver
        self._last = now
        self._last_stamp = stamp
        if len(self._chars) < MAX_SCAN_CHARS:
            self._chars.append(text)
        self._idle.start()
        if len(self._chars) > self.passthrough:
            self._held += 1
            return True
        return False

    def _went_quiet(self) -> None:
        self._idle.stop()
        if len(self._chars) >= self.min_length_without_enter:
            self._finish_scan(ended_with_enter=False)
        else:
            self._give_back()

    def _finish_scan(self, *, ended_with_enter: bool) -> None:
        self._idle.stop()
        text = "".join(self._chars)
        leaked = text[: len(text) - self._held]
        target = self._target
        if isinstance(target, QLineEdit) and leaked and target.text().endswith(leaked):
            target.setText(target.text()[: -len(leaked)])
        self._reset()
        self.scanned.emit(text, ended_with_enter)

    def _give_back(self) -> None:
        """A short quick burst was a person's keys: put the held ones where they were going."""
        self._idle.stop()
        held = "".join(self._chars[len(self._chars) - self._held:]) if self._held else ""
        target = self._target
        self._reset()
        if held and isinstance(target, QLineEdit) and not target.isReadOnly():
            target.insert(held)
