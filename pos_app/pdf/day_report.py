"""The manager's day report on paper: one or two A4 pages from the report's JSON, in the language asked.

Made from the very JSON the API and the CLI give (`pos_app.core.report.build`), so paper and screen agree.
Long tables end with "and N more": the report never runs past two pages (the CSV holds every line). Texts
people typed (titles, names, till names) are cleaned of control characters and clipped to their cell.

This module says what the report shows, section by section; the pages are the layout engine's blocks
(`blocks.py`), and how each value reads in a cell is `report_cells.py`.
"""

from __future__ import annotations

import time
from datetime import date, datetime
from zoneinfo import ZoneInfo

from babel import dates as babel_dates

from ..core.report import GIVEN_BUT_REFUSED

from ..words import judged, labels, reasons
from ..words.i18n import _, format_locale, format_number, format_when, using
from . import fonts
from . import report_cells as cell
from .blocks import Block, Chart, Column, Header, Side, Table, Tiles, clean, document

MAX_PAGES = 2  # the CSV holds every line; paper is for a glance

# Caps per table; the last page may cut further so the report always fits.
LIMITS = {"stores": 12, "personal": 10, "printed": 8, "cashiers": 10, "tills": 10, "fraud": 8, "voids": 8,
          "conflicts": 8, "disputes": 8}


def _period(report: dict) -> tuple[str, str]:
    """The report's title and its days in words."""
    locale = format_locale()
    try:
        first = date.fromisoformat(report.get("from") or report.get("date") or "")
        last = date.fromisoformat(report.get("to") or report.get("from") or "")
    except (TypeError, ValueError):
        return _("Day report"), "—"
    if first == last:
        return _("Day report"), babel_dates.format_date(first, "full", locale=locale)
    days = (last - first).days + 1
    return _("Report of several days"), _("{first} to {last} ({days} days)").format(
        first=babel_dates.format_date(first, "medium", locale=locale),
        last=babel_dates.format_date(last, "medium", locale=locale), days=format_number(days))


def _where(scope: dict) -> str:
    if scope.get("till"):
        return _("Till: {till}").format(till=clean(scope["till"], 60))
    if "store_id" in scope and not scope.get("store_id") and scope.get("retailer_id"):
        return _("All stores and tills of the retailer")
    return _("All tills of the store")


def _generated(at: float, tz: str) -> str:
    moment = datetime.fromtimestamp(at, ZoneInfo(tz))
    return babel_dates.format_datetime(moment, "medium", locale=format_locale())


def _blocks(report: dict, generated_at: float) -> tuple[list[Block], str]:
    """The report's pieces in reading order, and the line under every page."""
    ctx = cell.Context(report)
    header, tiles, running = _headline(report, ctx, generated_at)
    by_method, by_decided, key_figures = _how(report)
    personal, printed = _vouchers(report, ctx)
    stores, cashiers, tills = _where_and_who(report, ctx)
    refusals, fraud, voids, conflicts = _trouble(report, ctx)
    return [
        header, tiles, _charts(report, ctx),
        *([stores] if stores is not None else []),  # a retailer's report: its stores first
        Side((by_method, 1), (key_figures, 1)),
        personal, printed,
        Side((cashiers, 1), (tills, 1)),
        Side((refusals, 1), (by_decided, 1)),
        fraud, _disputes(report, ctx), voids, conflicts,
    ], running


def _headline(report: dict, ctx: cell.Context, generated_at: float) -> tuple[Header, Tiles, str]:
    scope = report.get("scope") or {}
    title, period = _period(report)
    store = clean(scope.get("store_name") or scope.get("retailer_name"), 120) or "—"
    try:
        generated = _generated(generated_at, ctx.tz)
    except (ValueError, KeyError, OSError):
        generated = format_when(generated_at)
    header = Header(title, store, [
        f"{period}  ·  {_where(scope)}",
        _("Time zone: {tz}  ·  Generated {when}").format(
            tz=clean(report["timezone"], 60) if report.get("timezone") else _("each store's own"), when=generated),
    ])

    kpis = report.get("kpis") or {}
    conflicts = report.get("conflicts") or {}
    flagged = (report.get("fraud") or {}).get("flagged") or 0
    notes = []
    if report.get("discount_unpriced"):
        notes.append(_("Not in the discount total: {n} redemptions of percentage vouchers (the amount depends on "
                       "the sale).").format(n=cell.count(report["discount_unpriced"])))
    others = report.get("discount_other_currencies") or {}
    if others:
        notes.append(_("Discounts in other currencies: {amounts}").format(
            amounts=", ".join(cell.money(a, c) for c, a in list(others.items())[:6])))
    currency = (report.get("discount_total") or {}).get("currency") or "PYG"
    tiles = Tiles([
        (_("Redemptions"), cell.count(report.get("count")), "", False),
        (_("Discount given"), cell.money((report.get("discount_total") or {}).get("amount"), currency), "", False),
        (_("Attempts"), cell.count(report.get("attempts")), _("scans and typed codes"), False),
        (_("Refusals"), cell.count((report.get("refused") or {}).get("count")),
         _("{share} of attempts").format(share=cell.share(kpis.get("refusal_rate"))), False),
        (_("Decided offline"), cell.share(kpis.get("offline_share")), _("of attempts"), False),
        (_("Conflicts"), cell.count(conflicts.get("count")),
         _("{share} of accepted").format(share=cell.share(kpis.get("conflict_rate"))), bool(conflicts.get("count"))),
        (_("Voided"), cell.count((report.get("voids") or {}).get("count")), "", False),
        (_("Fraud signals"), cell.count(flagged), _("flagged") if flagged else _("none flagged"), bool(flagged)),
    ], notes)

    return header, tiles, f"{store}  ·  {period}"


def _charts(report: dict, ctx: cell.Context) -> Block:
    hours = [int(v) if isinstance(v, (int, float)) else 0 for v in (report.get("by_hour") or [0] * 24)][:24]
    no_data = _("No redemptions")
    if ctx.single_day:
        charts: Block = Chart(_("Redemptions by hour"), hours, [str(h) for h in range(len(hours))], empty=no_data)
    else:
        days = report.get("by_day") or []
        day_values = [int(d.get("count") or 0) for d in days]
        day_labels = [str(d.get("date") or "")[8:10].lstrip("0") for d in days]
        charts = Side((Chart(_("Redemptions by hour, days summed"), hours,
                             [str(h) for h in range(len(hours))], empty=no_data), 1),
                      (Chart(_("Redemptions by day"), day_values, day_labels, empty=no_data), 1))

    return charts


def _how(report: dict) -> tuple[Table, Table, Table]:
    """By method, online and offline, and the key figures."""
    kpis = report.get("kpis") or {}
    count = report.get("count") or 0
    methods = report.get("by_method") or {}
    # The words of the screen and the backend (words/labels.py); a method this till does not know, as it came.
    method_rows = [(labels.method_name(m) if m in labels.METHODS else clean(m, 30), cell.count(n),
                    cell.share(round(n / count, 4) if count else None))
                   for m, n in methods.items() if isinstance(n, (int, float))]
    by_method = Table(_("By method"), [Column(_("Method"), 3), Column(_("Redemptions"), 1.6, "right"),
                                       Column(_("Share"), 1.2, "right")], method_rows)
    decided = report.get("decided") or {}
    decided_rows = [(_("Online: the backend decided"), cell.count(decided.get("online")),
                     cell.share(round((decided.get("online") or 0) / count, 4) if count else None)),
                    (_("Offline: the till decided alone"), cell.count(decided.get("offline")),
                     cell.share(round((decided.get("offline") or 0) / count, 4) if count else None))]
    by_decided = Table(_("Online and offline"), [Column(_("Decided"), 3), Column(_("Redemptions"), 1.6, "right"),
                                                 Column(_("Share"), 1.2, "right")], decided_rows)

    def ms(value: object) -> str:
        return _("{ms} ms").format(ms=format_number(value)) if isinstance(value, (int, float)) else "—"

    kpi_rows = [
        (_("Scan to verdict, median"), ms(kpis.get("processing_ms_p50"))),
        (_("Scan to verdict, 95 % within"), ms(kpis.get("processing_ms_p95"))),
        (_("Redeemed with the camera"), cell.share(kpis.get("camera_share"))),
        (_("Redeemed with a typed code"), cell.share(kpis.get("typed_share"))),
        (_("Attempts decided offline"), cell.share(kpis.get("offline_share"))),
        (_("Successful syncs"), cell.share(kpis.get("sync_success_rate"))),
        (_("Conflict rate"), cell.share(kpis.get("conflict_rate"))),
        (_("Refusal rate"), cell.share(kpis.get("refusal_rate"))),
    ]
    key_figures = Table(_("Key figures"), [Column(_("Figure"), 3.2), Column(_("Value"), 1.4, "right")], kpi_rows,
                        note=_("— : nothing measured"))

    return by_method, by_decided, key_figures


def _vouchers(report: dict, ctx: cell.Context) -> tuple[Table, Table]:
    currency = (report.get("discount_total") or {}).get("currency") or "PYG"
    by_voucher = report.get("by_voucher") or {}
    personal = by_voucher.get("personal") or []
    personal_table = Table(
        _("Personal vouchers"),
        [Column(_("Voucher"), 6), Column(_("Discount"), 1.6, "right"), Column(_("Redemptions"), 1.5, "right"),
         Column(_("Discount total"), 1.9, "right")],
        [(ctx.voucher(e.get("voucher_id"), e.get("title")), cell.discount(e.get("discount")),
          cell.count(e.get("count")), cell.money(e.get("discount_total"), currency))
         for e in personal[:LIMITS["personal"]]],
        total=len(personal))
    printed = by_voucher.get("printed") or []
    printed_table = Table(
        _("Printed vouchers (booklet codes)"),
        [Column(_("Voucher"), 4.2), Column(_("Codes used"), 2.6), Column(_("Daily limit"), 1.4, "right"),
         Column(_("Discount"), 1.4, "right"), Column(_("Redemptions"), 1.5, "right"),
         Column(_("Discount total"), 1.9, "right")],
        [(ctx.voucher(e.get("voucher_id"), e.get("title")), cell.codes(e.get("codes")),
          cell.count(e["store_day_limit"]) if e.get("store_day_limit") else "—", cell.discount(e.get("discount")),
          cell.count(e.get("count")), cell.money(e.get("discount_total"), currency))
         for e in printed[:LIMITS["printed"]]],
        total=len(printed))

    return personal_table, printed_table


def _where_and_who(report: dict, ctx: cell.Context) -> tuple[Table | None, Table, Table]:
    currency = (report.get("discount_total") or {}).get("currency") or "PYG"
    stores = report.get("by_store") or []
    store_table = Table(
        _("By store"), [Column(_("Store"), 4.2), Column(_("Redemptions"), 1.5, "right"),
                        Column(_("Discount"), 1.9, "right"), Column(_("Refusals"), 1.4, "right"),
                        Column(_("Conflicts"), 1.5, "right"), Column(_("Voided"), 1.4, "right"),
                        Column(_("Offline"), 1.5, "right")],
        [(clean(e.get("name"), 80) or clean(e.get("store_id"), 64) or "—", cell.count(e.get("count")),
          cell.money(e.get("discount"), currency), cell.count(e.get("refused")), cell.count(e.get("conflicts")),
          cell.count(e.get("voids")), cell.count(e.get("offline"))) for e in stores[:LIMITS["stores"]]],
        total=len(stores)) if stores else None
    cashiers = report.get("by_cashier") or []
    cashier_table = Table(
        _("By cashier"), [Column(_("Cashier"), 3), Column(_("Redemptions"), 1.7, "right"),
                          Column(_("Refusals"), 1.4, "right"), Column(_("Discount"), 1.9, "right")],
        [(ctx.person(e.get("staff_id"), e.get("name")), cell.count(e.get("count")), cell.count(e.get("refused")),
          cell.money(e.get("discount"), currency)) for e in cashiers[:LIMITS["cashiers"]]],
        total=len(cashiers))
    tills = report.get("by_till") or []
    till_table = Table(
        _("By till"), [Column(_("Till"), 2.0), Column(_("Redemptions"), 1.5, "right"),
                       Column(_("Refusals"), 1.4, "right"), Column(_("Conflicts"), 1.5, "right"),
                       Column(_("Offline"), 1.8, "right")],
        [(clean(e.get("till"), 60) or "—", cell.count(e.get("count")), cell.count(e.get("refused")),
          cell.count(e.get("conflicts")), cell.count(e.get("offline"))) for e in tills[:LIMITS["tills"]]],
        total=len(tills))

    return store_table, cashier_table, till_table


def _trouble(report: dict, ctx: cell.Context) -> tuple[Table, Table, Table, Table]:
    """Refusals by reason, fraud signals, voids and conflicts."""
    refused = report.get("refused") or {}
    voids = report.get("voids") or {}
    conflicts = report.get("conflicts") or {}
    by_reason = refused.get("by_reason") or {}
    attempts = report.get("attempts") or 0
    reason_table = Table(
        _("Refused, by reason"), [Column(_("Reason"), 4), Column(_("Attempts"), 1.4, "right"),
                                  Column(_("Share"), 1.2, "right")],
        [(reasons.headline(None if r == "unknown" else r), cell.count(n),
          cell.share(round(n / attempts, 4) if attempts and isinstance(n, (int, float)) else None))
         for r, n in by_reason.items()],
        empty=_("No refused attempts."))

    fraud_rows, fraud_flags, fraud_total = _fraud_rows(report.get("fraud") or {}, ctx, LIMITS["fraud"])
    fraud_table = Table(_("Fraud signals"), [Column(_("Signal"), 4.2), Column(_("Where"), 2.4),
                                             Column(_("Details"), 6.2)],
                        fraud_rows, total=fraud_total, flagged=fraud_flags,
                        empty=_("No signals: nothing unusual."))

    void_items = voids.get("items") or []
    void_table = Table(
        _("Voided redemptions"),
        [Column(_("When"), 1.2), Column(_("Till"), 1.2), Column(_("Voucher"), 1.8), Column(_("Code"), 1.0),
         Column(_("Voided by"), 1.4), Column(_("Voided at"), 1.1), Column(_("Reason"), 2.2),
         Column(_("Manager's PIN"), 3.9)],
        [(ctx.item_when(e), clean(e.get("till"), 60), ctx.voucher(e.get("voucher_id"), e.get("title")),
          cell.code(e), ctx.person(e["void_staff_id"]) if e.get("void_staff_id") else "—",
          ctx.when(e["void_at"]) if e.get("void_at") is not None else "—",
          clean(e.get("void_reason")) or "—", judged.void_proof(e.get("proof")))
         for e in void_items[:LIMITS["voids"]]],
        total=voids.get("count") if isinstance(voids.get("count"), int) else len(void_items),
        # A void whose manager was not proven is worth a look: anyone at that till may have made it.
        flagged=[e.get("proof") == "unverified" for e in void_items[:LIMITS["voids"]]],
        empty=_("No redemption was voided."))

    conflict_items = conflicts.get("items") or []
    conflict_table = Table(
        _("Conflicts: redeemed first at another till"),
        [Column(_("When"), 1.5), Column(_("Till"), 1.8), Column(_("Voucher"), 3.6), Column(_("Code"), 1.3),
         Column(_("Redeemed first"), 3.6)],
        [(ctx.item_when(e), clean(e.get("till"), 60), ctx.voucher(e.get("voucher_id"), e.get("title")),
          cell.code(e), _first(e.get("winner"), ctx)) for e in conflict_items[:LIMITS["conflicts"]]],
        total=conflicts.get("count") if isinstance(conflicts.get("count"), int) else len(conflict_items),
        empty=_("No conflicts."))

    return reason_table, fraud_table, void_table, conflict_table


def _disputes(report: dict, ctx: cell.Context) -> Table:
    """Redemptions the backend judged otherwise than their till (its verdict is what the report counts)."""
    items = [e for e in report.get("disputes") or [] if isinstance(e, dict)]
    # A discount the till gave that the backend does not count comes first; a doubted time after.
    shown = sorted(items, key=lambda e: e.get("dispute") not in GIVEN_BUT_REFUSED)[:LIMITS["disputes"]]
    return Table(
        _("Disputes: the backend judged otherwise"),
        [Column(_("When"), 1.3), Column(_("Till"), 1.5), Column(_("Voucher"), 2.4), Column(_("Code"), 1.2),
         Column(_("The till"), 2.2), Column(_("The backend"), 4.6)],
        [(ctx.item_when(e), clean(e.get("till"), 60), ctx.voucher(_said(e).get("voucher_id"), e.get("title")),
          clean(judged.code_of(e), 40) or "—", judged.till_did(e), clean(judged.backend_says(e), 200))
         for e in shown],
        # The till gave a discount the backend does not count: the manager's to look into.
        flagged=[bool(e.get("dispute") in GIVEN_BUT_REFUSED) for e in shown],
        total=len(items), empty=_("No disputes: the backend agreed with every till."))


def _said(item: dict) -> dict:
    return item["till_said"] if isinstance(item.get("till_said"), dict) else {}


def _first(winner: object, ctx: cell.Context) -> str:
    if not isinstance(winner, dict) or not winner:
        return "—"
    return _("{till}, {when}").format(till=clean(winner.get("till"), 60) or _("another till"),
                                      when=ctx.when(winner.get("at")))


def _fraud_rows(fraud: dict, ctx: cell.Context, limit: int) -> tuple[list[tuple[str, str, str]], list[bool], int]:
    """Up to `limit` lines of signals worth a look (flagged first, the kinds taking turns so each shows),
    their flags, and how many there are in all."""
    kinds = [
        # A till's ordinary busiest minute is no signal: only flagged velocity is listed.
        [("velocity", e) for e in fraud.get("velocity") or [] if e.get("flagged")],
        [("repeated", e) for e in fraud.get("repeated_refusals") or []],
        [("overuse", e) for e in fraud.get("printed_overuse") or []],
        [("over_total", e) for e in fraud.get("printed_over_total") or []],
    ]
    flagged = [[item for item in kind if item[1].get("flagged", True)] for kind in kinds]
    others = [[item for item in kind if not item[1].get("flagged", True)] for kind in kinds]
    chosen: list[tuple[str, dict]] = []
    for group in (flagged, others):
        for turn in range(limit):
            chosen += [kind[turn] for kind in group if turn < len(kind)]
    chosen = chosen[:limit]
    rows = [_fraud_row(kind, e, ctx) for kind, e in chosen]
    return rows, [bool(e.get("flagged", True)) for _kind, e in chosen], sum(len(kind) for kind in kinds)


def _fraud_row(kind: str, e: dict, ctx: cell.Context) -> tuple[str, str, str]:
    if kind == "velocity":
        details = _("{n} redemptions within a minute, from {when}").format(
            n=cell.count(e.get("peak_per_minute")), when=ctx.when(e.get("peak_at")))
        if e.get("rate_limited"):
            details += "; " + _("{n} refused as too fast").format(n=cell.count(e["rate_limited"]))
        return _("Fast redemptions"), clean(e.get("till"), 60), details
    if kind == "repeated":
        why = ", ".join(f"{reasons.headline(None if r == 'unknown' else r)} × {cell.count(n)}"
                        for r, n in list((e.get("reasons") or {}).items())[:4])
        details = _("{n} refusals ({why}) at {tills}, {first} to {last}").format(
            n=cell.count(e.get("refusals")), why=why, tills=", ".join(clean(t, 40) for t in (e.get("tills") or [])[:3]),
            first=ctx.when(e.get("first_at")), last=ctx.when(e.get("last_at")))
        return _("Code tried again and again"), cell.code(e), details
    if kind == "over_total":
        details = _("{n} past its limit of {limit} in all, at {tills}").format(
            n=cell.count(e.get("uses_over")),
            limit=cell.count(e.get("total_limit")) if e.get("total_limit") is not None else "—",
            tills=", ".join(clean(t, 40) for t in (e.get("tills") or [])[:3]))
        return _("Printed, past its total limit"), ctx.voucher(e.get("voucher_id")), details
    over = bool(e.get("flagged"))
    signal = _("Printed, over its daily limit") if over else _("Printed, at its daily limit")
    details = _("{uses} uses, limit {limit} a day, on {day}").format(
        uses=cell.count(e.get("uses")), limit=cell.count(e.get("store_day_limit")), day=cell.day(e.get("date")))
    return signal, ctx.voucher(e.get("voucher_id")), details


def render(report: dict, *, language: str = "es", generated_at: float | None = None) -> bytes:
    """The report as a PDF of one or two A4 pages, in `language` (es, gn, en or pt)."""
    fonts.register()
    generated_at = time.time() if generated_at is None else generated_at
    with using(language):
        blocks, running = _blocks(report, generated_at)
        return document(blocks, title=clean(f"{_('Day report')} — {running}", 200), footer=running,
                        max_pages=MAX_PAGES)
