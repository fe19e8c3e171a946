"""A voucher's form, read and shown: texts per language, discount, validity as dates, limits.

Shared by the create and the edit pages (pages/vouchers.py). People type
dates; the operations take epoch seconds: a voucher is valid from the start
of its first day to the end of its last, in the retailer's time zone (its
stores' one zone, or America/Asuncion when they have none or several). An
edit that leaves a date as shown keeps the moment stored, even one the API
set to the second, so opening and saving a voucher changes nothing.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from pos_app.core.domain import FALLBACK, LANGUAGES
from pos_app.core.tokens import MAX_PERSONAL_LIFETIME_S
from pos_app.words.i18n import LANGUAGE_NAMES, N_

from .chain import DEFAULT_ZONE, plain_text

TITLE_MAX, TERMS_MAX = 200, 500
PERCENT_MAX, AMOUNT_MAX = 100, 100_000_000  # whole guaraníes
TOTAL_LIMIT_MAX, DAY_LIMIT_MAX = 10_000_000, 1_000_000
DAY_S = 86_400
CLAIM_DAYS_MAX = MAX_PERSONAL_LIFETIME_S // DAY_S  # what tills accept of a claim at most
LIMITS = ("total_limit", "store_day_limit")


def zone_of(view, retailer_id: str) -> str:
    """The time zone a retailer's voucher dates are read in."""
    zones = {s["timezone"] for s in view.backend.list_stores(retailer_id)}
    return zones.pop() if len(zones) == 1 else DEFAULT_ZONE


def start_of(day: dt.date, zone: str) -> int:
    return int(dt.datetime.combine(day, dt.time(0), ZoneInfo(zone)).timestamp())


def shown_from(at: int | None, zone: str) -> str:
    return "" if at is None else dt.datetime.fromtimestamp(at, ZoneInfo(zone)).date().isoformat()


def shown_until(at: int | None, zone: str) -> str:
    """The last day a voucher is valid on: the day before the moment it ends, if that is a midnight."""
    return "" if at is None else dt.datetime.fromtimestamp(at - 1, ZoneInfo(zone)).date().isoformat()


def fallbacks() -> dict[str, tuple[str, ...]]:
    """Each language's fallback chain, itself left out: what a till shows when its text is empty."""
    return {lang: tuple(other for other in FALLBACK[lang] if other != lang) for lang in LANGUAGES}


def fallback_names() -> dict[str, str]:
    """Each chain as the form says it, the languages in their own names: "Español → English → Português"."""
    return {lang: " → ".join(LANGUAGE_NAMES[other] for other in chain) for lang, chain in fallbacks().items()}


def current_values(voucher: dict, extras: dict, zone: str) -> dict[str, str]:
    """A voucher as its form's fields hold it."""
    values = {"kind": voucher["kind"], "discount_kind": voucher["discount"]["kind"],
              "discount_value": str(voucher["discount"]["value"]),
              "valid_from": shown_from(voucher["valid_from"], zone),
              "valid_until": shown_until(voucher["valid_until"], zone), "retailer_id": voucher["retailer_id"]}
    for name in LIMITS:
        values[name] = "" if voucher[name] is None else str(voucher[name])
    ttl = extras.get("claim_ttl_s")
    values["claim_days"] = "" if ttl is None else str(max(1, round(ttl / DAY_S)))
    for lang, entry in voucher["texts"].items():
        for name in ("title", "terms"):
            values[f"{name}_{lang}"] = entry.get(name) or ""
    return values


def read(form, kind: str, zone: str, *, before: dict | None = None, discount: bool = True) -> dict:
    """The voucher's fields as create_voucher / edit_voucher take them; every wrong field failed on `form`.
    `before`: the voucher edited, {voucher, values (current_values), claim_ttl_s}: its dates and claim
    lifetime kept when their fields are left as shown;
    `discount` False: the discount is not read (a published voucher's cannot change)."""
    body: dict = {"texts": _texts(form)}
    if discount:
        how = form.choice("discount_kind", ("percent", "amount"))
        high = PERCENT_MAX if how == "percent" else AMOUNT_MAX
        value = form.integer("discount_value", 1, high)
        if how is not None and value is not None:
            body["discount"] = {"kind": how, "value": value, "currency": "PYG"}
    body.update(_validity(form, zone, before))
    limits = {"total_limit": form.integer("total_limit", 1, TOTAL_LIMIT_MAX, required=False),
              "store_day_limit": form.integer("store_day_limit", 1, DAY_LIMIT_MAX, required=False)}
    days = form.integer("claim_days", 1, CLAIM_DAYS_MAX, required=False)
    if kind == "personal":
        for name, value in limits.items():
            if value is not None:
                form.fail(name, N_("Limits apply to printed vouchers only: leave this empty."))
        kept = before is not None and form.raw("claim_days").strip() == before["values"]["claim_days"]
        body["claim_ttl_s"] = before["claim_ttl_s"] if kept else (None if days is None else days * DAY_S)
    else:
        if days is not None:
            form.fail("claim_days", N_("Claims are for personal vouchers only: leave this empty."))
        body.update(limits)
    return body


def _texts(form) -> dict:
    texts = {}
    for lang in LANGUAGES:
        title = plain_text(form, f"title_{lang}", TITLE_MAX, required=False)
        terms = plain_text(form, f"terms_{lang}", TERMS_MAX, required=False, multiline=True)
        if title or terms:
            texts[lang] = {"title": title or "", "terms": terms or ""}
        if terms and not title and f"title_{lang}" not in form.errors:
            form.fail(f"title_{lang}", N_("A title for these terms, please."))
    if not any(entry["title"] for entry in texts.values()) and not any(
            f"title_{lang}" in form.errors for lang in LANGUAGES):
        form.fail(f"title_{LANGUAGES[0]}", N_("A title in at least one language, please."))
    return texts


def _validity(form, zone: str, before: dict | None) -> dict:
    first, last = form.date("valid_from", required=False), form.date("valid_until", required=False)
    if first is not None and last is not None and last < first:
        form.fail("valid_until", N_("The last day comes before the first."))
    out = {"valid_from": None if first is None else start_of(first, zone),
           "valid_until": None if last is None else start_of(last + dt.timedelta(days=1), zone)}
    if before is not None:  # left as shown: the moment stored stays, to the second
        for name in out:
            if form.raw(name).strip() == before["values"][name]:
                out[name] = before["voucher"][name]
    return out


def texts_shown(texts: dict) -> list[dict]:
    """Per language what a till shows: its own text, or the language it falls back to and that one's text."""
    rows = []
    for lang in LANGUAGES:
        source = next((other for other in FALLBACK[lang] if (texts.get(other) or {}).get("title")), None)
        entry = texts.get(source) or {}
        rows.append({"lang": lang, "own": source == lang, "source": source,
                     "title": entry.get("title", ""), "terms": entry.get("terms", "")})
    return rows
