"""Starting the till's window: the Qt application, the display check, the dialogs before it.

Kept apart from the window so the window can be built in tests on the
pytest-qt application, and so `--demo` (cli/demo.py) can set up its backend first.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from ..words.i18n import _
from ..relaunch import till_command

NO_DISPLAY = """\
error: there is no display to show the till's window on.
  On a desktop, run it from a graphical session.
  On a server, give it a virtual screen:   xvfb-run -a {cmd}
  or run it without showing anything:      QT_QPA_PLATFORM=offscreen {cmd}
  or walk through the demo in text:        {headless}
"""


def no_display_message(*args: str) -> str:
    return NO_DISPLAY.format(cmd=till_command(*args), headless=till_command("--demo", "--headless"))


def display_problem(environ=os.environ, platform: str = sys.platform) -> bool:
    """True when Qt would abort for lack of a display (X11 or Wayland on Linux)."""
    if environ.get("QT_QPA_PLATFORM"):
        return False
    return platform.startswith("linux") and not (environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY"))


def make_application(argv: list[str] | None = None):
    from PySide6.QtGui import QFont
    from PySide6.QtWidgets import QApplication

    from .theme import STYLE_SHEET

    app = QApplication.instance() or QApplication(argv or [sys.argv[0]])
    app.setApplicationName("Pika Till")
    app.setOrganizationName("Pika")
    _add_shipped_fonts()
    app.setFont(QFont("DejaVu Sans", 12))
    app.setStyleSheet(STYLE_SHEET)
    return app


def _add_shipped_fonts() -> None:
    """The fonts the till ships (assets/fonts, or the package's own), so the window looks the same on a
    machine without DejaVu (Windows, macOS, a bare Linux) as the PDFs do."""
    from PySide6.QtGui import QFontDatabase

    from .. import resources

    folder = resources.directory("fonts")
    for font in sorted(folder.glob("*.ttf")) if folder.is_dir() else ():
        if QFontDatabase.addApplicationFont(str(font)) < 0:
            logging.getLogger(__name__).warning("Qt could not load the font %s", font)


_error_dialogs: list = []


def install_error_dialog(data_dir: Path, parent=None) -> Path:
    """Uncaught errors go to the till's log file and, on the GUI thread, to a dialog that says the
    till keeps running, instead of the window vanishing. Returns the log file's path."""
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QMessageBox

    from .. import logs

    path = logs.configure(data_dir)

    def show(error: str) -> None:
        box = QMessageBox(QMessageBox.Icon.Critical, _("Something went wrong"),
                          _("The till hit an unexpected error and keeps running. If the last code was "
                            "not answered, scan it again. What happened was written to {path}; if it "
                            "happens again, call your manager.").format(path=path), parent=parent)
        box.setObjectName("errorDialog")
        box.setTextFormat(Qt.TextFormat.PlainText)  # a path or an error text is data, never markup
        box.setDetailedText(error)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        _error_dialogs.append(box)  # without a parent, Python's reference is what keeps it alive
        box.finished.connect(lambda _result, box=box: _error_dialogs.remove(box))
        box.open()  # not exec(): a modal loop inside the failing slot would stall the scans behind it

    logs.install_excepthook(show)
    return path


def store_dialog(problem, parent=None):
    """A store that was damaged (kept, a fresh one started) or cannot be read, said in the till's
    language (pos_app/store/recovery.py); non-blocking, like the error dialog, so the window behind
    it is already selling."""
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QMessageBox

    from .retranslate import Retranslating

    class StoreDialog(Retranslating, QMessageBox):
        # The window reads the till's language from its store after it is shown: the dialog follows.
        def retranslate(self) -> None:
            self.setWindowTitle(_("The till's data file"))
            self.setText(problem.message())

    icon = QMessageBox.Icon.Critical if problem.fatal else QMessageBox.Icon.Warning
    box = StoreDialog(icon, _("The till's data file"), problem.message(), parent=parent)
    box.setObjectName("storeDialog")
    box.setTextFormat(Qt.TextFormat.PlainText)  # the message names files: data, never markup
    box.setDetailedText(f"{problem.code}: {problem.reason}")
    logging.getLogger(__name__).warning("store dialog shown (%s)", problem.code)  # what the cashier was told
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    _error_dialogs.append(box)
    box.finished.connect(lambda _result, box=box: _error_dialogs.remove(box))
    box.open()
    return box


def refuse_to_start(app, problem, quit_after_s: float | None) -> None:
    """No store to sell with: the dialog, and the till ends (non-zero) once it is closed."""
    from PySide6.QtCore import QTimer

    box = store_dialog(problem)
    box.finished.connect(lambda _result: app.quit())
    if quit_after_s is not None:  # scripted runs close it themselves
        QTimer.singleShot(int(quit_after_s * 1000), box.reject)
    app.exec()
    leave(1)


def run_window(store_path: Path, *, camera: str | None = None, quit_after_s: float | None = None,
               screenshot: str | None = None, store_problem=None) -> int:
    """The till on an enrolled store, until the window is closed; `store_problem` (recovery.py's)
    is shown over the window, or instead of it when the till cannot go on."""
    if display_problem():
        sys.stderr.write(no_display_message("--data", "DIR"))
        return 2
    from .main_window import TillWindow

    app = make_application()
    if store_problem is not None and store_problem.fatal:
        refuse_to_start(app, store_problem, quit_after_s)
    install_error_dialog(Path(store_path).parent)
    window = TillWindow(store_path, camera=camera)
    window.show()
    if store_problem is not None:
        store_dialog(store_problem, parent=window)
    schedule_exit(app, window, quit_after_s, screenshot)
    code = app.exec()
    window.shutdown()
    leave(code)


def leave(code: int) -> None:
    """Exit once everything is stopped and saved, before the interpreter tears Qt down.

    By then every thread is joined and every store closed; what is left is
    the interpreter collecting Qt objects in no particular order, which is
    where PySide6 releases have crashed (see tests/test_gui_signals.py), so
    the process ends directly.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def schedule_exit(app, window, quit_after_s: float | None, screenshot: str | None) -> None:
    """For scripted runs (screenshots, smoke tests): grab the window, then quit."""
    if quit_after_s is None:
        return
    from PySide6.QtCore import QTimer

    def finish() -> None:
        if screenshot:
            window.grab().save(screenshot)
        app.quit()
    QTimer.singleShot(int(quit_after_s * 1000), finish)
