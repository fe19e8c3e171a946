"""The report view's building blocks: its style sheet, a table that measures only the rows in view, a
button, a date field, and the dates' formats in the UI language."""

from __future__ import annotations

from datetime import date
from typing import Iterable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDateEdit,
    QFormLayout,
    QFrame,
    QHeaderView,
    QLabel,
    QPushButton,
    QScrollArea,
    QTableView,
    QWidget,
)

from ...words import i18n

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


def table(name: str, model, *, stretch: int, sort_by: int = -1) -> SampledTable:
    """A read-only table of `model`, a row at a time, its column `stretch` taking the room left."""
    view = SampledTable(objectName=f"{name}Table")
    view.setModel(model)
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    view.setAlternatingRowColors(True)
    view.setWordWrap(False)
    view.verticalHeader().hide()
    view.verticalHeader().setDefaultSectionSize(40)  # a row a finger can pick
    view.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
    header = view.horizontalHeader()
    header.setResizeContentsPrecision(0)  # columns fit the rows in view: a busy day has 100,000
    header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    header.setSectionResizeMode(stretch, QHeaderView.ResizeMode.Stretch)
    header.setHighlightSections(False)
    # -1: the report's own order (busiest first) until a header is tapped.
    header.setSortIndicator(sort_by, Qt.SortOrder.AscendingOrder)
    view.setSortingEnabled(True)
    return view


def scrolling_form(rows: Iterable[tuple[QLabel, QLabel]]) -> QScrollArea:
    """(label, value) rows, one under the other, scrolling when the window is short."""
    inner = QWidget()
    form = QFormLayout(inner)
    form.setVerticalSpacing(14)
    for label, value in rows:
        form.addRow(label, value)
    scroll = QScrollArea()
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QFrame.Shape.NoFrame)
    scroll.setWidget(inner)
    return scroll


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


def button(name: str, on_click) -> QPushButton:
    button = QPushButton(objectName=name)
    if on_click is not None:
        button.clicked.connect(on_click)
    return button


def date_edit(name: str) -> QDateEdit:
    edit = QDateEdit(objectName=name)
    edit.setCalendarPopup(True)
    edit.setMinimumWidth(170)
    return edit


def date_format() -> str:
    """Qt's pattern for a short date in the UI's locale: babel's, with the year written in full."""
    import re

    from babel import Locale

    return re.sub("y+", "yyyy", Locale.parse(i18n.format_locale()).date_formats["short"].pattern)


def format_day(day: date) -> str:
    from babel.dates import format_date as babel_date

    text = babel_date(day, "full", locale=i18n.format_locale())
    return text[:1].upper() + text[1:]  # "viernes, 14 de marzo" starts a title; capitalize() would lower "March"
