"""The admin's booklet view in the till, against the real backend: finished editions listed, saved, printed.

Editions are the Pika operator's to make (finding 5): the view has no create or render action, lists only
what the operator finished, and says so.
"""

from __future__ import annotations

import subprocess

from PySide6.QtWidgets import QApplication, QPushButton


def pdf_pages(path) -> int:
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True).stdout
    return int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")))


def _render_as_operator(till_env) -> str:
    api = till_env.api
    eid = api.demo["booklet"]["edition_id"]
    api.ok(api.client.post(f"/booklets/{eid}/render", headers=api.admin, json={}))
    return eid


def test_only_an_admin_sees_the_booklet(qtbot, make_window, till_env):
    window = make_window(role="manager")
    assert not window.booklet_button.isVisible()
    assert window.open_booklet() is None


def test_the_view_lists_only_finished_editions_and_makes_none(qtbot, make_window, till_env):
    window = make_window(role="admin")
    view = window.open_booklet()
    with qtbot.waitSignal(view.finished_task, timeout=10000, check_params_cb=lambda w: w == "list"):
        pass
    assert view.table.rowCount() == 0  # the demo's edition is a draft: the operator has not finished it
    assert not view.save_button.isEnabled() and not view.print_button.isEnabled()
    assert "Pika" in view.note.text()
    names = {button.objectName() for button in view.findChildren(QPushButton)}
    assert not names & {"createEdition", "renderEdition"} and not hasattr(view, "render_button")

    eid = _render_as_operator(till_env)
    with qtbot.waitSignal(view.finished_task, timeout=10000, check_params_cb=lambda w: w == "list"):
        view.refresh_button.click()
    assert [e["id"] for e in view.editions] == [eid] and view.selected()["id"] == eid
    view.close()


def test_admin_saves_and_prints_a_finished_edition(qtbot, make_window, till_env, tmp_path):
    from PySide6.QtPrintSupport import QPrinter

    _render_as_operator(till_env)
    window = make_window(role="admin")
    assert window.booklet_button.isVisible()
    view = window.open_booklet()
    qtbot.waitUntil(lambda: view.table.rowCount() > 0, timeout=10000)
    assert view.selected() is not None and view.save_button.isEnabled()

    saved = tmp_path / "booklet.pdf"
    with qtbot.waitSignal(view.finished_task, timeout=30000, check_params_cb=lambda w: w == "pdf"):
        view.save_pdf(str(saved))
    assert saved.read_bytes().startswith(b"%PDF") and pdf_pages(saved) >= 1

    printer = QPrinter(QPrinter.PrinterMode.ScreenResolution)
    printer.setOutputFormat(QPrinter.OutputFormat.PdfFormat)
    printed = tmp_path / "printed.pdf"
    printer.setOutputFileName(str(printed))
    with qtbot.waitSignal(view.finished_task, timeout=30000, check_params_cb=lambda w: w == "print"):
        view.print_pdf(printer)
    assert pdf_pages(printed) == pdf_pages(saved)
    view.close()
    assert QApplication.activeModalWidget() is None


def test_the_backend_refusing_is_said_plainly(qtbot, make_window, till_env):
    window = make_window(role="admin")
    view = window.open_booklet()
    qtbot.waitUntil(lambda: view.isEnabled(), timeout=10000)
    till_env.online = False
    with qtbot.waitSignal(view.finished_task, timeout=10000) as blocker:
        view.refresh_button.click()
    assert blocker.args[0] == "error"
    assert view.message.text()
    view.close()
