"""The report view's exports: the days' attempts as CSV, the report on screen as PDF.

Apart from the view so the view only shows a report. The CSV is made on the
store's thread and written by the view's task pool; the PDF is rendered and
written by the task pool. The view's message line and its `exported` and
`failed` signals say how it went.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog

from ...words import i18n
from ...words.i18n import _


class ExportController:
    """Exports for `view`, the ReportView whose days and report they save."""

    def __init__(self, view):
        self.view = view

    def export_csv(self, path: str | None = None) -> None:
        """The days' attempts as CSV (`store.report.day_csv`); `path` skips the dialog (tests)."""
        view = self.view
        first, last, language = view.first, view.last, i18n.language()
        if path is None:
            name = f"report-{first.isoformat()}" + (f"-{last.isoformat()}" if last != first else "") + ".csv"
            path, _filter = QFileDialog.getSaveFileName(view, _("Save the report as CSV"), name,
                                                        _("CSV files (*.csv)"))
            if not path:
                return
        view.csv_button.setEnabled(False)
        view.message.setText(_("Saving…"))

        def write(text: str) -> None:
            view.tasks.run(lambda: Path(path).write_bytes(text.encode("utf-8")), lambda _none: self._saved(path),
                           self._failed)

        def job(store):
            from ...store.report import day_csv
            return day_csv(store, first, last, language=language)
        view.store.submit(job, write, self._failed)

    def export_pdf(self, path: str | None = None) -> None:
        """The report on screen as a PDF (`pos_app.pdf.day_report`), rendered on a worker thread."""
        view = self.view
        report, language = view.report, i18n.language()
        if report is None:
            return
        if path is None:
            name = f"report-{report['from']}" + (f"-{report['to']}" if report["to"] != report["from"] else "")
            path, _filter = QFileDialog.getSaveFileName(view, _("Save the report as PDF"), name + ".pdf",
                                                        "PDF (*.pdf)")
            if not path:
                return
        view.pdf_button.setEnabled(False)
        view.message.setText(_("Saving…"))

        def job() -> None:
            from ...pdf.day_report import render
            Path(path).write_bytes(render(report, language=language))
        view.tasks.run(job, lambda _none: self._saved(path), self._failed)

    def _saved(self, path: str) -> None:
        view = self.view
        view.csv_button.setEnabled(True)
        view.pdf_button.setEnabled(True)
        view.message.setText(_("Saved {path}").format(path=path))
        view.exported.emit(path)

    def _failed(self, exc: BaseException) -> None:
        view = self.view
        view.csv_button.setEnabled(True)
        view.pdf_button.setEnabled(True)
        text = _("The file could not be saved: {error}").format(error=exc)
        view.message.setText(text)
        view.failed.emit(text)
