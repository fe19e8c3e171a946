"""The manager's day report at the till: a day (or a range of days) in figures, a chart and tables.

The report is `pos_app.till_report`'s, computed on the store's thread; this
view only asks for a day and shows what comes back. Each request carries a
number, so a day clicked past quickly never overwrites the day asked last.
"""

from __future__ import annotations

import gc
import time
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Callable
from zoneinfo import ZoneInfo

from PySide6.QtCore import QDate, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDateEdit,
    QDialog,
    QFileDialog,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QScrollArea,
    QStackedWidget,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from .. import i18n
from ..i18n import _, format_date, format_money, format_number, format_share
from . import report_models as models
from .report_chart import HourChart
from .retranslate import Retranslating
from .tasks import TaskPool

TILES = ("count", "discount", "attempts", "refused", "offline", "conflicts", "voids")
FRAUD_TAB, DAYS_TAB = 4, 7  # of the tabs: by hour, redemptions, vouchers, cashiers, refused, conflicts, KPIs, days
KPIS = ("offline_share", "camera_share", "typed_share", "conflict_rate", "refusal_rate", "processing",
        "sync_success_rate")

STYLE = """
QFrame#reportTile { background: #f2f4f7; border: 1px solid #d0d5dc; border-radius: 10px; }
QLabel#tileValue { font-size: 28px; font-weight: bold; }
QLabel#tileCaption { font-size: 15px; color: #4a5561; }
QLabel#reportTitle { font-size: 22px; font-weight: bold; }
QLabel#reportState { color: #4a5561; }
QLabel#reportEmpty { font-size: 24px; color: #4a5561; }
QLabel#sectionTitle { font-size: 16px; font-weight: bold; }
QDateEdit { min-height: 48px; padding: 0 8px; font-size: 18px; }
QTableView { font-size: 16px; }
QHeaderView::section { font-size: 15px; padding: 4px 6px; }
QTabBar::tab { min-height: 44px; padding: 0 12px; font-size: 16px; }
"""


def compute(store, first: date, last: date, language: str) -> dict:
    """The report, its attempts oldest first and the names they need (runs on the store's thread)."""
    from ..till_report import day_report, rows

    with _collector_paused():
        return _compute(store, first, last, language, day_report, rows)


def _compute(store, first: date, last: date, language: str, day_report, rows) -> dict:
    report = day_report(store, first, last, language=language)
    zone = ZoneInfo(store.store_timezone)
    kept = [tuple(r) for r in rows(store, first, last) if first <= datetime.fromtimestamp(r.at, zone).date() <= last]
    kept.sort(key=lambda a: (a[models.AT], a[models.KEY]))
    context = models.Context(timezone=store.store_timezone,
                             titles={v.id: v.text("title", language) for v in store.vouchers()},
                             staff={s["id"]: s["name"] for s in store.staff_members()})
    return {"report": report, "rows": kept, "context": context, "language": language}


@contextmanager
def _collector_paused():
    """No cyclic garbage collection while a report is made.

    A busy day makes hundreds of thousands of objects that all survive; each
    full pass of the collector over them holds the GIL for a tenth of a
    second or more, and the GUI thread waits. Reference counting still frees
    what the report drops; the collector resumes when it is done.
    """
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


class ReportView(Retranslating, QDialog):
    """`store` is the window's StoreThread; `timezone` the store's zone, for what 'today' is."""

    report_shown = Signal(dict)  # the report's JSON, once it is on screen
    attempt_selected = Signal(str)  # the selected attempt's key, "" when none (for a void action)
    exported = Signal(str)  # the path of a file just written
    failed = Signal(str)  # a report or export that could not be made, in words

    def __init__(self, store, *, timezone: str | None, clock: Callable[[], float] = time.time,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("reportView")
        self.setStyleSheet(STYLE)
        self.setMinimumSize(960, 600)
        self.resize(1280, 800)
        self.store, self.clock = store, clock
        self.zone = ZoneInfo(timezone) if timezone else None
        self.tasks = TaskPool(self, workers=1)
        self.report: dict | None = None
        self.first = self.last = self.today()
        self.range_mode = False
        self._serial = 0  # the request being waited for; older answers are dropped
        self._language = ""  # of the report on screen (voucher titles come in it)

        self._build_bar()
        self._build_tiles()
        self._build_body()
        self.message = QLabel(objectName="reportMessage", wordWrap=True)
        self.csv_button = _button("exportCsv", lambda: self.export_csv())
        self.pdf_button = _button("exportPdf", lambda: self.export_pdf())
        self.close_button = _button("closeReport", self.accept)
        bottom = QHBoxLayout()
        bottom.addWidget(self.message, 1)
        bottom.addWidget(self.csv_button)
        bottom.addWidget(self.pdf_button)
        bottom.addWidget(self.close_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 10, 12, 10)
        layout.setSpacing(8)
        layout.addLayout(self.bar)
        layout.addLayout(self.tiles_row)
        layout.addWidget(self.body, 1)
        layout.addLayout(bottom)
        self.retranslate()
        self.show_days(self.first)

    # --- building ---------------------------------------------------------------------

    def _build_bar(self) -> None:
        self.previous_button = _button("previousDay", lambda: self.step(-1))
        self.next_button = _button("nextDay", lambda: self.step(1))
        self.from_edit = _date_edit("fromDate")
        self.to_edit = _date_edit("toDate")
        self.dash = QLabel("–")
        self.range_button = _button("rangeButton", None)
        self.range_button.setCheckable(True)
        self.range_button.toggled.connect(self.set_range_mode)
        self.today_button = _button("todayButton", lambda: self.show_days(self.today()))
        self.refresh_button = _button("refreshReport", self.refresh)
        self.title = QLabel(objectName="reportTitle")
        self.state = QLabel(objectName="reportState")
        self.from_edit.dateChanged.connect(self._picked)
        self.to_edit.dateChanged.connect(self._picked)
        self.bar = QHBoxLayout()
        for widget in (self.previous_button, self.from_edit, self.dash, self.to_edit, self.next_button,
                       self.today_button, self.range_button):
            self.bar.addWidget(widget)
        self.bar.addSpacing(12)
        self.bar.addWidget(self.title, 1)
        self.bar.addWidget(self.state)
        self.bar.addWidget(self.refresh_button)
        self.dash.hide()
        self.to_edit.hide()

    def _build_tiles(self) -> None:
        self.tiles: dict[str, tuple[QLabel, QLabel]] = {}
        self.tiles_row = QHBoxLayout()
        self.tiles_row.setSpacing(8)
        for name in TILES:
            frame = QFrame(objectName="reportTile")
            value = QLabel("—", objectName="tileValue", alignment=Qt.AlignmentFlag.AlignCenter)
            caption = QLabel(objectName="tileCaption", alignment=Qt.AlignmentFlag.AlignCenter, wordWrap=True)
            box = QVBoxLayout(frame)
            box.setContentsMargins(8, 6, 8, 6)
            box.setSpacing(0)
            box.addWidget(value)
            box.addWidget(caption)
            self.tiles[name] = (value, caption)
            self.tiles_row.addWidget(frame, 2 if name == "discount" else 1)

    def _build_body(self) -> None:
        self.chart = HourChart()
        self.attempts = models.attempts_model(self)
        self.personal = models.personal_vouchers_model(self)
        self.printed = models.printed_vouchers_model(self)
        self.cashiers = models.cashiers_model(self)
        self.methods = models.methods_model(self)
        self.decided = models.decided_model(self)
        self.reasons = models.reasons_model(self)
        self.fraud = models.fraud_model(self)
        self.conflicts = models.conflicts_model(self)
        self.voids = models.voids_model(self)
        self.days = models.days_model(self)
        self.tables: dict[str, QTableView] = {}
        self.section_titles: dict[str, QLabel] = {}

        self.attempts_table = self._table("attempts", self.attempts, stretch=1, sort_by=0)
        self.attempts_table.selectionModel().selectionChanged.connect(self._attempt_selection)
        self.tabs = QTabWidget(objectName="reportTabs")
        self.tabs.setUsesScrollButtons(True)
        self.tabs.addTab(self.chart, "")  # the tables get the whole width; the chart shows first
        self.tabs.addTab(self.attempts_table, "")
        self.tabs.addTab(self._page(("personal", self.personal, 0), ("printed", self.printed, 0)), "")
        self.tabs.addTab(self._page(("cashiers", self.cashiers, 0), ("methods", self.methods, 0),
                                    ("decided", self.decided, 0)), "")
        self.tabs.addTab(self._page(("reasons", self.reasons, 0), ("fraud", self.fraud, 1)), "")
        self.tabs.addTab(self._page(("conflicts", self.conflicts, 1), ("voids", self.voids, 1)), "")
        self.tabs.addTab(self._kpi_page(), "")
        self.tabs.addTab(self._page(("days", self.days, 0)), "")
        self.tabs.setTabVisible(DAYS_TAB, False)
        self.empty = QLabel(objectName="reportEmpty", alignment=Qt.AlignmentFlag.AlignCenter, wordWrap=True)
        self.body = QStackedWidget()
        self.body.addWidget(self.tabs)
        self.body.addWidget(self.empty)
        self.content = self.tabs

    def _table(self, name: str, model: models.RecordsModel, *, stretch: int, sort_by: int = -1) -> QTableView:
        table = QTableView(objectName=f"{name}Table")
        table.setModel(model)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setAlternatingRowColors(True)
        table.setWordWrap(False)
        table.verticalHeader().hide()
        table.verticalHeader().setDefaultSectionSize(40)  # a row a finger can pick
        table.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        header = table.horizontalHeader()
        header.setResizeContentsPrecision(0)  # columns fit the rows in view: a busy day has 100,000
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(stretch, QHeaderView.ResizeMode.Stretch)
        header.setHighlightSections(False)
        # -1: the report's own order (busiest first) until a header is tapped.
        header.setSortIndicator(sort_by, Qt.SortOrder.AscendingOrder)
        table.setSortingEnabled(True)
        self.tables[name] = table
        return table

    def _page(self, *parts) -> QWidget:
        page = QWidget()
        box = QVBoxLayout(page)
        box.setContentsMargins(6, 6, 6, 6)
        for name, model, stretch in parts:
            title = QLabel(objectName="sectionTitle")
            self.section_titles[name] = title
            box.addWidget(title)
            box.addWidget(self._table(name, model, stretch=stretch), 1)
        return page

    def _kpi_page(self) -> QWidget:
        self.kpi_rows = {name: (QLabel(), QLabel(objectName=f"kpi_{name}")) for name in KPIS}
        inner = QWidget()
        form = QFormLayout(inner)
        form.setVerticalSpacing(14)
        for label, value in self.kpi_rows.values():
            form.addRow(label, value)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(inner)
        return scroll

    # --- which days -------------------------------------------------------------------

    def today(self) -> date:
        """Today in the store's zone (the till's clock)."""
        return datetime.fromtimestamp(self.clock(), self.zone).date()

    def show_days(self, first: date, last: date | None = None) -> None:
        """Ask for the report of first..last (one day when last is None); it shows when it arrives."""
        last = last or first
        self.first, self.last = first, last
        self._show_dates()
        self._serial += 1
        serial, language = self._serial, i18n.language()
        self.state.setText(_("Computing…"))
        self.message.clear()

        def job(store):
            if serial != self._serial:
                return None  # a newer request came before this one's turn
            return compute(store, first, last, language)
        self.store.submit(job, lambda result: self._arrived(serial, result), lambda exc: self._failed(serial, exc))

    def refresh(self) -> None:
        self.show_days(self.first, self.last)

    def step(self, direction: int) -> None:
        """Back or forward a day, or by the range's length."""
        span = timedelta(days=(self.last - self.first).days + 1 if self.range_mode else 1)
        self.show_days(self.first + direction * span, self.last + direction * span)

    def set_range_mode(self, on: bool) -> None:
        self.range_mode = on
        self.range_button.setChecked(on)
        self.dash.setVisible(on)
        self.to_edit.setVisible(on)
        if on and self.first == self.last:
            self.show_days(self.last - timedelta(days=6), self.last)  # a week up to the day shown
        elif not on and self.first != self.last:
            self.show_days(self.last)

    def _picked(self) -> None:
        first, last = self.from_edit.date().toPython(), self.to_edit.date().toPython()
        if not self.range_mode or (self.sender() is self.from_edit and last < first):
            last = first
        elif last < first:
            first = last
        if (first, last) != (self.first, self.last):
            self.show_days(first, last)

    def _show_dates(self) -> None:
        for edit, day in ((self.from_edit, self.first), (self.to_edit, self.last)):
            edit.blockSignals(True)
            edit.setDate(QDate(day.year, day.month, day.day))
            edit.blockSignals(False)
        self.next_button.setEnabled(self.last < self.today())
        if self.first == self.last:
            self.title.setText(_format_day(self.first))
        else:
            self.title.setText(_("{first} to {last}").format(first=format_date(self.first),
                                                             last=format_date(self.last)))

    # --- showing ------------------------------------------------------------------------

    def _arrived(self, serial: int, result: dict | None) -> None:
        if serial != self._serial or result is None:
            return
        report, context = result["report"], result["context"]
        self.report, self._language = report, result["language"]
        self.state.clear()
        self.attempts.set_records(result["rows"], context)
        self._resort(self.attempts_table)
        by_voucher = report["by_voucher"]
        tables = ((self.personal, by_voucher["personal"]), (self.printed, by_voucher["printed"]),
                  (self.cashiers, report["by_cashier"]), (self.fraud, models.fraud_records(report["fraud"])),
                  (self.conflicts, report["conflicts"]["items"]), (self.voids, report["voids"]["items"]),
                  (self.days, report["by_day"]))
        for model, records in tables:
            model.set_records(records, context)
        shares = ((self.methods, list(report["by_method"].items()), report["count"]),
                  (self.decided, list(report["decided"].items()), report["count"]),
                  (self.reasons, list(report["refused"]["by_reason"].items()), report["refused"]["count"]))
        for model, pairs, total in shares:
            model.set_records(pairs, models.Context(context.timezone, context.titles, context.staff, total))
        for name, table in self.tables.items():
            if name != "attempts":
                self._resort(table)
        self.chart.show_counts(report["by_hour"], range_=self.first != self.last)
        self.tabs.setTabVisible(DAYS_TAB, self.first != self.last)
        self.body.setCurrentWidget(self.content if report["attempts"] else self.empty)
        self.pdf_button.setEnabled(True)
        self._show_figures()
        self.report_shown.emit(report)

    def _failed(self, serial: int, exc: BaseException) -> None:
        if serial != self._serial:
            return
        self.state.clear()
        text = _("The report could not be made: {error}").format(error=exc)
        self.message.setText(text)
        self.failed.emit(text)

    def _resort(self, table: QTableView) -> None:
        header = table.horizontalHeader()
        column, order = header.sortIndicatorSection(), header.sortIndicatorOrder()
        if table is self.attempts_table and (column, order) == (0, Qt.SortOrder.AscendingOrder):
            return  # they come oldest first: no sort of a busy day on the GUI thread
        if column >= 0:
            table.model().sort(column, order)

    def _show_figures(self) -> None:
        """The headline figures and indicators, in the UI language's formats."""
        r = self.report
        if r is None:
            return
        money = r["discount_total"]
        values = {"count": format_number(r["count"]), "discount": format_money(money["amount"], money["currency"]),
                  "attempts": format_number(r["attempts"]), "refused": format_number(r["refused"]["count"]),
                  "offline": format_share(r["kpis"]["offline_share"]),
                  "conflicts": format_number(r["conflicts"]["count"]), "voids": format_number(r["voids"]["count"])}
        for name, text in values.items():
            self.tiles[name][0].setText(text)
        unpriced = r.get("discount_unpriced") or 0
        self.tiles["discount"][0].setToolTip(
            _("Not counted: {n} percentage discounts (their amount depends on the sale).").format(
                n=format_number(unpriced)) if unpriced else "")
        k = r["kpis"]
        for name in ("offline_share", "camera_share", "typed_share", "conflict_rate", "refusal_rate",
                     "sync_success_rate"):
            self.kpi_rows[name][1].setText(format_share(k.get(name)))
        p50, p95 = k.get("processing_ms_p50"), k.get("processing_ms_p95")
        self.kpi_rows["processing"][1].setText(
            _("{p50} ms / {p95} ms").format(p50=format_number(round(p50)), p95=format_number(round(p95)))
            if p50 is not None and p95 is not None else "—")
        flagged = r["fraud"]["flagged"]
        self.tabs.setTabText(FRAUD_TAB, _("Refused and fraud (⚑ {n})").format(n=format_number(flagged)) if flagged
                             else _("Refused and fraud"))
        self.empty.setText(_("No redemptions on this day.") if self.first == self.last
                           else _("No redemptions on these days."))

    # --- the attempt a void would act on --------------------------------------------------

    def selected_attempt_key(self) -> str | None:
        rows = self.attempts_table.selectionModel().selectedRows()
        return self.attempts.data(rows[0], models.KEY_ROLE) if rows else None

    def select_attempt(self, key: str) -> bool:
        for row, record in enumerate(self.attempts.records):
            if record[models.KEY] == key:
                self.attempts_table.selectRow(row)
                return True
        return False

    def _attempt_selection(self) -> None:
        self.attempt_selected.emit(self.selected_attempt_key() or "")

    # --- exports ---------------------------------------------------------------------------

    def export_csv(self, path: str | None = None) -> None:
        """The days' attempts as CSV (`till_report.day_csv`); `path` skips the dialog (tests)."""
        first, last, language = self.first, self.last, i18n.language()
        if path is None:
            name = f"report-{first.isoformat()}" + (f"-{last.isoformat()}" if last != first else "") + ".csv"
            path, _filter = QFileDialog.getSaveFileName(self, _("Save the report as CSV"), name,
                                                        _("CSV files (*.csv)"))
            if not path:
                return
        self.csv_button.setEnabled(False)
        self.message.setText(_("Saving…"))

        def write(text: str) -> None:
            self.tasks.run(lambda: Path(path).write_bytes(text.encode("utf-8")), lambda _none: self._saved(path),
                           self._export_failed)

        def job(store):
            from ..till_report import day_csv
            return day_csv(store, first, last, language=language)
        self.store.submit(job, write, self._export_failed)

    def export_pdf(self, path: str | None = None) -> None:
        """The report on screen as a PDF (`pos_app.pdf.day_report`), rendered on a worker thread."""
        report, language = self.report, i18n.language()
        if report is None:
            return
        if path is None:
            name = f"report-{report['from']}" + (f"-{report['to']}" if report["to"] != report["from"] else "")
            path, _filter = QFileDialog.getSaveFileName(self, _("Save the report as PDF"), name + ".pdf",
                                                        "PDF (*.pdf)")
            if not path:
                return
        self.pdf_button.setEnabled(False)
        self.message.setText(_("Saving…"))

        def job() -> None:
            from ..pdf.day_report import render
            Path(path).write_bytes(render(report, language=language))
        self.tasks.run(job, lambda _none: self._saved(path), self._export_failed)

    def _saved(self, path: str) -> None:
        self.csv_button.setEnabled(True)
        self.pdf_button.setEnabled(True)
        self.message.setText(_("Saved {path}").format(path=path))
        self.exported.emit(path)

    def _export_failed(self, exc: BaseException) -> None:
        self.csv_button.setEnabled(True)
        self.pdf_button.setEnabled(True)
        text = _("The file could not be saved: {error}").format(error=exc)
        self.message.setText(text)
        self.failed.emit(text)

    # --- languages ---------------------------------------------------------------------------

    def retranslate(self) -> None:
        self.setWindowTitle(_("Day report"))
        self.previous_button.setText("◀")
        self.previous_button.setToolTip(_("The day before"))
        self.next_button.setText("▶")
        self.next_button.setToolTip(_("The day after"))
        self.from_edit.setToolTip(_("Day"))
        self.to_edit.setToolTip(_("Last day"))
        for edit in (self.from_edit, self.to_edit):
            edit.setDisplayFormat(_date_format())
        self.today_button.setText(_("Today"))
        self.range_button.setText(_("Several days"))
        self.refresh_button.setText(_("Refresh"))
        self.csv_button.setText(_("Save CSV…"))
        self.pdf_button.setText(_("PDF…"))
        self.pdf_button.setToolTip(_("Save the report as PDF"))
        self.csv_button.setToolTip(_("Every scan of the days, one a line, for a spreadsheet"))
        self.close_button.setText(_("Close"))
        captions = {"count": _("Redemptions"), "discount": _("Discounts given"), "attempts": _("Scans and codes"),
                    "refused": _("Refusals"), "offline": _("Decided offline"), "conflicts": _("Conflicts"),
                    "voids": _("Voided")}
        for name, text in captions.items():
            self.tiles[name][1].setText(text)
        for index, text in enumerate((_("By hour"), _("Redemptions"), _("Vouchers"), _("Cashiers and methods"),
                                      _("Refused and fraud"), _("Conflicts and voids"), _("Indicators"), _("Days"))):
            self.tabs.setTabText(index, text)
        sections = {"personal": _("Personal vouchers"), "printed": _("Printed vouchers (booklet codes)"),
                    "cashiers": _("By cashier"), "methods": _("By method"), "decided": _("Online and offline"),
                    "reasons": _("Refused, by reason"), "fraud": _("Fraud signals"),
                    "conflicts": _("Conflicts: redeemed first at another till"), "voids": _("Voided redemptions"),
                    "days": _("By day")}
        for name, text in sections.items():
            self.section_titles[name].setText(text)
        kpis = {"offline_share": _("Decided offline"), "camera_share": _("Read by the camera"),
                "typed_share": _("Typed by hand"), "conflict_rate": _("Conflicts among accepted"),
                "refusal_rate": _("Refused among attempts"), "processing": _("Scan to verdict (median / 95 %)"),
                "sync_success_rate": _("Successful syncs")}
        for name, text in kpis.items():
            self.kpi_rows[name][0].setText(text)
        for model in (self.attempts, self.personal, self.printed, self.cashiers, self.methods, self.decided,
                      self.reasons, self.fraud, self.conflicts, self.voids, self.days):
            model.retranslate()
        self._show_dates()
        self._show_figures()
        if self.report is not None and self._language != i18n.language():
            self.refresh()  # voucher titles come in the report's language

    def done(self, result: int) -> None:
        self._serial += 1  # an answer still on its way is not shown
        self.tasks.shutdown()
        super().done(result)


def _button(name: str, on_click) -> QPushButton:
    button = QPushButton(objectName=name)
    if on_click is not None:
        button.clicked.connect(on_click)
    return button


def _date_edit(name: str) -> QDateEdit:
    edit = QDateEdit(objectName=name)
    edit.setCalendarPopup(True)
    edit.setMinimumWidth(170)
    return edit


def _date_format() -> str:
    """Qt's pattern for a short date in the UI's locale: babel's, with the year written in full."""
    import re

    from babel import Locale

    return re.sub("y+", "yyyy", Locale.parse(i18n.format_locale()).date_formats["short"].pattern)


def _format_day(day: date) -> str:
    from babel.dates import format_date as babel_date

    text = babel_date(day, "full", locale=i18n.format_locale())
    return text[:1].upper() + text[1:]  # "viernes, 14 de marzo" starts a title; capitalize() would lower "March"
