"""The admin's view of the monthly voucher booklet: the finished editions, to save or print as PDF.

Editions are made, laid out, rendered and billed by the Pika operator (the
platform's admin token), never from a till: a retailer's admin only lists
the finished ones and fetches their PDF, with the admin's staff credentials,
on a background thread. Printing draws the PDF's pages onto a QPrinter, so
any printer the system knows will do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from PySide6.QtCore import QRect, Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..sync.client import Refused, Unreachable
from ..words.i18n import _
from .retranslate import Retranslating
from .tasks import TaskPool

COLUMNS = ("month", "title", "paper", "pages")


class BookletView(Retranslating, QDialog):
    """`open_client()` gives a fresh BackendClient; `staff` is (id, pin) of the admin logged in."""

    finished_task = Signal(str)  # what just completed: "list", "pdf", "print", "error"

    def __init__(self, open_client: Callable, staff: tuple[str, str], parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("bookletView")
        self.setMinimumSize(760, 520)
        self._open_client, self._staff = open_client, staff
        self.tasks = TaskPool(self, workers=1)
        self.editions: list[dict] = []
        self.table = QTableWidget(0, len(COLUMNS), objectName="editionsTable")
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.note = QLabel(objectName="bookletNote", wordWrap=True, textFormat=Qt.TextFormat.PlainText)
        self.save_button = QPushButton(objectName="primary")
        self.print_button = QPushButton(objectName="printPdf")
        self.refresh_button = QPushButton(objectName="refreshEditions")
        self.message = QLabel(textFormat=Qt.TextFormat.PlainText, objectName="bookletMessage", wordWrap=True)
        top = QHBoxLayout()
        top.addWidget(self.note, 1)
        top.addWidget(self.refresh_button)
        actions = QHBoxLayout()
        for button in (self.save_button, self.print_button):
            actions.addWidget(button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.table, 1)
        layout.addLayout(actions)
        layout.addWidget(self.message)
        self.refresh_button.clicked.connect(self.refresh)
        self.save_button.clicked.connect(lambda: self.save_pdf())
        self.print_button.clicked.connect(lambda: self.print_pdf())
        self.table.itemSelectionChanged.connect(self._enable)
        self.retranslate()
        self._enable()
        self.refresh()

    # --- talking to the backend, off the GUI thread -----------------------------------

    def _call(self, what: str, fn: Callable, done: Callable) -> None:
        self.setEnabled(False)
        self.message.setText(_("Asking the backend…"))

        def job():
            with self._open_client() as client:
                return fn(client, *self._staff)

        def finished(result):
            self.setEnabled(True)
            self.message.clear()
            try:
                done(result)
            except (OSError, RuntimeError, ValueError) as exc:  # a file not writable, a printer that failed
                failed(exc)
                return
            self._enable()
            self.finished_task.emit(what)

        def failed(exc: BaseException):
            self.setEnabled(True)
            self.message.setText(_("The backend could not do it: {error}").format(error=exc))
            self._enable()
            self.finished_task.emit("error")
        self.tasks.run(job, finished, failed, told=(Refused, Unreachable))

    def refresh(self) -> None:
        self._call("list", lambda client, sid, pin: client.booklets(sid, pin), self._show)

    def save_pdf(self, path: str | None = None) -> None:
        edition = self.selected()
        if edition is None:
            return
        if path is None:
            path, _filter = QFileDialog.getSaveFileName(self, _("Save the booklet"),
                                                        f"booklet-{edition['month']}.pdf", "PDF (*.pdf)")
            if not path:
                return

        def written(data: bytes) -> None:
            Path(path).write_bytes(data)
            self.message.setText(_("Saved {path}").format(path=path))
        self._call("pdf", lambda client, sid, pin: client.booklet_pdf(edition["id"], sid, pin), written)

    def print_pdf(self, printer=None) -> None:
        """Print the selected edition; `printer` (a QPrinter) skips the dialog (tests print to a file)."""
        edition = self.selected()
        if edition is None:
            return

        from PySide6.QtPrintSupport import QPrintDialog, QPrinter
        target = printer
        if target is None:
            target = QPrinter(QPrinter.PrinterMode.HighResolution)
            if QPrintDialog(target, self).exec() != QDialog.DialogCode.Accepted:
                return

        def printed(images: list) -> None:
            pages = paint_pages(images, target)
            self.message.setText(_("Sent {pages} pages to the printer.").format(pages=pages))
        self._call("print", lambda client, sid, pin: rasterise_pdf(client.booklet_pdf(edition["id"], sid, pin)),
                   printed)

    def open_in_viewer(self, path: str) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(path))

    # --- showing ----------------------------------------------------------------------

    def selected(self) -> dict | None:
        rows = self.table.selectionModel().selectedRows()
        return self.editions[rows[0].row()] if rows else None

    def _show(self, editions: list[dict]) -> None:
        chosen = (self.selected() or {}).get("id")
        # The backend gives a till's admin finished editions only; one that is not is left out all the same.
        self.editions = [e for e in editions if e.get("status") == "done"]
        self.table.setRowCount(len(self.editions))
        for row, edition in enumerate(self.editions):
            for col, name in enumerate(COLUMNS):
                value = edition.get(name)
                self.table.setItem(row, col, QTableWidgetItem("" if value is None else str(value)))
            if edition.get("id") == chosen:
                self.table.selectRow(row)
        if self.selected() is None and self.editions:
            self.table.selectRow(0)

    def _enable(self) -> None:
        ready = self.selected() is not None
        self.save_button.setEnabled(ready)
        self.print_button.setEnabled(ready)

    def retranslate(self) -> None:
        self.setWindowTitle(_("Voucher booklet"))
        self.note.setText(_("Editions are made by the Pika operator. The finished ones are listed here, "
                            "to save or print."))
        self.refresh_button.setText(_("Refresh"))
        self.save_button.setText(_("Save PDF…"))
        self.print_button.setText(_("Print…"))
        self.table.setHorizontalHeaderLabels([_("Month"), _("Title"), _("Paper"), _("Pages")])
        if self.editions:
            self._show(self.editions)


    def done(self, result: int) -> None:
        self.tasks.shutdown()
        super().done(result)


def rasterise_pdf(data: bytes, *, dpi: int = 200) -> list:
    """The PDF's pages as QImages, at print resolution so the QR codes stay sharp (any thread).

    poppler's pdftoppm does the work (a system package the install script
    brings; PySide6's wheels carry no QtPdf).
    """
    import subprocess
    import tempfile

    from PySide6.QtGui import QImage

    with tempfile.TemporaryDirectory(prefix="pika-print-") as folder:
        source = Path(folder) / "booklet.pdf"
        source.write_bytes(data)
        try:
            subprocess.run(["pdftoppm", "-r", str(dpi), "-png", str(source), str(Path(folder) / "page")],
                           check=True, capture_output=True, timeout=300)
        except (OSError, subprocess.SubprocessError) as exc:
            raise RuntimeError(f"the PDF could not be prepared for printing: {exc}") from exc
        images = [QImage(str(path)) for path in sorted(Path(folder).glob("page-*.png"))]
    if not images or any(image.isNull() for image in images):
        raise ValueError("the backend's PDF could not be read")
    return images


def paint_pages(images: list, printer) -> int:
    """One image a page, scaled to the printer's page; returns the pages printed."""
    from PySide6.QtGui import QPainter

    painter = QPainter()
    if not painter.begin(printer):
        raise RuntimeError("the printer could not be started")
    try:
        for index, image in enumerate(images):
            if index:
                printer.newPage()
            scaled = image.size().scaled(painter.viewport().size(), Qt.AspectRatioMode.KeepAspectRatio)
            painter.drawImage(QRect(0, 0, scaled.width(), scaled.height()), image)
    finally:
        painter.end()
    return len(images)
