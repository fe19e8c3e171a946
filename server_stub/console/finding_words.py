"""What a finding says in words: one sentence per code, and its detail as named facts a person can check.

A finding's row names its till and store by id and keeps what the check saw
as JSON (operations/findings.py; the codes: pos_app.core.till_log's `log_*`,
the backend's log check, operations/reconcile.py). The console shows names
where it has them (the page passes `names`: ids to the till's, store's or
voucher's name), so a manager reads "Caja 2 of Centro", not `dev_…`. The
detail's counts, days and times are formatted in the page's language; the
records it names (sequence numbers, keys) are shown as they are, since a
person looks them up by them. Only the console shows findings, so the words
live here, not with the till's (pos_app/words). Called while a template
renders (its language chosen).
"""

from __future__ import annotations

from typing import Callable, Mapping

from pos_app.words import i18n
from pos_app.words.i18n import N_, _, ngettext

# The filter's names for each code, grouped as a person looks for them.
CODE_NAMES = {
    "log_gap": N_("Till log: records missing"),
    "log_edited": N_("Till log: a record changed"),
    "log_reordered": N_("Till log: records out of order"),
    "log_rewound": N_("Till log: went back"),
    "log_bad_signature": N_("Till log: wrong signature"),
    "log_malformed": N_("Till log: unreadable records"),
    "log_key_changed": N_("Till log: another key"),
    "log_mismatch": N_("Till log: differs from the redemption"),
    "log_row_missing": N_("Till database: a row deleted"),
    "log_row_changed": N_("Till database: a row changed"),
    "log_chain_missing": N_("Till database: log records deleted"),
    "printed_store_day_over": N_("Printed code over its daily limit"),
    "printed_total_over": N_("Printed code over its total limit"),
    "outbox_stuck": N_("Till not sending"),
    "parked_old": N_("Entries set aside at a till"),
    "log_behind": N_("Till log not received"),
    "log_unsynced": N_("Logged but never sent"),
    "till_silent": N_("Till silent"),
    "dispute_open": N_("Disputed redemptions"),
}
# What a finding of each code is evidence of: the till's record was tampered with (or its disk failed), as
# against a till or a voucher that needs looking after. Shown as the finding's tag.
TAMPER_CODES = frozenset({"log_gap", "log_edited", "log_reordered", "log_rewound", "log_bad_signature",
                          "log_malformed", "log_key_changed", "log_mismatch", "log_row_missing", "log_row_changed",
                          "log_chain_missing"})

# Where each code's detail keeps the count its sentence says (a number, or a list whose length it is).
_COUNT_OF = {"log_gap": ("seqs",), "log_rewound": ("seqs", "records"), "log_row_missing": ("seqs", "records"),
             "log_row_changed": ("seqs", "records"), "printed_store_day_over": ("uses",),
             "printed_total_over": ("uses",), "outbox_stuck": ("outbox",), "parked_old": ("parked",),
             "log_behind": ("missing",), "log_unsynced": ("records",), "dispute_open": ("disputes", "keys")}


def _count(detail: Mapping, *names: str) -> int:
    """The first of `names` that is a count (a whole number, or a list's length) in the detail; else 0."""
    for name in names:
        value = detail.get(name)
        if isinstance(value, bool):
            continue
        if isinstance(value, int):
            return value
        if isinstance(value, (list, tuple)):
            return len(value)
    return 0


def _text(code: object, n: int) -> str:
    """The code's sentence, translated (for `n` where it counts), its fields not yet filled."""
    if code == "log_gap":
        return ngettext("The log of till {till} skips a record: it is missing.",
                        "The log of till {till} skips records: {n} are missing.", n)
    if code == "log_edited":
        return _("A record in the log of till {till} was changed after it was written.")
    if code == "log_reordered":
        return _("The log of till {till} holds records out of order.")
    if code == "log_rewound":
        return ngettext("The log of till {till} went back: it no longer holds a record it had signed.",
                        "The log of till {till} went back: it no longer holds {n} records it had signed.", n)
    if code == "log_bad_signature":
        return _("Till {till} sent its log with a signature that does not match its key.")
    if code == "log_malformed":
        return _("Till {till} sent log records that cannot be read.")
    if code == "log_key_changed":
        return _("Till {till} sent its log signed with another key than the one it registered: none of it was "
                 "kept.")
    if code == "log_mismatch":
        return _("A record in the log of till {till} says something other than the redemption the backend "
                 "received.")
    if code == "log_row_missing":
        return ngettext("A redemption or void the log of till {till} records was deleted from the till's database.",
                        "{n} redemptions or voids the log of till {till} records were deleted from the till's "
                        "database.", n)
    if code == "log_row_changed":
        return ngettext("A redemption or void was changed in the database of till {till} after its log recorded "
                        "it.", "{n} redemptions or voids were changed in the database of till {till} after its log "
                        "recorded them.", n)
    if code == "log_chain_missing":
        return _("Records of the log were deleted from the database of till {till}.")
    if code == "printed_store_day_over":
        return ngettext("Printed voucher {voucher} was used {n} time at {store} on {day}, over its limit of {limit} "
                        "a day.", "Printed voucher {voucher} was used {n} times at {store} on {day}, over its limit "
                        "of {limit} a day.", n)
    if code == "printed_total_over":
        return ngettext("Printed voucher {voucher} was used {n} time in all, over its limit of {limit}.",
                        "Printed voucher {voucher} was used {n} times in all, over its limit of {limit}.", n)
    if code == "outbox_stuck":
        return ngettext("Till {till} has {n} entry waiting to be sent since {when}.",
                        "Till {till} has {n} entries waiting to be sent, the oldest since {when}.", n)
    if code == "parked_old":
        return ngettext("Till {till} set aside {n} entry the backend refused, since {when}.",
                        "Till {till} set aside {n} entries the backend refused, the oldest since {when}.", n)
    if code == "log_behind":
        return ngettext("Till {till} says its log holds {n} record more than the backend received.",
                        "Till {till} says its log holds {n} records more than the backend received.", n)
    if code == "log_unsynced":
        return ngettext("The log of till {till} records {n} redemption or void the backend never received.",
                        "The log of till {till} records {n} redemptions or voids the backend never received.", n)
    if code == "till_silent":
        return _("Till {till} has not been heard from since {when}, while other tills of {store} have.")
    if code == "dispute_open":
        return ngettext("Till {till} and the backend judged {n} redemption of {day} differently.",
                        "Till {till} and the backend judged {n} redemptions of {day} differently.", n)
    return _("Something was found: {code}.")


def sentence(finding: Mapping, names: Mapping[str, str], when: Callable[[object], str]) -> str:
    """The finding in one sentence of the page's language. `names`: ids to names; `when`: a moment as words."""
    d = finding.get("detail") if isinstance(finding.get("detail"), Mapping) else {}
    code = finding.get("code")
    n = _count(d, *_COUNT_OF.get(str(code), ()))
    moment = d.get("oldest_at") if code in ("outbox_stuck", "parked_old") else d.get("last_seen_at") or \
        d.get("enrolled_at")
    return _text(code, n).format(
        n=i18n.format_number(n), code=str(code), day=str(d.get("day") or "?"), when=when(moment),
        limit=i18n.format_number(_count(d, "limit")),
        till=names.get(finding.get("device_id") or "") or str(d.get("till") or finding.get("device_id") or "?"),
        store=names.get(finding.get("store_id") or "") or str(finding.get("store_id") or "?"),
        voucher=names.get(str(d.get("voucher_id") or "")) or str(d.get("voucher_id") or "?"))


# --- the detail, as (label, value) facts ------------------------------------------------------------

_COUNTS = {
    "uses": N_("Uses"), "limit": N_("Limit"), "outbox": N_("Entries waiting"), "parked": N_("Entries set aside"),
    "records": N_("Records"), "disputes": N_("Disputed redemptions"), "missing": N_("Records not received"),
    "claimed_seq": N_("Last record the till claims"), "verified_seq": N_("Last record the backend checked"),
    "silent_hours": N_("Silent after (hours)"),
}
_TIMES = {
    "oldest_at": N_("Oldest since"), "reported_at": N_("Reported"), "claimed_at": N_("Claimed"),
    "last_seen_at": N_("Last heard from"), "enrolled_at": N_("Enrolled"),
}
_LISTS = {"seqs": N_("Records (sequence numbers)"), "keys": N_("Redemptions (keys)"),
          "fields": N_("Fields that differ")}
# Shown elsewhere on the page (as names), or what makes a drift the same one: not repeated as facts.
_SHOWN = frozenset({"device_id", "till", "store_id", "voucher_id", "evidence", "at_least"})
NAMED_SHOWN = 100  # records named in a detail (the checks keep at most 100)


def seq_ranges(seqs: object) -> str:
    """12, 13, 14, 20 → "12–14, 20" (what the list holds that is a whole number)."""
    numbers = sorted({s for s in seqs if isinstance(s, int) and not isinstance(s, bool)}) \
        if isinstance(seqs, (list, tuple)) else []
    parts: list[list[int]] = []
    for n in numbers:
        if parts and isinstance(parts[-1], list) and parts[-1][1] == n - 1:
            parts[-1][1] = n
        else:
            parts.append([n, n])
    return ", ".join(str(a) if a == b else f"{a}–{b}" for a, b in parts) or "—"


def facts(finding: Mapping, names: Mapping[str, str], when: Callable[[object], str]) -> list[tuple[str, str]]:
    """The detail as (label, value) lines in the page's language; a name it does not know, as it is."""
    d = finding.get("detail") if isinstance(finding.get("detail"), Mapping) else {}
    out: list[tuple[str, str]] = []
    for name, value in d.items():
        if name in _SHOWN or name == "named":
            continue
        if name in _COUNTS and isinstance(value, int) and not isinstance(value, bool):
            text = i18n.format_number(value)
            if name == "records" and d.get("at_least") is True:
                text = _("at least {n}").format(n=text)
            out.append((_(_COUNTS[name]), text))
        elif name in _TIMES:
            out.append((_(_TIMES[name]), when(value)))
        elif name == "seqs":
            out.append((_(_LISTS[name]), seq_ranges(value)))
        elif name in _LISTS and isinstance(value, (list, tuple)):
            out.append((_(_LISTS[name]), ", ".join(str(v) for v in value[:NAMED_SHOWN]) or "—"))
        elif name == "day":
            out.append((_("Day"), str(value)))
        elif name == "by_store" and isinstance(value, Mapping):
            out.append((_("Uses by store"), ", ".join(
                f"{names.get(str(k), str(k))}: {i18n.format_number(v) if isinstance(v, int) else v}"
                for k, v in value.items())))
        elif name == "by_kind" and isinstance(value, Mapping):
            out.append((_("By kind"), ", ".join(f"{k}: {v}" for k, v in value.items())))
        elif name == "message":
            out.append((_("The check said"), str(value)))
        else:
            out.append((str(name), _plain(value)))
    return out


def named_records(finding: Mapping) -> list[dict]:
    """The records a detail names one by one ({seq, kind, key, …}), for a table; at most NAMED_SHOWN."""
    d = finding.get("detail") if isinstance(finding.get("detail"), Mapping) else {}
    named = d.get("named") if isinstance(d.get("named"), list) else d.get("records")
    if not isinstance(named, list):
        return []
    return [{k: _plain(v) for k, v in r.items()} for r in named[:NAMED_SHOWN] if isinstance(r, Mapping)]


def _plain(value: object) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{k}: {_plain(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(_plain(v) for v in value)
    if value is None:
        return "—"
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    return str(value)
