"""Findings at the console: what the backend's checks found wrong, in words, until a person resolves it.

The findings (operations/findings.py) come from the backend's check of each
till's log (the `log_*` codes) and from reconciliation (operations/reconcile.py,
nightly, or "Check now" here). Who sees what (area findings): the operator
every retailer's; a retailer's admin their retailer's; a manager their
store's (every store's, for a manager of no single store). A finding out of
the person's scope is not found, to open or to resolve, as the API answers.

Who resolves what: the operator and a retailer's admin any finding they see.
A manager resolves their store's findings about looking after a till (not
sending, entries set aside, its log not received or never sent, silent,
disputed redemptions), which they are the ones to deal with; they see but
do not close the evidence that a till's record was tampered with (its log
edited, rewound, its database changed…) nor a printed code over its limits:
a manager's own store's till is whose record it is, and a voucher's limits
are the retailer's. "Check now" (a whole reconciliation run) is for the
operator (every retailer) and a retailer's admin (theirs).
"""

from __future__ import annotations

from pos_app.words import i18n
from pos_app.words.i18n import N_

from ...errors import Forbidden, Invalid, NotFound
from ...operations import findings, reconcile
from .. import finding_words as words
from ..forms import Form, FormInvalid
from .chain import plain_text
from .claims import title_of

PAGE = 50
STATES = {"open": N_("Open"), "resolved": N_("Resolved"), "all": N_("All")}
STATE_NAMES = {"open": N_("Open"), "gone": N_("Gone, still open"), "resolved": N_("Resolved")}
STATE_TAGS = {"open": "bad", "gone": "warn", "resolved": "good"}
# What a manager may close (the module's docstring says why): a till of their store needing care.
MANAGER_CODES = frozenset({"outbox_stuck", "parked_old", "log_behind", "log_unsynced", "till_silent",
                           "dispute_open"})
FILTERS = ("state", "code", "store", "page")
DEFAULT_ZONE = "America/Asuncion"
NOTE_REFUSED = N_("A note is one line of plain text, without control or direction marks.")


def may_check(view) -> bool:
    who = view.who
    return who.operator or (who.kind == "staff" and who.role == "admin")


def may_resolve(view, finding: dict) -> bool:
    if finding["resolved_at"] is not None:
        return False
    if may_check(view):
        return True
    return finding["code"] in MANAGER_CODES and finding["device_id"] is not None


def _mine(view, finding: dict) -> bool:
    retailer, store = view.retailer_filter(), view.store_filter()
    return (retailer is None or finding["retailer_id"] == retailer) and (store is None or finding["store_id"] == store)


def own_finding(view, raw: str) -> dict:
    """The finding of a URL's id, if this person may see it; else 404 (another's is not found)."""
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise NotFound("not_found", "no such finding")
    finding = findings.get_finding(view.ctx, int(raw))
    if not _mine(view, finding):
        raise NotFound("not_found", "no such finding")
    return finding


def _names(view, listed: list[dict]) -> dict[str, str]:
    """Ids to names for what the findings name: stores, tills, vouchers, retailers (the operator's)."""
    names = {s["id"]: s["name"] for s in view.stores()}
    if view.retailer_filter() is None:
        names.update({r["id"]: r["name"] for r in view.retailers()})
    wanted_devices = {f["device_id"] for f in listed if f["device_id"]}
    wanted_vouchers = {str(f["detail"].get("voucher_id")) for f in listed
                       if isinstance(f["detail"], dict) and f["detail"].get("voucher_id")}
    for device_id in sorted(wanted_devices):
        try:
            names[device_id] = view.backend.get_device(device_id)["name"]
        except NotFound:
            pass  # a till deleted since (a restore): its id is shown
    with i18n.using(view.lang):
        for voucher_id in sorted(wanted_vouchers):
            try:
                names[voucher_id] = title_of(view.backend.get_voucher(voucher_id))
            except (NotFound, ValueError):
                pass
    return names


def _zones(view) -> tuple[dict[str, str], str]:
    """Each store's time zone, and the one a finding of no store is said in (the person's first store's)."""
    stores = view.stores()
    zones = {s["id"]: s["timezone"] for s in stores}
    return zones, stores[0]["timezone"] if stores else DEFAULT_ZONE


def _when(zone: str | None):
    def words_of(at: object) -> str:
        if isinstance(at, bool) or not isinstance(at, (int, float)):
            return "—"
        try:
            return i18n.format_when(float(at), zone)
        except (OverflowError, ValueError, OSError):  # a detail's number that is no moment
            return str(at)
    return words_of


def _shown(view, listed: list[dict]) -> list[dict]:
    """Each finding with what the template shows: its sentence, names, zone and whether this person may close it."""
    names = _names(view, listed)
    zones, default_zone = _zones(view)
    shown = []
    with i18n.using(view.lang):
        for f in listed:
            zone = zones.get(f["store_id"] or "", default_zone)
            when = _when(zone)
            shown.append({**f, "sentence": words.sentence(f, names, when), "facts": words.facts(f, names, when),
                          "named": words.named_records(f), "zone": zone, "tamper": f["code"] in words.TAMPER_CODES,
                          "till_name": names.get(f["device_id"] or "") or f["device_id"],
                          "store_name": names.get(f["store_id"] or "") or f["store_id"],
                          "retailer_name": names.get(f["retailer_id"] or "") or f["retailer_id"],
                          "may_resolve": may_resolve(view, f)})
    return shown


def _read_filters(view) -> dict:
    form = Form([(k, v) for k, v in view.request.query.items() if k in FILTERS])
    view.form = form  # the filters keep what was chosen
    stores = {s["id"]: s for s in view.stores()}
    query = {"state": form.choice("state", STATES, required=False) or "open",
             "code": form.choice("code", words.CODE_NAMES, required=False),
             "store": form.choice("store", stores, required=False),
             "page": form.integer("page", 1, 10_000, required=False) or 1}
    return query


def _last_run(view) -> dict | None:
    """When reconciliation last checked this person's retailer (the operator: any), with its counts; a
    store's person sees the time only (the counts are the whole retailer's)."""
    last = reconcile.last_run(view.ctx, view.retailer_filter())
    if not last or not isinstance(last.get("ran_at"), (int, float)):
        return None
    return {"ran_at": last["ran_at"], "counts": view.store_filter() is None, "opened": last.get("opened"),
            "seen": last.get("seen"), "gone": last.get("gone")}


def findings_page(view):
    query = _read_filters(view)
    errors = dict(view.form.errors)
    view.errors = errors
    found = {"findings": [], "total": 0}
    if not errors:
        found = findings.list_findings(view.ctx, retailer_id=view.retailer_filter(),
                                       store_id=query["store"] or view.store_filter(), state=query["state"],
                                       code=query["code"], limit=PAGE, offset=(query["page"] - 1) * PAGE)
    kept = {k: v for k, v in view.request.query.items() if k in FILTERS and k != "page" and v}
    _, default_zone = _zones(view)
    return view.page("findings.html", status=400 if errors else 200, findings=_shown(view, found["findings"]),
                     total=found["total"], page=query["page"], pages=max(1, -(-found["total"] // PAGE)), kept=kept,
                     states=STATES, state=query["state"], code_names=words.CODE_NAMES, stores=view.stores(),
                     state_names=STATE_NAMES, state_tags=STATE_TAGS, may_check=may_check(view),
                     last_run=_last_run(view), zone=default_zone)


def finding_page(view):
    finding = own_finding(view, view.request.params["id"])
    return view.page("findings_one.html", f=_shown(view, [finding])[0], state_names=STATE_NAMES,
                     state_tags=STATE_TAGS, code_names=words.CODE_NAMES, note_max=findings.NOTE_CHARS,
                     may_check=may_check(view))


def resolve(view):
    finding = own_finding(view, view.request.params["id"])
    if finding["resolved_at"] is None and not may_resolve(view, finding):
        raise Forbidden("forbidden", "closing this finding is for the retailer's admin")
    note = plain_text(view.form, "note", findings.NOTE_CHARS)
    view.form.done()
    try:
        findings.resolve(view.ctx, finding["id"], note, retailer_id=view.retailer_filter())
    except Invalid:  # the note's own rule, stricter than a form's text (a line separator): said beside it
        raise FormInvalid({"note": (NOTE_REFUSED, {})}) from None
    return view.redirect("/console/findings?ok=resolved")


def check_now(view):
    if not may_check(view):
        raise Forbidden("forbidden", "a check of the whole retailer is for its admin")
    view.form.done()
    reconcile.run(view.ctx, retailer_id=view.retailer_filter())
    return view.redirect("/console/findings?ok=checked")


def routes():
    return [
        ("GET", "/findings", findings_page, "findings"),
        ("POST", "/findings/check", check_now, "findings", findings_page),
        ("GET", "/findings/{id}", finding_page, "findings"),
        ("POST", "/findings/{id}/resolve", resolve, "findings", finding_page),
    ]
