"""The report's headline figures: a row of tiles over the tabs, each a number and what it counts."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QVBoxLayout

from ...words.i18n import _, format_money, format_number, format_share

TILES = ("count", "discount", "attempts", "refused", "offline", "conflicts", "voids")


class Tiles:
    """`row` is the layout to place; `tiles[name]` its (value, caption) labels."""

    def __init__(self):
        self.tiles: dict[str, tuple[QLabel, QLabel]] = {}
        self.row = QHBoxLayout()
        self.row.setSpacing(8)
        for name in TILES:
            frame = QFrame(objectName="reportTile")
            value = QLabel("—", textFormat=Qt.TextFormat.PlainText, objectName="tileValue",
                           alignment=Qt.AlignmentFlag.AlignCenter)
            caption = QLabel(textFormat=Qt.TextFormat.PlainText, objectName="tileCaption",
                             alignment=Qt.AlignmentFlag.AlignCenter, wordWrap=True)
            box = QVBoxLayout(frame)
            box.setContentsMargins(8, 6, 8, 6)
            box.setSpacing(0)
            box.addWidget(value)
            box.addWidget(caption)
            self.tiles[name] = (value, caption)
            self.row.addWidget(frame, 2 if name == "discount" else 1)

    def show(self, r: dict) -> None:
        """The figures of the report `r`, in the UI language's formats."""
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

    def retranslate(self) -> None:
        captions = {"count": _("Redemptions"), "discount": _("Discounts given"), "attempts": _("Scans and codes"),
                    "refused": _("Refusals"), "offline": _("Decided offline"), "conflicts": _("Conflicts"),
                    "voids": _("Voided")}
        for name, text in captions.items():
            self.tiles[name][1].setText(text)
