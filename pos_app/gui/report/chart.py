"""The report's chart: redemptions by hour of the store's day, 24 bars (QtCharts).

For a range of days the bars are the hours of the day summed over the days,
as the report's `by_hour` gives them: a manager reads when the shop is busy,
and the days themselves are in their own table.
"""

from __future__ import annotations

from PySide6.QtCharts import QBarCategoryAxis, QBarSeries, QBarSet, QChart, QChartView, QValueAxis
from PySide6.QtCore import QMargins, Qt
from PySide6.QtGui import QColor, QFont, QPainter

from ...words.i18n import _, format_number
from ..retranslate import Retranslating

BAR = "#1565c0"


class HourChart(Retranslating, QChartView):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("hourChart")
        self.setRenderHint(QPainter.RenderHint.Antialiasing)
        self.counts = [0] * 24
        self.range = False  # several days: the title says the hours are summed
        self.bars = QBarSet("")
        self.bars.setColor(QColor(BAR))
        self.bars.setLabelColor(QColor("#28313b"))
        self.series = QBarSeries()
        self.series.setBarWidth(0.8)
        self.series.append(self.bars)
        self.series.setLabelsVisible(True)
        self.series.setLabelsPosition(QBarSeries.LabelsPosition.LabelsOutsideEnd)
        chart = QChart()
        chart.addSeries(self.series)
        chart.legend().hide()
        chart.setMargins(QMargins(4, 4, 4, 4))
        chart.setBackgroundRoundness(8)
        chart.setAnimationOptions(QChart.AnimationOption.NoAnimation)
        self.hours = QBarCategoryAxis()
        self.hours.append([str(h) for h in range(24)])
        self.values = QValueAxis()
        self.values.setLabelFormat("%d")
        small = QFont("DejaVu Sans", 10)
        for axis in (self.hours, self.values):
            axis.setLabelsFont(small)
            axis.setTitleFont(QFont("DejaVu Sans", 11))
        self.bars.setLabelFont(QFont("DejaVu Sans", 9))
        chart.setTitleFont(QFont("DejaVu Sans", 13, QFont.Weight.Bold))
        chart.addAxis(self.hours, Qt.AlignmentFlag.AlignBottom)
        chart.addAxis(self.values, Qt.AlignmentFlag.AlignLeft)
        self.series.attachAxis(self.hours)
        self.series.attachAxis(self.values)
        self.setChart(chart)
        self.setMinimumHeight(200)
        self.retranslate()

    def show_counts(self, counts: list[int], *, range_: bool = False) -> None:
        """24 counts, hour 0 first."""
        if len(counts) != 24:
            raise ValueError("the chart needs 24 hours")
        self.counts, self.range = [int(c) for c in counts], range_
        self.bars.remove(0, self.bars.count())
        self.bars.append([float(c) for c in self.counts])
        top = max(self.counts, default=0)
        # Room above the tallest bar for its label; whole numbers on the axis.
        self.values.setRange(0, max(4, top + max(1, top // 8)))
        self.values.applyNiceNumbers()
        self.retranslate()

    def values_shown(self) -> list[int]:
        return [int(self.bars.at(i)) for i in range(self.bars.count())]

    def retranslate(self) -> None:
        chart = self.chart()
        chart.setTitle(_("Redemptions by hour, days summed") if self.range else _("Redemptions by hour"))
        self.hours.setTitleText(_("Hour of the day"))
        self.values.setTitleText(_("Redemptions"))
        self.bars.setLabel(_("Redemptions"))
        total = sum(self.counts)
        self.setToolTip(_("{n} redemptions").format(n=format_number(total)))
        self.setAccessibleName(chart.title())
