"""The report view's tables: one read-only table model, told its columns, over the report's records.

Texts are made when a cell is drawn, in the UI language of the moment, so a
language change only has to say that every header and cell changed. Sorting
happens in the model on each column's raw key (Python's sort over a
precomputed key), not in a QSortFilterProxyModel, whose comparisons would
call back into Python for every pair: a busy day's attempts (100,000 rows in
the tests) sort in a tenth of a second instead of many seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QBrush, QColor

from ...core.domain import Discount
from ...core.report import GIVEN_BUT_REFUSED, Row
from ...words.i18n import N_, _, format_date, format_discount, format_money, format_number, format_share, format_time
from ...words import judged
from ...words.labels import decided_name, kind_name, method_name
from ...words.reasons import headline
from ..theme import CAUTION, REFUSED
from .compute import Context

LONG_TEXT = 28  # characters; longer cells get their whole text as a tooltip

NUMERIC = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
TEXT = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter


@dataclass(frozen=True)
class Column:
    title: str  # an N_() text, translated when shown
    text: Callable[[Any, Context], str]
    key: Callable[[Any, Context], Any] | None = None  # the raw value it sorts by; the text when None
    numeric: bool = False
    tooltip: Callable[[Any, Context], str] | None = None


class RecordsModel(QAbstractTableModel):
    """A read-only table of records; `flag(record)` gives 'refused'/'caution' to colour a row, or None."""

    def __init__(self, columns: Sequence[Column], *, flag: Callable[[Any], str | None] | None = None, parent=None):
        super().__init__(parent)
        self.columns = tuple(columns)
        self.records: list = []
        self.context = Context()
        self._flag = flag

    # --- the data --------------------------------------------------------------------

    def set_records(self, records: Sequence, context: Context | None = None) -> None:
        self.beginResetModel()
        self.records = list(records)
        if context is not None:
            self.context = context
        self.endResetModel()

    def record(self, row: int):
        return self.records[row] if 0 <= row < len(self.records) else None

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex | None = None) -> int:
        return 0 if parent is not None and parent.isValid() else len(self.records)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex | None = None) -> int:
        return 0 if parent is not None and parent.isValid() else len(self.columns)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or index.row() >= len(self.records) or index.column() >= len(self.columns):
            return None
        record, column = self.records[index.row()], self.columns[index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            return column.text(record, self.context)
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return NUMERIC if column.numeric else TEXT
        if role == Qt.ItemDataRole.ToolTipRole:
            if column.tooltip is not None:
                return column.tooltip(record, self.context) or None
            text = column.text(record, self.context)
            return text if len(text) > LONG_TEXT else None
        if role == Qt.ItemDataRole.ForegroundRole and self._flag is not None:
            flag = self._flag(record)
            return QBrush(QColor(REFUSED if flag == "refused" else CAUTION)) if flag else None
        return None

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and 0 <= section < len(self.columns):
            if role == Qt.ItemDataRole.DisplayRole:
                return _(self.columns[section].title)
            if role == Qt.ItemDataRole.TextAlignmentRole:
                return NUMERIC if self.columns[section].numeric else TEXT
        return None

    # --- sorting, languages ------------------------------------------------------------

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        if not 0 <= column < len(self.columns) or len(self.records) < 2:
            return
        spec, context = self.columns[column], self.context
        self.layoutAboutToBeChanged.emit()
        old = self.persistentIndexList()
        order_of = sorted(range(len(self.records)), key=lambda i: _sort_key(spec, self.records[i], context),
                          reverse=order == Qt.SortOrder.DescendingOrder)
        self.records = [self.records[i] for i in order_of]
        if old:
            new_row = {was: now for now, was in enumerate(order_of)}
            self.changePersistentIndexList(old, [self.index(new_row[i.row()], i.column()) for i in old])
        self.layoutChanged.emit()

    def retranslate(self) -> None:
        """Headers and cells read again in the UI language (and its number formats)."""
        if self.columns:
            self.headerDataChanged.emit(Qt.Orientation.Horizontal, 0, len(self.columns) - 1)
        if self.records:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self.records) - 1, len(self.columns) - 1))


def _sort_key(column: Column, record, context: Context):
    value = column.key(record, context) if column.key is not None else column.text(record, context).casefold()
    return (value is None, value if value is not None else 0)


# The attempts table keeps each attempt as a plain tuple in `Row`'s field order:
# the garbage collector stops scanning plain tuples of strings and numbers,
# but scans namedtuples on every full pass (a busy day has 100,000 of them).
KEY, AT, STATUS, DECIDED, METHOD, STAFF_ID, REASON, KIND, VOUCHER_ID, CODE, VOIDED, VOID_REASON, DISPUTE = (
    Row._fields.index(name) for name in ("key", "at", "status", "decided", "method", "staff_id", "reason", "kind",
                                         "voucher_id", "code", "voided", "void_reason", "dispute"))


def status_text(attempt: tuple) -> str:
    if attempt[VOIDED] and attempt[STATUS] == "accepted":  # a voided conflict stays a conflict, as in the report
        return _("Voided: {reason}").format(reason=attempt[VOID_REASON] or "—")
    if attempt[STATUS] == "accepted":
        return _("Accepted")
    if attempt[STATUS] == "conflict":
        return _("Conflict")
    if attempt[DISPUTE] in GIVEN_BUT_REFUSED:  # the till gave it; the backend's verdict counts
        return _("Given here, refused by the backend: {reason}").format(reason=headline(attempt[REASON]))
    return _("Refused: {reason}").format(reason=headline(attempt[REASON]))


def staff_name(staff_id: str | None, context: Context) -> str:
    if not staff_id:
        return "—"
    return context.staff.get(staff_id) or staff_id


def voucher_text(item: dict | tuple, context: Context) -> str:
    """A voucher's title, else its printed code, else a dash (garbage has no voucher)."""
    if isinstance(item, dict):
        return item.get("title") or context.titles.get(item.get("voucher_id") or "") or item.get("code") or "—"
    return context.titles.get(item[VOUCHER_ID] or "") or item[CODE] or "—"


def when_text(at, context: Context) -> str:
    return format_time(float(at), context.timezone) if at is not None else "—"


def _money(amount) -> str:
    return format_money(int(amount or 0))


# --- the tables ------------------------------------------------------------------------------

def attempts_model(parent=None) -> RecordsModel:
    """Every attempt of the days (`store.report`'s rows, as plain tuples), one a row."""
    def flag(a):
        return "refused" if a[STATUS] == "refused" else "caution" if a[STATUS] == "conflict" or a[VOIDED] else None

    return RecordsModel((
        Column(N_("Time"), lambda a, c: when_text(a[AT], c), key=lambda a, c: a[AT]),
        Column(N_("Voucher"), voucher_text,
               tooltip=lambda a, c: " · ".join(x for x in (c.titles.get(a[VOUCHER_ID] or ""), a[CODE]) if x)),
        Column(N_("Kind"), lambda a, c: kind_name(a[KIND])),
        Column(N_("Method"), lambda a, c: method_name(a[METHOD])),
        Column(N_("Cashier"), lambda a, c: staff_name(a[STAFF_ID], c)),
        Column(N_("Online / offline"), lambda a, c: decided_name(a[DECIDED])),
        Column(N_("Status"), lambda a, c: status_text(a)),
    ), flag=flag, parent=parent)


def personal_vouchers_model(parent=None) -> RecordsModel:
    return RecordsModel((
        Column(N_("Voucher"), lambda e, c: e["title"] or e["voucher_id"] or "—"),
        Column(N_("Discount"), lambda e, c: format_discount(Discount(**e["discount"])) if e.get("discount") else "—",
               numeric=True, key=lambda e, c: (e.get("discount") or {}).get("value")),
        Column(N_("Redemptions"), lambda e, c: format_number(e["count"]), numeric=True,
               key=lambda e, c: e["count"]),
        Column(N_("Discount total"), lambda e, c: _money(e["discount_total"]) if e["discount_total"] else "—",
               numeric=True, key=lambda e, c: e["discount_total"]),
    ), parent=parent)


def printed_vouchers_model(parent=None) -> RecordsModel:
    """Booklet campaigns, each with the uses of each of its codes."""
    def codes(entry, context):
        return ", ".join(_("{code} × {n}").format(code=code or "—", n=format_number(n))
                         for code, n in entry.get("codes", {}).items())
    return RecordsModel((
        Column(N_("Campaign"), lambda e, c: e["title"] or e["voucher_id"] or "—"),
        Column(N_("Codes"), codes, tooltip=codes),
        Column(N_("Redemptions"), lambda e, c: format_number(e["count"]), numeric=True,
               key=lambda e, c: e["count"]),
        Column(N_("Daily limit"), lambda e, c: format_number(e["store_day_limit"])
               if e.get("store_day_limit") is not None else "—", numeric=True,
               key=lambda e, c: e.get("store_day_limit")),
        Column(N_("Discount total"), lambda e, c: _money(e["discount_total"]) if e["discount_total"] else "—",
               numeric=True, key=lambda e, c: e["discount_total"]),
    ), parent=parent)


def cashiers_model(parent=None) -> RecordsModel:
    return RecordsModel((
        Column(N_("Cashier"), lambda e, c: e["name"] or e["staff_id"] or _("(nobody logged in)")),
        Column(N_("Redemptions"), lambda e, c: format_number(e["count"]), numeric=True,
               key=lambda e, c: e["count"]),
        Column(N_("Refused"), lambda e, c: format_number(e["refused"]), numeric=True,
               key=lambda e, c: e["refused"]),
        Column(N_("Discount total"), lambda e, c: _money(e["discount"]), numeric=True,
               key=lambda e, c: e["discount"]),
    ), parent=parent)


def shares_model(title: str, name: Callable[[str], str], parent=None) -> RecordsModel:
    """(code, count) pairs with their share of `context.total`: methods, online/offline, refusal reasons."""
    return RecordsModel((
        Column(title, lambda p, c: name(p[0])),
        Column(N_("Count"), lambda p, c: format_number(p[1]), numeric=True, key=lambda p, c: p[1]),
        Column(N_("Share"), lambda p, c: format_share(p[1] / c.total if c.total else None), numeric=True,
               key=lambda p, c: p[1]),
    ), parent=parent)


def methods_model(parent=None) -> RecordsModel:
    return shares_model(N_("Method"), method_name, parent)


def decided_model(parent=None) -> RecordsModel:
    return shares_model(N_("Decided"), decided_name, parent)


def reasons_model(parent=None) -> RecordsModel:
    return shares_model(N_("Reason"), headline, parent)


FRAUD_SIGNALS = {"velocity": N_("Fast redemptions at one till"), "repeated": N_("One code refused again and again"),
                 "overuse": N_("Printed voucher at its daily limit"),
                 "over_total": N_("Printed voucher past its total limit")}


def fraud_records(fraud: dict) -> list[tuple[str, dict]]:
    return ([("velocity", e) for e in fraud.get("velocity", [])]
            + [("repeated", e) for e in fraud.get("repeated_refusals", [])]
            + [("overuse", e) for e in fraud.get("printed_overuse", [])]
            + [("over_total", e) for e in fraud.get("printed_over_total", [])])


def _fraud_detail(record, context: Context) -> str:
    kind, entry = record
    if kind == "velocity":
        text = _("{till}: at most {n} a minute").format(till=entry["till"], n=format_number(entry["peak_per_minute"]))
        if entry.get("peak_at") is not None:
            text += " " + _("(from {time})").format(time=when_text(entry["peak_at"], context))
        if entry.get("rate_limited"):
            text += "; " + _("{n} refused as too fast").format(n=format_number(entry["rate_limited"]))
        return text
    if kind == "repeated":
        code = entry.get("code") or (entry.get("jti") or "")[:12] or "—"
        reasons = ", ".join(headline(r) for r in entry.get("reasons", {}))
        return _("{code}: refused {n} times ({reasons})").format(code=code, n=format_number(entry["refusals"]),
                                                                 reasons=reasons)
    title = context.titles.get(entry.get("voucher_id") or "") or entry.get("voucher_id") or "—"
    if kind == "over_total":
        return _("{voucher}: {n} past its limit of {limit}, given offline at {tills}").format(
            voucher=title, n=format_number(entry["uses_over"]),
            limit=format_number(entry["total_limit"]) if entry.get("total_limit") is not None else "—",
            tills=", ".join(entry.get("tills") or ()) or "—")
    return _("{voucher}: {uses} uses of {limit} a day").format(voucher=title, uses=format_number(entry["uses"]),
                                                               limit=format_number(entry["store_day_limit"]))


def _fraud_count(record) -> int:
    kind, entry = record
    return {"velocity": entry.get("peak_per_minute"), "repeated": entry.get("refusals"),
            "overuse": entry.get("uses"), "over_total": entry.get("uses_over")}[kind] or 0


def fraud_model(parent=None) -> RecordsModel:
    return RecordsModel((
        Column(N_("Signal"), lambda r, c: _(FRAUD_SIGNALS[r[0]])),
        Column(N_("Detail"), _fraud_detail, tooltip=_fraud_detail),
        Column(N_("Count"), lambda r, c: format_number(_fraud_count(r)), numeric=True,
               key=lambda r, c: _fraud_count(r)),
        Column(N_("Flagged"), lambda r, c: _("⚑ Look into it") if r[1].get("flagged") else "—",
               key=lambda r, c: bool(r[1].get("flagged"))),
    ), flag=lambda r: "refused" if r[1].get("flagged") else None, parent=parent)


def conflicts_model(parent=None) -> RecordsModel:
    return RecordsModel((
        Column(N_("Time"), lambda e, c: when_text(e["at"], c), key=lambda e, c: e["at"]),
        Column(N_("Voucher"), voucher_text),
        Column(N_("Cashier"), lambda e, c: staff_name(e.get("staff_id"), c)),
        Column(N_("Won by"), lambda e, c: str((e.get("winner") or {}).get("till") or "—")),
        Column(N_("Won at"), lambda e, c: when_text((e.get("winner") or {}).get("at"), c),
               key=lambda e, c: (e.get("winner") or {}).get("at")),
    ), parent=parent)


def voids_model(parent=None) -> RecordsModel:
    """Voided redemptions; the void's reason, staff and time when the store has them."""
    return RecordsModel((
        Column(N_("Time"), lambda e, c: when_text(e["at"], c), key=lambda e, c: e["at"]),
        Column(N_("Voucher"), voucher_text),
        Column(N_("Cashier"), lambda e, c: staff_name(e.get("staff_id"), c)),
        Column(N_("Voided by"), lambda e, c: staff_name(e.get("void_staff_id"), c)),
        Column(N_("Voided at"), lambda e, c: when_text(e.get("void_at"), c), key=lambda e, c: e.get("void_at")),
        Column(N_("Reason"), lambda e, c: str(e.get("void_reason") or "—")),
        Column(N_("Manager's PIN"), lambda e, c: judged.void_proof(e.get("proof"))),
        # Not proven: anyone at that till may have made it.
    ), flag=lambda e: "caution" if e.get("proof") == "unverified" else None, parent=parent)


def _short(code: str) -> str:
    """A token's id is 32 characters: its start tells it apart (the whole is the tooltip)."""
    return code[:8] + "…" if len(code) > 12 else code or "—"


def disputes_model(parent=None) -> RecordsModel:
    """Redemptions the backend judged otherwise than this till (or whose time it doubted): its verdict counts."""
    return RecordsModel((
        Column(N_("Time"), lambda e, c: when_text(e["at"], c), key=lambda e, c: e["at"]),
        Column(N_("Code"), lambda e, c: _short(judged.code_of(e)), tooltip=lambda e, c: judged.code_of(e)),
        Column(N_("Voucher"), lambda e, c: e.get("title") or c.titles.get(
            (e.get("till_said") or {}).get("voucher_id") or "") or "—"),
        Column(N_("The till"), lambda e, c: judged.till_did(e)),
        Column(N_("The backend"), lambda e, c: judged.backend_says(e)),
    ), flag=lambda e: "refused" if e.get("dispute") in GIVEN_BUT_REFUSED else "caution", parent=parent)


def days_model(parent=None) -> RecordsModel:
    """A range's days, one a row."""
    from datetime import date

    return RecordsModel((
        Column(N_("Day"), lambda d, c: format_date(date.fromisoformat(d["date"])), key=lambda d, c: d["date"]),
        Column(N_("Redemptions"), lambda d, c: format_number(d["count"]), numeric=True, key=lambda d, c: d["count"]),
        Column(N_("Discount total"), lambda d, c: _money(d["discount"]), numeric=True,
               key=lambda d, c: d["discount"]),
        Column(N_("Refused"), lambda d, c: format_number(d["refused"]), numeric=True, key=lambda d, c: d["refused"]),
        Column(N_("Conflicts"), lambda d, c: format_number(d["conflicts"]), numeric=True,
               key=lambda d, c: d["conflicts"]),
        Column(N_("Offline"), lambda d, c: format_number(d["offline"]), numeric=True, key=lambda d, c: d["offline"]),
    ), parent=parent)
