"""The report as the view shows it, computed on the store's thread.

Qt-free, so it can run (and be tested) away from the window: the view hands
`compute` to its StoreThread and only shows the `ComputedReport` that comes
back. `Context` is what the table cells need besides their records.
"""

from __future__ import annotations

import gc
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo


@dataclass
class Context:
    """What the cells need besides the record: names of the day's vouchers and staff, the store's zone."""

    timezone: str | None = None
    titles: dict = field(default_factory=dict)  # voucher id -> title in the report's language
    staff: dict = field(default_factory=dict)  # staff id -> name
    total: int = 0  # what shares are shares of


@dataclass(frozen=True)
class ComputedReport:
    """One answer for the view: the report's JSON, its attempts (plain tuples, oldest first) and their names."""

    report: dict
    rows: list[tuple]
    context: Context
    language: str  # voucher titles come in it


def compute(store, first: date, last: date, language: str) -> ComputedReport:
    """The report, its attempts oldest first and the names they need (runs on the store's thread).

    The days' attempts are read once, a batch at a time, for both the report and the table.
    """
    from ...store.report import day_report, row_batches

    zone = ZoneInfo(store.store_timezone)
    attempts: list = []
    kept: list[tuple] = []
    with collector_paused():
        for batch in row_batches(store, first, last):
            attempts.extend(batch)
            kept.extend(tuple(r) for r in batch if first <= datetime.fromtimestamp(r.at, zone).date() <= last)
            # A young-generation pass over this batch only: the table's plain tuples leave the collector's
            # care here, a few thousand at a time, rather than all at once when it resumes.
            gc.collect(0)
        report = day_report(store, first, last, language=language, attempts=attempts)
        del attempts  # the Rows go by reference counting, before the collector resumes
    context = Context(timezone=store.store_timezone,
                      titles={v.id: v.text("title", language) for v in store.vouchers()},
                      staff={s["id"]: s["name"] for s in store.staff_members()})
    return ComputedReport(report=report, rows=kept, context=context, language=language)


@contextmanager
def collector_paused():
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
