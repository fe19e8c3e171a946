"""The admin's booklet view in the till, against the real backend: list, render, save and print the PDF."""

from __future__ import annotations

import subprocess

from PySide6.QtWidgets import QApplication


def pdf_pages(path) -> int:
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True).stdout
    return int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")))


def test_only_an_admin_sees_the_booklet(qtbot, make_window, till_env):
    window = make_window(role="manager")
    assert not window.booklet_button.isVisible()
    assert window.open_booklet() is None


def test_admin_lists_renders_saves_and_prints_an_edition(qtbot, make_window, till_env, tmp_path):
    from PySide6.QtPrintSupport import QPrinter

    window = make_window(role="admin")
    assert window.booklet_button.isVisible()
    view = window.open_booklet()
    qtbot.waitSignal(view.finished_task, timeout=10000).wait() if not view.editions else None
    qtbot.waitUntil(lambda: view.table.rowCount() > 0, timeout=10000)
    assert view.selected() is not None

    with qtbot.waitSignal(view.finished_task, timeout=10000, check_params_cb=lambda w: w == "create"):
        view.month.setText("2027-03")
        view.create_button.click()
    qtbot.waitUntil(lambda: any(e["month"] == "2027-03" for e in view.editions), timeout=10000)
    view.table.selectRow(next(i for i, e in enumerate(view.editions) if e["month"] == "2027-03"))
    assert not view.save_button.isEnabled()  # nothing rendered yet

    with qtbot.waitSignal(view.finished_task, timeout=60000, check_params_cb=lambda w: w == "render"):
        view.render_button.click()
    qtbot.waitUntil(lambda: (view.selected() or {}).get("status") == "done", timeout=30000)
    assert view.save_button.isEnabled() and view.print_button.isEnabled()

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


def test_a_bad_month_is_refused_plainly(qtbot, make_window, till_env):
    window = make_window(role="admin")
    view = window.open_booklet()
    qtbot.waitUntil(lambda: view.table.rowCount() > 0, timeout=10000)
    for month in ("2027-13", "garbage", "", "9" * 7):
        with qtbot.waitSignal(view.finished_task, timeout=10000) as blocker:
            view.month.setText(month)
            view.create_button.click()
        assert blocker.args[0] == "error"
        assert view.message.text()
    view.close()
