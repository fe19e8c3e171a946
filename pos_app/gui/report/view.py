"""The manager's day report at the till: a day (or a range of days) in figures, a chart and tables.

The report is `pos_app.store.report`'s, computed on the store's thread; this
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
from shiboken6 import isValid
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
    QMenu,
    QPushButton,
    QScrollArea,
    QStackedWidget,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ...words import i18n
from ...core.voids import VOID_ROLES, VoidError
from ...words.i18n import _, format_date, format_money, format_number, format_share
from . import models
from .chart import HourChart
from ..retranslate import Retranslating
from ..tasks import TaskPool
from .void_dialog import VoidDialog, void_error_text

TILES = ("count", "discount", "attempts", "refused", "offline", "conflicts", "voids")
REDEMPTIONS_TAB, FRAUD_TAB, DAYS_TAB = 1, 4, 7  # of the tabs: by hour, redemptions, vouchers, cashiers, refused, conflicts, KPIs, days
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
QLabel#voidHint { color: #4a5561; }
QDateEdit { min-height: 48px; padding: 0 8px; font-size: 18px; }
QTableView { font-size: 16px; }
QHeaderView::section { font-size: 15px; padding: 4px 6px; }
QTabBar::tab { min-height: 44px; padding: 0 12px; font-size: 16px; }
"""


def compute(store, first: date, last: date, language: str) -> dict:
    """The report, its attempts oldest first and the names they need (runs on the store's thread).

    The days' attempts are read once, a batch at a time, for both the report and the table.
    """
    from ...store.report import day_report, row_batches

    zone = ZoneInfo(store.store_timezone)
    attempts: list = []
    kept: list[tuple] = []
    with _collector_paused():
        for batch in row_batches(store, first, last):
            attempts.extend(batch)
            kept.extend(tuple(r) for r in batch if first <= datetime.fromtimestamp(r.at, zone).date() <= last)
            # A young-generation pass over this batch only: the table's plain tuples leave the collector's
            # care here, a few thousand at a time, rather than all at once when it resumes.
            gc.collect(0)
        report = day_report(store, first, last, language=language, attempts=attempts)
        del attempts  # the Rows go by reference counting, before the collector resumes
    context = models.Context(timezone=store.store_timezone,
                             titles={v.id: v.text("title", language) for v in store.vouchers()},
                             staff={s["id"]: s["name"] for s in store.staff_members()})
    return {"report": report, "rows": kept, "context": context, "language": language}


@contextmanager
def _collector_paused():
    """No automatic garbage collection while a report is made.

    A busy day makes hundreds of thousands of objects that live until the
    report is done (`Row`s are namedtuples, which the collector never stops
    tracking). Left on, the collector would promote them and then run a full
    pass over the whole process's heap, holding the GIL for a tenth of a
    second or more while the GUI thread waits. Paused, only `compute`'s own
    small young-generation passes run; reference counting still frees what
    the report drops, and the collector resumes with little left to see.
    """
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


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
        self.staff = staff
        self.can_void = bool(staff) and staff.get("role") in VOID_ROLES
        self.void_dialog: VoidDialog | None = None
        self._select_after: tuple[int, str] | None = None  # (request, attempt key) to select when it shows

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
        self.attempts_table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.attempts_table.customContextMenuRequested.connect(self._attempt_menu_requested)
        self.void_hint = QLabel(objectName="voidHint", wordWrap=True)
        self.void_button = _button("voidButton", lambda: self.open_void_dialog())
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
        table = SampledTable(objectName=f"{name}Table")
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
        self.store.submit(job, lambda result: self._arrived(serial, result), lambda exc: self._failed(serial, exc))

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
        wanted, self._select_after = self._select_after, None
        if wanted is not None and wanted[0] == serial and self.select_attempt(wanted[1]):
            self.attempts_table.scrollTo(self.attempts_table.currentIndex())
        self._show_void_action()
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

    def voidable_attempt(self) -> tuple | None:
        """The selected attempt if a void may be asked for it: an accepted redemption not voided yet.

        Every row is this till's own attempt (the till reports from its own store); a conflict's loser stays
        the conflict it is, and a refusal gave nothing.
        """
        attempt = self.selected_attempt()
        if attempt is None or attempt[models.STATUS] != "accepted" or attempt[models.VOIDED]:
            return None
        return attempt

    def _attempt_selection(self) -> None:
        self._show_void_action()
        self.attempt_selected.emit(self.selected_attempt_key() or "")

    def _show_void_action(self) -> None:
        attempt = self.selected_attempt()
        self.void_button.setEnabled(self.can_void and self.voidable_attempt() is not None)
        if attempt is None:
            hint = _("Select an accepted redemption to void it.")
        elif attempt[models.VOIDED] and attempt[models.STATUS] == "accepted":
            hint = _("This redemption is voided.")
        elif attempt[models.STATUS] != "accepted":
            hint = _("Only an accepted redemption can be voided.")
        else:
            hint = ""
        self.void_hint.setText(hint)

    # --- voiding -------------------------------------------------------------------------------

    def attempt_menu(self) -> QMenu:
        """The redemptions table's context menu for the selected row."""
        menu = QMenu(self)
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        action = menu.addAction(_("Void…"))
        action.setObjectName("voidAction")
        action.setEnabled(self.voidable_attempt() is not None)
        action.triggered.connect(lambda: self.open_void_dialog())
        return menu

    def _attempt_menu_requested(self, pos) -> None:
        index = self.attempts_table.indexAt(pos)
        if not self.can_void or not index.isValid():
            return
        self.attempts_table.selectRow(index.row())
        self.attempt_menu().popup(self.attempts_table.viewport().mapToGlobal(pos))

    def open_void_dialog(self) -> VoidDialog | None:
        """The void dialog for the selected redemption (window-modal; returns at once), or None."""
        attempt = self.voidable_attempt() if self.can_void else None
        if attempt is None:
            return None
        dialog = VoidDialog(attempt, self.attempts.context, self)
        dialog.confirmed.connect(lambda reason: self.void(attempt[models.KEY], reason, dialog))
        dialog.finished.connect(lambda _result: self._void_dialog_closed(dialog))
        self.void_dialog = dialog
        dialog.open()
        return dialog

    def void(self, key: str, reason: str, dialog: VoidDialog | None = None) -> None:
        """Void the attempt `key` as the logged-in manager, on the store's thread; the report follows."""
        if not self.can_void:
            return
        staff_id, now = self.staff["id"], self.clock()

        def job(store):
            try:
                return store.void(key, reason=reason, staff_id=staff_id, now=now)
            except VoidError as exc:  # a refusal the manager is told of, not a bug to log
                return exc
        self.store.submit(job, lambda result: self._void_answered(key, result, dialog),
                          lambda exc: self._void_failed(exc, dialog))

    def _void_answered(self, key: str, result, dialog: VoidDialog | None) -> None:
        if not isValid(self):
            # The view was closed and replaced while the store worked: the void is kept and queued all the
            # same, and the sync engine's next round sends it; there is nothing left here to show it on.
            return
        if isinstance(result, VoidError):
            if result.code in (VoidError.ALREADY_VOIDED, VoidError.NOT_ACCEPTED, VoidError.NOT_FOUND):
                self.refresh(select=key)  # the row changed since it was shown (another manager, a sync)
            self._tell_void(void_error_text(result.code), dialog)
            self.void_refused.emit(result.code)
            return
        if dialog is not None and dialog is self.void_dialog:
            dialog.done_ok()
        self.refresh(select=key)
        self.message.setText(_("Redemption voided. It goes to the backend with the next sync."))
        self.voided.emit(result)

    def _void_failed(self, exc: BaseException, dialog: VoidDialog | None) -> None:
        if not isValid(self):  # closed and replaced meanwhile; the store's thread logged the failure
            return
        self._tell_void(_("The void could not be saved: {error}").format(error=exc), dialog)
        self.void_refused.emit("error")

    def _tell_void(self, text: str, dialog: VoidDialog | None) -> None:
        if dialog is not None and dialog is self.void_dialog:
            dialog.show_error(text)  # the reason stays typed for another try
        else:
            self.message.setText(text)

    def _void_dialog_closed(self, dialog: VoidDialog) -> None:
        if dialog is self.void_dialog:
            self.void_dialog = None
        dialog.deleteLater()

    # --- exports ---------------------------------------------------------------------------

    def export_csv(self, path: str | None = None) -> None:
        """The days' attempts as CSV (`store.report.day_csv`); `path` skips the dialog (tests)."""
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
            from ...store.report import day_csv
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
            from ...pdf.day_report import render
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
        self.void_button.setText(_("Void…"))
        self.void_button.setToolTip(_("Void the selected redemption, with a reason (managers)"))
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
        self._show_void_action()
        if self.report is not None and self._language != i18n.language():
            self.refresh()  # voucher titles come in the report's language

    def done(self, result: int) -> None:
        # An answer still on its way is not shown. The task pool is left running: an export asked for
        # before closing is still written (a CSV reaches the pool only once the store has made it), and
        # closing never waits for a PDF being rendered. Its idle thread ends with the view.
        self._serial += 1
        super().done(result)


class SampledTable(QTableView):
    """A table whose columns fit the rows in view, or its first rows while it is hidden.

    Qt's own measure reads every row of a table that is not on screen (the
    redemptions tab behind the chart, a closed window being restyled): a busy
    day's 100,000 rows, each through Python, froze the window for seconds.
    """

    SAMPLE = 60

    def sizeHintForColumn(self, column: int) -> int:
        model = self.model()
        rows = model.rowCount() if model is not None else 0
        if rows == 0 or column < 0:
            return -1
        top = max(0, self.rowAt(0)) if self.isVisible() else 0
        option_width = 0
        for row in range(top, min(rows, top + self.SAMPLE)):
            if not self.isRowHidden(row):
                option_width = max(option_width, self.sizeHintForIndex(model.index(row, column)).width())
        return option_width + (1 if self.showGrid() else 0)


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
