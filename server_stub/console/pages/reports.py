"""The day report in the console: a store's or a whole retailer's, any day or range, and voids from it.

The figures are the backend's own report (`operations/reports.daily`, the API's and the till's
`pos_app.core.report`), shown with the same breakdowns as the till's report view, the hour chart drawn here
as SVG (`chart.py`), and the CSV and PDF the API gives as downloads. The redemptions are listed a page at
a time; a manager or admin voids one from there with a reason (`operations/voids.void`, which audits it).

Scope: a store goes through `own_store` (a manager of store A gets 403 for store B's), a retailer through
`own_retailer`, and only someone of no single store's limit (the operator, an admin, a manager of no single
store) may ask for a whole retailer. The console's admins are retailer-wide here, as on every admin page.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from datetime import date
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from babel import dates as babel_dates

from pos_app.core import report as core_report
from pos_app.core.domain import Discount
from pos_app.core.voids import MAX_REASON, VOID_ROLES
from pos_app.words import i18n, judged
from pos_app.words.i18n import N_

from ...errors import Forbidden
from ...http import Download
from .. import web
from ..chart import WIDE, hour_chart
from ..forms import Form, FormInvalid

PAGE_SIZE = 50
LIST_MAX = 50  # conflicts, disputes and voids shown; the CSV holds every line (as the PDF's "and N more")
FORMATS = {"csv": "text/csv; charset=utf-8", "pdf": "application/pdf"}


# --- what was asked ---------------------------------------------------------------------------

@dataclasses.dataclass
class Asked:
    scope: str  # "store:<id>" or "retailer:<id>"
    stores: list  # the stores it covers
    first: date
    last: date
    retailer: dict | None = None  # a whole retailer's report
    page: int = 1

    @property
    def query(self) -> dict[str, str]:
        """The report operation's query (`reports.daily`)."""
        asked = {"date": self.first.isoformat()}
        if self.last != self.first:
            asked["to"] = self.last.isoformat()
        if self.retailer is not None:
            asked["retailer"] = self.retailer["id"]
        else:
            asked["store"] = self.stores[0]["id"]
        return asked

    def link(self, **extra) -> str:
        params = {"scope": self.scope, "date": self.first.isoformat(),
                  **({"to": self.last.isoformat()} if self.last != self.first else {}), **extra}
        return "/console/reports?" + urlencode(params)


def translate(message: str, **fields) -> str:
    """`message` (marked with N_ where written) in the page's language (pages may not import render.py:
    it imports the pages)."""
    text = i18n._(message)
    return text.format(**fields) if fields else text


def whole_retailer_allowed(view) -> bool:
    return view.store_filter() is None


def caller(view):
    """The reports and voids operations' caller: the console's admins (and managers of no single store) are
    retailer-wide, as `view.store_filter` has it."""
    who = view.caller()
    if who.kind == "staff" and whole_retailer_allowed(view):
        who = dataclasses.replace(who, retailer_wide=True)
    return who


def scopes(view) -> list[tuple[str, str]]:
    """The report's choices: each store the person may see, and each retailer if they may see it whole."""
    options = []
    stores = view.stores()
    if whole_retailer_allowed(view):
        for retailer in view.retailers():
            if any(s["retailer_id"] == retailer["id"] for s in stores):
                options.append((f"retailer:{retailer['id']}", translate(N_("All stores: {name}"), name=retailer["name"])))
    options += [(f"store:{s['id']}", s["name"]) for s in stores]
    return options


def today_of(view, timezone: str | None) -> date:
    return dt.datetime.fromtimestamp(view.ctx.clock(), ZoneInfo(timezone or "UTC")).date()


def asked(view) -> Asked:
    """The query read as a form: FormInvalid with each wrong field's message, 403 for what is not theirs."""
    form = view.form = Form(list(view.request.query.items()))
    stores = view.stores()
    scope = form.values.get("scope") or _default_scope(view, stores)
    if scope is None:
        raise FormInvalid({"scope": (N_("No store yet."), {})})
    kind, _, ident = scope.partition(":")
    retailer = None
    if kind == "store" and ident:
        chosen = [view.own_store(ident)]
    elif kind == "retailer" and ident:
        if not whole_retailer_allowed(view):
            raise Forbidden("not_yours", "staff of one store see only that store's report")
        retailer = view.own_retailer(ident)
        chosen = list(view.backend.list_stores(retailer["id"]))
    else:
        form.fail("scope", N_("Choose one of the options."))
        chosen = []
    zone = chosen[0]["timezone"] if chosen else None
    first = form.date("date", required=False) if form.values.get("date") else today_of(view, zone)
    last = form.date("to", required=False) if form.values.get("to") else first
    page = form.integer("page", 1, 100_000, required=False) or 1
    if first is not None and last is not None:
        if last < first:
            form.fail("to", N_("The last day comes before the first."))
        elif (last - first).days + 1 > core_report.MAX_DAYS:
            form.fail("to", N_("A report covers at most {n} days."), n=core_report.MAX_DAYS)
    form.done()
    return Asked(scope, chosen, first, last, retailer, page)


def _default_scope(view, stores) -> str | None:
    mine = view.store_filter() or (view.who.store_id if view.who is not None else None)
    for store in stores:
        if store["id"] == mine:
            return f"store:{store['id']}"
    return f"store:{stores[0]['id']}" if stores else None


# --- the page ---------------------------------------------------------------------------------

def report_page(view):
    try:
        what = asked(view)
    except FormInvalid as exc:
        view.errors = exc.fields
        return view.page("reports_page.html", status=400, scopes=scopes(view), asked=None, report=None)
    report = view.backend.daily_report(caller(view), {**what.query, "lang": view.lang})
    retailer_id = what.retailer["id"] if what.retailer else what.stores[0]["retailer_id"]
    names = {s["id"]: s["name"] for s in view.backend.list_staff(retailer_id)}
    zones = {s["id"]: s["timezone"] for s in what.stores}
    total, rows = view.backend.report_redemptions(what.stores, what.first, what.last,
                                                  offset=(what.page - 1) * PAGE_SIZE, limit=PAGE_SIZE)
    titles = {e["voucher_id"]: e["title"] for kind in ("personal", "printed")
              for e in report["by_voucher"][kind] if e["voucher_id"]}
    titles.update({i["voucher_id"]: i["title"] for part in ("conflicts", "voids")
                   for i in report[part]["items"] if i.get("voucher_id") and i.get("title")})
    pages = max(1, -(-total // PAGE_SIZE))
    words = {"title": translate(N_("Redemptions by hour, days summed")) if what.first != what.last
             else translate(N_("Redemptions by hour")),
             "hour_label": translate(N_("Hour of the day")), "count_label": translate(N_("Redemptions")),
             "bar_title": lambda h, n: translate(N_("{hour}:00 to {next}:00: {n} redemptions"), hour=h, next=h + 1,
                                                 n=i18n.format_number(n))}
    chart = {"narrow": hour_chart(report["by_hour"], **words),
             "wide": hour_chart(report["by_hour"], width=WIDE, **words)}
    return view.page("reports_page.html", scopes=scopes(view), asked=what, report=report, chart=chart,
                     staff_names=names, zones=zones, titles=titles, rows=rows, total_rows=total, pages=pages,
                     may_void=may_void(view), moment=moment, period=period(what), code_of=judged.code_of,
                     till_did=judged.till_did, backend_says=judged.backend_says, void_proof=judged.void_proof,
                     discount_text=discount_text, list_max=LIST_MAX, day_text=day_text,
                     downloads={fmt: "/console/reports/download?" + urlencode({**_link_query(what), "format": fmt})
                                for fmt in FORMATS},
                     previous=what.link(page=what.page - 1) if what.page > 1 else None,
                     next_page=what.link(page=what.page + 1) if what.page < pages else None)


def _link_query(what: Asked) -> dict:
    return {"scope": what.scope, "date": what.first.isoformat(),
            **({"to": what.last.isoformat()} if what.last != what.first else {})}


def day_text(iso: str) -> str:
    return i18n.format_date(date.fromisoformat(iso))


def discount_text(discount: dict | None) -> str:
    return i18n.format_discount(Discount(**discount)) if discount else "—"


def period(what: Asked) -> str:
    locale = i18n.format_locale()
    if what.first == what.last:
        return babel_dates.format_date(what.first, "full", locale=locale)
    return translate(N_("{first} to {last} ({days} days)"), first=babel_dates.format_date(what.first, "medium", locale=locale),
                     last=babel_dates.format_date(what.last, "medium", locale=locale),
                     days=i18n.format_number((what.last - what.first).days + 1))


def moment(item: dict | None = None, *, at: float | None = None, timezone: str | None = None) -> str:
    """A report item's time as the store's clock said it (its `local_time`), or `at` in `timezone`."""
    if item is not None and item.get("local_time"):
        when = dt.datetime.fromisoformat(item["local_time"])
    elif at is not None:
        when = dt.datetime.fromtimestamp(at, ZoneInfo(timezone or "UTC"))
    else:
        return "—"
    return babel_dates.format_datetime(when, "short", locale=i18n.format_locale())


def download(view):
    try:
        what = asked(view)
    except FormInvalid as exc:
        view.errors = exc.fields
        return view.page("reports_page.html", status=400, scopes=scopes(view), asked=None, report=None)
    fmt = view.query("format")
    if fmt not in FORMATS:
        view.errors = {"format": (N_("Choose one of the options."), {})}
        return view.page("reports_page.html", status=400, scopes=scopes(view), asked=None, report=None)
    made = view.backend.daily_report(caller(view), {**what.query, "format": fmt, "lang": view.lang})
    days = what.first.isoformat() + ("" if what.last == what.first else f"_{what.last.isoformat()}")
    name = f"pika-report-{'retailer' if what.retailer else 'store'}-{days}.{fmt}"
    return 200, Download(made.data, made.content_type,
                         (("Content-Disposition", f'attachment; filename="{name}"'), ("Cache-Control", "no-store"),
                          ("X-Content-Type-Options", "nosniff")))


# --- voids --------------------------------------------------------------------------------------

def may_void(view) -> bool:
    who = view.who
    return who is not None and (who.operator or (who.kind == "staff" and who.role in VOID_ROLES))


def _voidable(view) -> dict:
    if not may_void(view):
        raise Forbidden("forbidden", "only a manager or an admin may void a redemption")
    found = view.backend.redemption(view.request.params["id"])
    store = view.own_store(found["store_id"])
    return {**found, "store": store}


def _back(view) -> str:
    back = web.safe_next(view.form.values.get("back") if view.form is not None and view.request.method == "POST"
                         else view.request.query.get("back"))
    return back if back.startswith("/console/reports") else "/console/reports"


def void_page(view):
    found = _voidable(view)
    return view.page("reports_void.html", found=found, back=_back(view), title=_title(view, found["voucher_id"]),
                     when=moment(at=found["at"], timezone=found["store"]["timezone"]), max_reason=MAX_REASON)


def _title(view, voucher_id: str | None) -> str:
    """The voucher's title in the page's language, else the first it has (a garbage scan has no voucher)."""
    if not voucher_id:
        return ""
    texts = view.backend.get_voucher(voucher_id).get("texts") or {}
    words = texts.get(view.lang) or next(iter(texts.values()), {})
    return str(words.get("title") or "")


def void(view):
    found = _voidable(view)
    reason = view.form.text("reason", MAX_REASON)
    if reason is not None and ("<" in reason or ">" in reason):
        view.form.fail("reason", N_("Plain text please: without < or >."))
    view.form.done()
    view.backend.void(caller(view), found["key"], reason)
    back = _back(view)
    return view.redirect(back + ("&" if "?" in back else "?") + "ok=voided")


def routes():
    return [
        ("GET", "/reports", report_page, "reports"),
        ("GET", "/reports/download", download, "reports"),
        ("GET", "/reports/void/{id}", void_page, "reports"),
        ("POST", "/reports/void/{id}", void, "reports", void_page),
    ]

