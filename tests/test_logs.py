"""The till's log: one rotating, private file in its data folder, and uncaught errors written there
and shown in a dialog instead of the window vanishing."""

from __future__ import annotations

import logging
import stat
import sys
import threading

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from pos_app import logs


@pytest.fixture
def clean_logging():
    hooks = sys.excepthook, threading.excepthook
    handlers = list(logs.log.handlers)
    yield
    for handler in logs.log.handlers:  # configure() may have replaced one made before: not only the last
        if handler not in handlers:
            handler.close()
    logs.log.handlers[:] = handlers
    sys.excepthook, threading.excepthook = hooks


def test_the_log_is_one_private_rotating_file_in_the_data_folder(tmp_path, clean_logging):
    path = logs.configure(tmp_path / "till")
    assert logs.configure(tmp_path / "till") == path  # once per folder
    other = logs.configure(tmp_path / "other")  # one till a process: the log moves, never doubles
    assert [h.baseFilename for h in logs.log.handlers if isinstance(h, logs.PrivateRotatingFileHandler)] == [
        str(other)]
    path = logs.configure(tmp_path / "till")
    logging.getLogger("pos_app.sync").info("round done: %d recorded", 3)
    assert path == (tmp_path / "till" / "till.log").resolve()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "INFO" in path.read_text() and "round done: 3 recorded" in path.read_text()
    for i in range(2_500):  # ~1.5 MB of lines: the file rolls over, older ones kept, all private
        logging.getLogger("pos_app.scan").info("frame %06d %s", i, "x" * 500)
    rolled = path.with_name("till.log.1")
    assert rolled.exists() and path.stat().st_size <= logs.MAX_BYTES
    assert stat.S_IMODE(rolled.stat().st_mode) == 0o600


@pytest.mark.allow_log_warnings(r"^uncaught exception in thread camera$")
def test_an_uncaught_error_in_another_thread_is_logged_with_its_traceback(tmp_path, clean_logging):
    path = logs.configure(tmp_path)
    logs.install_excepthook()

    def broken() -> None:
        raise RuntimeError("camera thread fell over")
    worker = threading.Thread(target=broken, name="camera")
    worker.start()
    worker.join()
    text = path.read_text()
    assert "uncaught exception in thread camera" in text and "RuntimeError: camera thread fell over" in text
    assert "Traceback" in text and "in broken" in text


@pytest.mark.qt_no_exception_capture
@pytest.mark.allow_log_warnings(r"^uncaught exception$")
def test_a_slot_that_raises_is_logged_and_shown_and_the_window_keeps_running(qtbot, tmp_path, clean_logging):
    from pos_app.gui.app import install_error_dialog

    path = install_error_dialog(tmp_path)

    def broken_slot() -> None:
        raise ValueError("a verdict with no reason")
    QTimer.singleShot(0, broken_slot)

    def dialog() -> QMessageBox | None:
        found = [w for w in QApplication.topLevelWidgets()
                 if isinstance(w, QMessageBox) and w.objectName() == "errorDialog" and w.isVisible()]
        return found[0] if found else None
    qtbot.waitUntil(lambda: dialog() is not None, timeout=5000)
    box = dialog()
    assert str(path) in box.text() and "ValueError: a verdict with no reason" in box.detailedText()
    assert box.textFormat() == Qt.TextFormat.PlainText  # a path is data, never markup
    text = path.read_text()
    assert "uncaught exception" in text and "in broken_slot" in text
    ticked = []
    QTimer.singleShot(0, lambda: ticked.append(True))  # the event loop still runs with the dialog open
    qtbot.waitUntil(lambda: ticked == [True], timeout=2000)
    box.close()


@pytest.mark.allow_log_warnings(r"^enroll refused: invalid_code$")
def test_the_cli_logs_into_the_tills_folder(tmp_path, clean_logging):
    from pos_app.cli.commands import open_store

    open_store(str(tmp_path / "till"), must_be_enrolled=False).close()
    logging.getLogger("pos_app.cli").warning("enroll refused: %s", "invalid_code")
    assert "enroll refused: invalid_code" in (tmp_path / "till" / "till.log").read_text()


@pytest.mark.allow_log_warnings(r"^round \d failed$")
def test_a_log_the_till_may_not_write_is_one_line_on_stderr_not_a_traceback_each_time(tmp_path, clean_logging,
                                                                                          capsys):
    folder = tmp_path / "till"
    logs.configure(folder)
    (folder / "till.log").mkdir()  # what the till finds in its place: it cannot open it
    for i in range(3):
        logging.getLogger("pos_app.sync").warning("round %d failed", i)
    err = capsys.readouterr().err
    assert err.count("warning: the till cannot write its log") == 1 and "Traceback" not in err, err
