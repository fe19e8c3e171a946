"""The monthly booklet's pages, for the platform operator: editions, placements, locks, render, preview, files.

Every change goes through the booklet's own Booklets (booklet/editions.py,
`view.console.booklets`), the same calls the API makes, so a page refuses what
the API refuses (a voucher outside the month, a lock no layout can hold) with
the same codes, and writes the same audit records. The PDF and the billing
CSV are the backend's own bytes; the preview is the rendered PDF's pages as
images (console/booklet_preview.py), named by the PDF's digest.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re

from babel.dates import format_date

from pos_app.core.domain import Voucher
from pos_app.words import i18n
from pos_app.words.i18n import N_

from ...booklet.layout import LEGAL_POSITIONS, MAX_PAGES
from ...booklet.model import PAPERS, default_price, tier_of
from ...booklet.months import month_gn
from ...booklet.placements import MAX_PRICE
from ...errors import NotFound, Unprocessable
from ...http import Download
from .. import booklet_preview

_MONTH = re.compile(r"^[0-9]{4}-[0-9]{2}$")

# The backend's tiers (booklet/model.py) as a person picks one: a cover (tier 1) or an interior size.
TIER_CHOICES = (  # value, size, cover, label
    ("front", "full", "front", N_("Front cover, full page")),
    ("inside_front", "full", "inside_front", N_("Inside front cover, full page")),
    ("inside_back", "full", "inside_back", N_("Inside back cover, full page")),
    ("back", "full", "back", N_("Back cover, full page")),
    ("full", "full", None, N_("Interior, full page")),
    ("half", "half", None, N_("Interior, half page")),
    ("quarter", "quarter", None, N_("Interior, quarter page")),
    ("single", "single", None, N_("Interior, single space")),
)
TIERS = [{"value": value, "size": size, "cover": cover, "label": label, "tier": tier_of(size, cover),
          "price": default_price(size, cover)} for value, size, cover, label in TIER_CHOICES]
_TIER_BY_VALUE = {t["value"]: t for t in TIERS}
_TIER_OF_PLACEMENT = {(t["size"], t["cover"]): t for t in TIERS}

STATUS_NAMES = {"draft": N_("Draft"), "pending": N_("Waiting for the schedule"), "rendering": N_("Being rendered"),
                "done": N_("Rendered"), "failed": N_("Render failed")}
CONTENT_NAMES = {"voucher": N_("Voucher"), "ad": N_("Advert"), "sponsored": N_("Sponsored"), "image": N_("Image"),
                 "house": N_("House advert")}
EDITABLE = ("draft", "pending", "failed")


def _position_name(size: str, position: int) -> tuple[str, dict]:
    """Where on the page's grid (2 columns × 4 rows) a shape's top-left space is, in words."""
    row = position // 2 + 1
    if size == "single":
        return (N_("Row {row}, left") if position % 2 == 0 else N_("Row {row}, right")), {"row": row}
    return N_("From row {row}"), {"row": row}


def _positions(size: str) -> list[tuple[str, tuple[str, dict]]]:
    return [(str(p), _position_name(size, p)) for p in LEGAL_POSITIONS[size]]


def _month_label(month: str) -> str:
    """"mayo 2031": the month in the page's language (called while the page renders, in its locale);
    in Guaraní the booklet's own month names (babel has none)."""
    if i18n.language() == "gn":
        return month_gn(month)
    year, number = map(int, month.split("-"))
    return format_date(dt.date(year, number, 1), "LLLL y", locale=i18n.format_locale())


def _printed_vouchers(view) -> list[dict]:
    """The published printed vouchers of every retailer: what a booklet can sell a place to."""
    out = []
    for data in view.backend.list_vouchers(None):
        if data["kind"] == "printed" and data["status"] == "published":
            title = Voucher.from_json(data).text("title", view.lang)
            out.append({"id": data["id"], "label": f"{data['retailer_name']} — {title}" if title else
                        data["retailer_name"], "retailer": data["retailer_name"], "title": title})
    return sorted(out, key=lambda v: (v["retailer"].casefold(), v["title"].casefold(), v["id"]))


# --- the editions -------------------------------------------------------------------------


def editions_page(view):
    overview = view.backend.booklet_overview()
    editions = []
    for e in view.console.booklets.list():
        seen = overview.get(e["id"], {})
        editions.append({**e, "placements": seen.get("placements", 0), "rendered": bool(seen.get("sha256"))})
    return view.page("booklet_list.html", editions=editions, papers=PAPERS, max_pages=MAX_PAGES,
                     status_names=STATUS_NAMES, month_label=_month_label)


def _month(form) -> str | None:
    """An <input type=month>'s value: YYYY-MM, from 2000 to 2099 (the booklet's own bounds)."""
    text = form.raw("month").strip()
    if not text:
        form.fail("month", N_("This field is required."))
        return None
    if not (text.isascii() and _MONTH.match(text)) or not 1 <= int(text[5:]) <= 12 \
            or not 2000 <= int(text[:4]) <= 2099:
        form.fail("month", N_("A month, please (year and month), from 2000 to 2099."))
        return None
    return text


def create_edition(view):
    form = view.form
    month = _month(form)
    title = form.text("title", 120, required=False)
    paper = form.choice("paper", PAPERS)
    pages = form.integer("pages", 2, MAX_PAGES, required=False)
    form.done()
    made = view.console.booklets.create({"month": month, "title": title or "", "paper": paper, "pages": pages,
                                         "placements": []})
    return view.redirect(f"/console/booklets/{made['id']}?ok=created")


# --- one edition ----------------------------------------------------------------------------


def _edition(view) -> dict:
    return view.console.booklets.get(view.request.params["edition_id"])


def edition_page(view):
    edition = _edition(view)
    vouchers = _printed_vouchers(view)
    names = {v["id"]: v for v in vouchers}
    placements = []
    for p in edition["placements"]:
        named = names.get(p["voucher_id"] or "")
        placements.append({**p, "choice": _TIER_OF_PLACEMENT[(p["size"], p["cover"])],
                           "what": named["label"] if named else (p["advertiser"] or p["voucher_id"] or ""),
                           "positions": _positions(p["size"]) if not p["cover"] else [],
                           "lock_where": _position_name(p["size"], p["lock_position"])
                           if p["lock_position"] is not None else None})
    preview = None
    if edition["pdf"] is not None and edition["layout"] is not None:
        total = int(edition["layout"]["pages"])
        digest = edition["pdf"]["sha256"]
        preview = {"total": total, "shown": min(total, booklet_preview.MAX_PAGES),
                   "base": f"/console/booklets/{edition['id']}/preview/{digest}"}
    return view.page("booklet_edition.html", edition=edition, placements=placements, vouchers=vouchers,
                     tiers=TIERS, editable=edition["status"] in EDITABLE, preview=preview, max_pages=MAX_PAGES,
                     status_names=STATUS_NAMES, content_names=CONTENT_NAMES, month_label=_month_label)


def add_placement(view):
    edition = _edition(view)
    form = view.form
    voucher_id = form.choice("voucher_id", [v["id"] for v in _printed_vouchers(view)])
    tier = form.choice("tier", _TIER_BY_VALUE)
    premium = form.flag("premium")
    price = form.integer("price", 0, MAX_PRICE, required=False)
    form.done()
    chosen = _TIER_BY_VALUE[tier]
    view.console.booklets.add_placement(edition["id"], {
        "size": chosen["size"], "content": "voucher", "voucher_id": voucher_id, "advertiser": "", "texts": {},
        "image": None, "premium": premium, "price": price, "lock_page": None, "lock_position": None,
        "cover": chosen["cover"]})
    return view.redirect(f"/console/booklets/{edition['id']}?ok=placed#placements")


def lock_placement(view):
    edition = _edition(view)
    placement = next((p for p in edition["placements"] if p["id"] == view.request.params["placement_id"]), None)
    if placement is None:
        raise NotFound("not_found", "no such placement in this edition")
    form = view.form
    if form.flag("unlock"):
        form.done()
        view.console.booklets.lock(edition["id"], placement["id"], None, None)
        return view.redirect(f"/console/booklets/{edition['id']}?ok=unlocked#placements")
    if placement["cover"]:  # the page offers no lock for a cover: said as the layout would
        raise Unprocessable("lock_on_cover", "a cover placement is placed by its cover, not a lock")
    page = form.integer("page", 1, MAX_PAGES)
    position = form.choice("position", [str(p) for p in LEGAL_POSITIONS[placement["size"]]])
    form.done()
    view.console.booklets.lock(edition["id"], placement["id"], page, int(position))
    return view.redirect(f"/console/booklets/{edition['id']}?ok=locked#placements")


def render_edition(view):
    edition = _edition(view)
    force = view.form.flag("force")
    view.form.done()
    view.console.booklets.render(edition["id"], force=force)
    return view.redirect(f"/console/booklets/{edition['id']}?ok=rendered#preview")


# --- the files ------------------------------------------------------------------------------


def _file(data: bytes, media_type: str, name: str) -> Download:
    return Download(data, media_type, (("Content-Disposition", f'attachment; filename="{name}"'),
                                       ("Cache-Control", "no-store"), ("X-Content-Type-Options", "nosniff")))


def edition_pdf(view):
    edition = _edition(view)
    data = view.console.booklets.pdf(edition["id"])
    return 200, _file(data, "application/pdf", f"booklet-{edition['month']}-{edition['id']}.pdf")


def billing_csv(view):
    edition = _edition(view)
    text = view.console.booklets.billing_csv(edition["id"])
    return 200, _file(text.encode("utf-8"), "text/csv; charset=utf-8",
                      f"billing-{edition['month']}-{edition['id']}.csv")


def preview_image(view):
    """One page of the preview. The URL names the PDF's digest: only the edition's current PDF is shown,
    and a browser may keep the image (another render is another URL)."""
    edition_id, digest, page = (view.request.params[k] for k in ("edition_id", "digest", "page"))
    if not (page.isascii() and page.isdigit() and len(page) <= 3):
        raise NotFound("not_found", "no such page in the preview")
    if view.backend.booklet_pdf_digest(edition_id) != digest:
        raise NotFound("not_found", "no such preview: the edition was rendered again, or never")

    def load() -> bytes:
        data = view.console.booklets.pdf(edition_id)
        if hashlib.sha256(data).hexdigest() != digest:  # rendered again meanwhile: not these pages
            raise NotFound("not_found", "no such preview: the edition was rendered again")
        return data

    data_dir = view.backend.data.path
    booklet_preview.ensure(data_dir, digest, load)
    image = booklet_preview.page_png(data_dir, digest, int(page))
    return 200, Download(image, "image/png", (("Cache-Control", "private, max-age=31536000, immutable"),
                                              ("X-Content-Type-Options", "nosniff")))


def routes():
    return [
        ("GET", "/booklets", editions_page, "booklet"),
        ("POST", "/booklets", create_edition, "booklet", editions_page),
        ("GET", "/booklets/{edition_id}", edition_page, "booklet"),
        ("POST", "/booklets/{edition_id}/placements", add_placement, "booklet", edition_page),
        ("POST", "/booklets/{edition_id}/placements/{placement_id}/lock", lock_placement, "booklet", edition_page),
        ("POST", "/booklets/{edition_id}/render", render_edition, "booklet", edition_page),
        ("GET", "/booklets/{edition_id}/edition.pdf", edition_pdf, "booklet"),
        ("GET", "/booklets/{edition_id}/billing.csv", billing_csv, "booklet"),
        ("GET", "/booklets/{edition_id}/preview/{digest}/{page}.png", preview_image, "booklet"),
    ]
