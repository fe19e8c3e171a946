"""Qt's own texts (dialog buttons, context menus) in the UI language, from PySide6's qtbase_*.qm.

There is no Guaraní catalog for Qt; Guaraní speakers read Spanish, so it
falls back to Spanish.
"""

from __future__ import annotations

from PySide6.QtCore import QCoreApplication, QLibraryInfo, QTranslator

QT_CATALOG = {"es": "qtbase_es", "gn": "qtbase_es", "pt": "qtbase_pt_BR", "en": None}

_installed: QTranslator | None = None


def install(language: str) -> bool:
    """Swap Qt's translator; every widget then receives a LanguageChange event."""
    global _installed
    app = QCoreApplication.instance()
    if _installed is not None:
        app.removeTranslator(_installed)
        _installed = None
    name = QT_CATALOG.get(language)
    if name is None:
        return False
    translator = QTranslator(app)
    if not translator.load(name, QLibraryInfo.path(QLibraryInfo.LibraryPath.TranslationsPath)):
        return False
    app.installTranslator(translator)
    _installed = translator
    return True
