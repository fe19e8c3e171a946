"""The manager's day report at the till: a day (or a range of days) in figures, a chart and tables.

The report is `pos_app.store.report`'s, computed on the store's thread
(`compute.py`); this view only asks for a day and shows what comes back. Each
request carries a number, so a day clicked past quickly never overwrites the
day asked last. Voiding a redemption (`voiding.py`) and saving the report
(`exports.py`) are controllers of their own that the view hands its buttons to.
"""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta
from typing import Callable
from zoneinfo import ZoneInfo

from PySide6.QtCore import QDate, Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QLabel,
    QMenu,
    QStackedWidget,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ...core.report import ReportError
from ...words import i18n
from ...words.i18n import _, format_date, format_number, format_share
from ..retranslate import Retranslating
from ..tasks import TaskPool
from . import models, widgets
from .chart import HourChart
from .compute import ComputedReport, compute
from .exports import ExportController
from .tiles import Tiles
from .void_dialog import VoidDialog
from .voiding import VoidController

REDEMPTIONS_TAB, FRAUD_TAB, DAYS_TAB = 1, 4, 7  # of the tabs: by hour, redemptions, vouchers, cashiers, refused, conflicts, KPIs, days
KPIS = ("offline_share", "camera_share", "typed_share", "conflict_rate", "refusal_rate", "processing",
        "sync_success_rate")



class ReportView(Retranslating, QDialog):
    """`store` is the window's StoreThread; `timezone` the store's zone, for what 'today' is; `staff` the
    member logged in to the window (a manager or an admin may void a redemption)."""

    report_shown = Signal(dict)  # the report's JSON, once it is on screen
    attempt_selected = Signal(str)  # the selected attempt's key, "" when none (for a void action)
    exported = Signal(str)  # the path of a file just written
    failed = Signal(str)  # a report or export that could not be made, in words
    voided = Signal(dict)  # the store's void record, once it is kept (and queued for the backend)
    void_refused = Signal(str)  # a VoidError's code, when the store refused a void

    def __init__(self, store, *, timezone: str | None, clock: Callable[[], float] = time.time,
                 staff: dict | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("reportView")
        self.setStyleSheet(widgets.STYLE)
        self.setMinimumSize(960, 600)
        self.resize(1280, 800)
        self.store, self.clock = store, clock
        self.zone = ZoneInfo(timezone) if timezone else None
        self.tasks = TaskPool(self, workers=1)
        self.report: dict | None = None
        self.first = self.last = self.today()
        self.range_mode = False
        self._serial = 0  # the request being waited for; older answers are dropped
        self.language = ""  # of the report on screen (voucher titles come in it)
        self.staff = staff
        self.voiding = VoidController(self, staff)
        self.can_void = self.voiding.allowed
        self.exports = ExportController(self)
        self._select_after: tuple[int, str] | None = None  # (request, attempt key) to select when it shows

        self._build_bar()
        self.figures = Tiles()
        self.tiles = self.figures.tiles
        self._build_body()
        self.message = QLabel(textFormat=Qt.TextFormat.PlainText, objectName="reportMessage", wordWrap=True)
        self.csv_button = widgets.button("exportCsv", lambda: self.export_csv())
        self.pdf_button = widgets.button("exportPdf", lambda: self.export_pdf())
        self.close_button = widgets.button("closeReport", self.accept)
        bottom = QHBoxLayout()
        bottom.addWidget(self.message, 1)
        bottom.addWidget(self.csv_button)
        bottom.addWidget(self.pdf_button)
        bottom.addWidget(self.close_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 10, 12, 10)
        layout.setSpacing(8)
        layout.addLayout(self.bar)
        layout.addLayout(self.figures.row)
        layout.addWidget(self.body, 1)
        layout.addLayout(bottom)
        self.retranslate()
        self.show_days(self.first)

    # --- building ---------------------------------------------------------------------

    def _build_bar(self) -> None:
        self.previous_button = widgets.button("previousDay", lambda: self.step(-1))
        self.next_button = widgets.button("nextDay", lambda: self.step(1))
        self.from_edit = widgets.date_edit("fromDate")
        self.to_edit = widgets.date_edit("toDate")
        self.dash = QLabel("–", textFormat=Qt.TextFormat.PlainText)
        self.range_button = widgets.button("rangeButton", None)
        self.range_button.setCheckable(True)
        self.range_button.toggled.connect(self.set_range_mode)
        self.today_button = widgets.button("todayButton", lambda: self.show_days(self.today()))
        self.refresh_button = widgets.button("refreshReport", self.refresh)
        self.title = QLabel(textFormat=Qt.TextFormat.PlainText, objectName="reportTitle")
        self.state = QLabel(textFormat=Qt.TextFormat.PlainText, objectName="reportState")
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
        self.disputes = models.disputes_model(self)
        self.days = models.days_model(self)
        self.tables: dict[str, QTableView] = {}
        self.section_titles: dict[str, QLabel] = {}

        self.attempts_table = self._table("attempts", self.attempts, stretch=1, sort_by=0)
        self.attempts_table.selectionModel().selectionChanged.connect(self._attempt_selection)
        self.attempts_table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.attempts_table.customContextMenuRequested.connect(self.voiding.menu_requested)
        self.void_hint = QLabel(textFormat=Qt.TextFormat.PlainText, objectName="voidHint", wordWrap=True)
        self.void_button = widgets.button("voidButton", lambda: self.open_void_dialog())
        redemptions = QWidget()
        box = QVBoxLayout(redemptions)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self.attempts_table, 1)
        void_row = QHBoxLayout()
        void_row.setContentsMargins(6, 0, 6, 4)
        void_row.addWidget(self.void_hint, 1)
        void_row.addWidget(self.void_button)
        box.addLayout(void_row)
        self.void_hint.setVisible(self.can_void)
        self.void_button.setVisible(self.can_void)  # a cashier never sees the action
        self.tabs = QTabWidget(objectName="reportTabs")
        self.tabs.setUsesScrollButtons(True)
        self.tabs.addTab(self.chart, "")  # the tables get the whole width; the chart shows first
        self.tabs.addTab(redemptions, "")
        self.tabs.addTab(self._page(("personal", self.personal, 0), ("printed", self.printed, 0)), "")
        self.tabs.addTab(self._page(("cashiers", self.cashiers, 0), ("methods", self.methods, 0),
                                    ("decided", self.decided, 0)), "")
        self.tabs.addTab(self._page(("reasons", self.reasons, 0), ("fraud", self.fraud, 1)), "")
        self.tabs.addTab(self._page(("conflicts", self.conflicts, 1), ("disputes", self.disputes, 1),
                                    ("voids", self.voids, 1)), "")
        self.tabs.addTab(self._kpi_page(), "")
        self.tabs.addTab(self._page(("days", self.days, 0)), "")
        self.tabs.setTabVisible(DAYS_TAB, False)
        self.empty = QLabel(textFormat=Qt.TextFormat.PlainText, objectName="reportEmpty",
                            alignment=Qt.AlignmentFlag.AlignCenter, wordWrap=True)
        self.body = QStackedWidget()
        self.body.addWidget(self.tabs)
        self.body.addWidget(self.empty)
        self.content = self.tabs

    def _table(self, name: str, model: models.RecordsModel, *, stretch: int, sort_by: int = -1) -> QTableView:
        self.tables[name] = table = widgets.table(name, model, stretch=stretch, sort_by=sort_by)
        return table

    def _page(self, *parts) -> QWidget:
        page = QWidget()
        box = QVBoxLayout(page)
        box.setContentsMargins(6, 6, 6, 6)
        for name, model, stretch in parts:
            title = QLabel(textFormat=Qt.TextFormat.PlainText, objectName="sectionTitle")
            self.section_titles[name] = title
            box.addWidget(title)
            box.addWidget(self._table(name, model, stretch=stretch), 1)
        return page

    def _kpi_page(self) -> QWidget:
        self.kpi_rows = {name: (QLabel(textFormat=Qt.TextFormat.PlainText),
                                QLabel(textFormat=Qt.TextFormat.PlainText, objectName=f"kpi_{name}")) for name in KPIS}
        return widgets.scrolling_form(self.kpi_rows.values())

    # --- which days -------------------------------------------------------------------

    def today(self) -> date:
        """Today in the store's zone (the till's clock)."""
        return datetime.fromtimestamp(self.clock(), self.zone).date()

    def show_days(self, first: date, last: date | None = None, *, select: str | None = None) -> None:
        """Ask for the report of first..last (one day when last is None); it shows when it arrives,
        with the attempt `select` selected."""
        last = last or first
        self.first, self.last = first, last
        self._show_dates()
        self._serial += 1
        serial, language = self._serial, i18n.language()
        self._select_after = (serial, select) if select else None
        self.state.setText(_("Computing…"))
        self.message.clear()

        def job(store):
            if serial != self._serial:
                return None  # a newer request came before this one's turn
            return compute(store, first, last, language)
        self.store.submit(job, lambda result: self._arrived(serial, result), lambda exc: self._failed(serial, exc),
                          told=(ReportError,))

    def refresh(self, *, select: str | None = None) -> None:
        """The days on screen again. Not for a closed view (the window keeps it until the next report
        opens, and a language change still reaches it): its report would hold the store's thread for nothing."""
        if self.isVisible():
            self.show_days(self.first, self.last, select=select)

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
            self.title.setText(widgets.format_day(self.first))
        else:
            self.title.setText(_("{first} to {last}").format(first=format_date(self.first),
                                                             last=format_date(self.last)))

    # --- showing ------------------------------------------------------------------------

    def _arrived(self, serial: int, result: ComputedReport | None) -> None:
        if serial != self._serial or result is None:
            return
        report, context = result.report, result.context
        self.report, self.language = report, result.language
        self.state.clear()
        self.attempts.set_records(result.rows, context)
        self._resort(self.attempts_table)
        by_voucher = report["by_voucher"]
        tables = ((self.personal, by_voucher["personal"]), (self.printed, by_voucher["printed"]),
                  (self.cashiers, report["by_cashier"]), (self.fraud, models.fraud_records(report["fraud"])),
                  (self.conflicts, report["conflicts"]["items"]), (self.voids, report["voids"]["items"]),
                  (self.disputes, report["disputes"]),
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
        wanted, self._select_after = self._select_after, None
        if wanted is not None and wanted[0] == serial and self.select_attempt(wanted[1]):
            self.attempts_table.scrollTo(self.attempts_table.currentIndex())
        self.voiding.show_action()
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
        self.figures.show(r)
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
        attempt = self.selected_attempt()
        return None if attempt is None else attempt[models.KEY]

    def select_attempt(self, key: str) -> bool:
        for row, record in enumerate(self.attempts.records):
            if record[models.KEY] == key:
                self.attempts_table.selectRow(row)
                return True
        return False

    def selected_attempt(self) -> tuple | None:
        rows = self.attempts_table.selectionModel().selectedRows()
        return self.attempts.record(rows[0].row()) if rows else None

    def _attempt_selection(self) -> None:
        self.voiding.show_action()
        self.attempt_selected.emit(self.selected_attempt_key() or "")

    # --- voiding and exports: their controllers' -----------------------------------------

    @property
    def void_dialog(self) -> VoidDialog | None:
        return self.voiding.dialog

    def attempt_menu(self) -> QMenu:
        return self.voiding.attempt_menu()

    def open_void_dialog(self) -> VoidDialog | None:
        return self.voiding.open_dialog()

    def void(self, key: str, reason: str, dialog: VoidDialog | None = None) -> None:
        self.voiding.void(key, reason, dialog)

    def export_csv(self, path: str | None = None) -> None:
        self.exports.export_csv(path)

    def export_pdf(self, path: str | None = None) -> None:
        self.exports.export_pdf(path)

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
            edit.setDisplayFormat(widgets.date_format())
        self.today_button.setText(_("Today"))
        self.range_button.setText(_("Several days"))
        self.refresh_button.setText(_("Refresh"))
        self.csv_button.setText(_("Save CSV…"))
        self.pdf_button.setText(_("PDF…"))
        self.pdf_button.setToolTip(_("Save the report as PDF"))
        self.csv_button.setToolTip(_("Every scan of the days, one a line, for a spreadsheet"))
        self.close_button.setText(_("Close"))
        self.void_button.setText(_("Void…"))
        self.void_button.setToolTip(_("Void the selected redemption, with a reason (managers)"))
        self.figures.retranslate()
        for index, text in enumerate((_("By hour"), _("Redemptions"), _("Vouchers"), _("Cashiers and methods"),
                                      _("Refused and fraud"), _("Conflicts, disputes and voids"), _("Indicators"),
                                      _("Days"))):
            self.tabs.setTabText(index, text)
        sections = {"personal": _("Personal vouchers"), "printed": _("Printed vouchers (booklet codes)"),
                    "cashiers": _("By cashier"), "methods": _("By method"), "decided": _("Online and offline"),
                    "reasons": _("Refused, by reason"), "fraud": _("Fraud signals"),
                    "conflicts": _("Conflicts: redeemed first at another till"), "voids": _("Voided redemptions"),
                    "disputes": _("Disputes: the backend judged otherwise"),
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
                      self.reasons, self.fraud, self.conflicts, self.voids, self.disputes, self.days):
            model.retranslate()
        self._show_dates()
        self._show_figures()
        self.voiding.show_action()
        if self.report is not None and self.language != i18n.language():
            self.refresh()  # voucher titles come in the report's language

    def done(self, result: int) -> None:
        # An answer still on its way is not shown. The task pool is left running: an export asked for
        # before closing is still written (a CSV reaches the pool only once the store has made it), and
        # closing never waits for a PDF being rendered. Its idle thread ends with the view.
        self._serial += 1
        super().done(result)
