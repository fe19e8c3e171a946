"""Widgets that re-read their texts when the UI language changes.

Switching language swaps Qt's translator, which sends every widget a
LanguageChange event; a widget with this mixin answers it by calling its own
`retranslate()`, so the whole window follows without a restart.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent


class Retranslating:
    """Mix in before the Qt widget class; the widget defines `retranslate()`."""

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.LanguageChange:
            self.retranslate()
        super().changeEvent(event)
