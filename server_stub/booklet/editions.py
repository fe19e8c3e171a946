"""Booklet editions over the backend's database: create, assign, lock, render, bill.

Rendering is a guarded state transition: one UPDATE moves an edition to
`rendering` only from a state that allows it, so two processes (granian
workers, the scheduler, an admin's click) can never both render the same
edition; the one whose UPDATE changed no row is told so. The PDF and the
slots it printed (for billing) are stored in the same commit that marks the
edition `done`.
"""

from __future__ import annotations

import csv
import datetime
import hashlib
import io
import json
import logging
import uuid
from zoneinfo import ZoneInfo

from babel.numbers import format_currency

from pos_app.core.csv_cells import safe_cell

from ..errors import Conflict, DomainError, Invalid, NotFound, Unprocessable
from ..operations import audit
from .layout import SIZES, LayoutError, Placement, lay_out
from .model import MIN_VOUCHER_SIZE, Card, EditionInfo, default_price, tier_label, tier_of
from .months import month_es
from .render import render_pdf
from .validity import lines as validity_lines

log = logging.getLogger(__name__)

STALE_RENDER_S = 600  # a render that started this long ago died with its process: another may take over
_RENDERABLE = ("draft", "pending", "failed")
_EDITION_COLUMNS = ("id", "month", "title", "paper", "languages", "pages", "origin", "status", "error",
                    "render_count", "render_started_at", "rendered_at", "created_at")
_PLACEMENT_COLUMNS = ("id", "size", "content", "voucher_id", "code", "advertiser", "texts", "premium", "price",
                      "currency", "lock_page", "lock_position", "cover")
BILLING_FIELDS = ("edition_id", "month", "page", "position", "size", "spaces", "tier", "tier_label", "premium",
                  "content", "advertiser", "placement_id", "voucher_id", "code", "price", "currency")


def _new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def month_bounds(month: str, timezone: str) -> tuple[int, int]:
    """The month's first and last instant (epoch seconds, end exclusive) in the given zone."""
    year, number = map(int, month.split("-"))
    zone = ZoneInfo(timezone)
    start = datetime.datetime(year, number, 1, tzinfo=zone)
    end = datetime.datetime(year + number // 12, number % 12 + 1, 1, tzinfo=zone)
    return int(start.timestamp()), int(end.timestamp())


class Booklets:
    """The booklet operations of one Backend, through its storage (read connections and writes), whichever engine."""

    def __init__(self, backend):
        self.backend = backend
        settings = backend.config.get("booklet", {})
        self.timezone = settings.get("timezone", "America/Asuncion")

    # --- reading ----------------------------------------------------------------

    def _edition_row(self, conn, edition_id: str) -> dict:
        row = conn.execute(f"SELECT {', '.join(_EDITION_COLUMNS)} FROM booklet_editions WHERE id = ?",
                           (edition_id,)).fetchone()
        if row is None:
            raise NotFound("not_found", "no such booklet edition")
        return dict(zip(_EDITION_COLUMNS, row))

    @staticmethod
    def _summary(row: dict) -> dict:
        out = {k: row[k] for k in ("id", "month", "title", "paper", "pages", "origin", "status", "error",
                                   "render_count", "rendered_at", "created_at")}
        out["languages"] = json.loads(row["languages"])
        return out

    def _placements(self, conn, edition_id: str) -> list[dict]:
        rows = conn.execute(f"SELECT {', '.join(_PLACEMENT_COLUMNS)}, image IS NOT NULL FROM booklet_placements "
                            "WHERE edition_id = ? ORDER BY created_at, id", (edition_id,)).fetchall()
        out = []
        for row in rows:
            p = dict(zip(_PLACEMENT_COLUMNS, row[:-1]))
            p["texts"] = json.loads(p["texts"])
            p["premium"] = bool(p["premium"])
            p["has_image"] = bool(row[-1])
            p["tier"] = tier_of(p["size"], p["cover"])
            p["tier_label"] = tier_label(p["size"], p["cover"])
            out.append(p)
        return out

    def list(self) -> list[dict]:
        rows = self.backend.read().execute(
            f"SELECT {', '.join(_EDITION_COLUMNS)} FROM booklet_editions ORDER BY month DESC, created_at DESC")
        return [self._summary(dict(zip(_EDITION_COLUMNS, r))) for r in rows]

    def get(self, edition_id: str) -> dict:
        with self.backend.storage.read_snapshot() as db:  # one snapshot
            conn = db.conn
            out = self._summary(self._edition_row(conn, edition_id))
            out["placements"] = self._placements(conn, edition_id)
            layout = conn.execute("SELECT layout FROM booklet_editions WHERE id = ?", (edition_id,)).fetchone()[0]
            pdf = conn.execute("SELECT length(pdf), sha256 FROM booklet_pdfs WHERE edition_id = ?",
                               (edition_id,)).fetchone()
        out["layout"] = json.loads(layout) if layout else None
        out["pdf"] = {"bytes": pdf[0], "sha256": pdf[1]} if pdf else None
        return out

    # --- editing ----------------------------------------------------------------

    def _resolve_voucher(self, conn, p: dict, month: str) -> None:
        """A voucher placement's printed code and advertiser, or Invalid/NotFound; Unprocessable
        `outside_month` when the voucher is not valid on any day of the edition's month (a February
        booklet must not sell a coupon that expired in January)."""
        row = conn.execute("SELECT v.kind, r.name, v.valid_from, v.valid_until FROM vouchers v "
                           "JOIN retailers r ON r.id = v.retailer_id WHERE v.id = ?", (p["voucher_id"],)).fetchone()
        if row is None:
            raise NotFound("not_found", f"no voucher {p['voucher_id'][:64]}")
        if row[0] != "printed":
            raise Invalid("invalid_value", "a booklet prints printed vouchers, not personal ones")
        start, end = month_bounds(month, self.timezone)
        if (row[2] is not None and row[2] >= end) or (row[3] is not None and row[3] <= start):
            raise Unprocessable("outside_month", f"the voucher is not valid during {month}")
        code = conn.execute("SELECT code FROM printed_codes WHERE voucher_id = ? ORDER BY created_at, code LIMIT 1",
                            (p["voucher_id"],)).fetchone()
        if code is None:
            raise Invalid("invalid_value", "the voucher has no printed code to print")
        p["code"] = code[0]
        p["advertiser"] = p["advertiser"] or row[1]

    def _insert_placement(self, db, edition_id: str, edition: dict, p: dict, now: float) -> str:
        if p["content"] == "voucher":
            smallest = MIN_VOUCHER_SIZE[edition["paper"]]
            if SIZES[p["size"]] < SIZES[smallest]:
                raise Unprocessable("voucher_too_small", f"on {edition['paper']} a voucher takes at least a "
                                                         f"{smallest} slot, so its QR code scans")
            self._resolve_voucher(db.conn, p, edition["month"])
        # Said as the layout says it, before the unique index on (edition, cover) would refuse it as a 500.
        if p["cover"] is not None and db.execute("SELECT 1 FROM booklet_placements WHERE edition_id = ? AND cover = ?",
                                                 (edition_id, p["cover"])).fetchone():
            raise Unprocessable("cover_taken", f"two placements claim the {p['cover']} cover")
        pid = _new_id("plc")
        price = p["price"] if p["price"] is not None else default_price(p["size"], p["cover"])
        db.execute(
            "INSERT INTO booklet_placements (id, edition_id, size, content, voucher_id, code, advertiser, texts, "
            "image, premium, price, currency, lock_page, lock_position, cover, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'PYG', ?, ?, ?, ?)",
            (pid, edition_id, p["size"], p["content"], p["voucher_id"], p.get("code"), p["advertiser"],
             json.dumps(p["texts"], ensure_ascii=False), p["image"], int(p["premium"]), price,
             p["lock_page"], p["lock_position"], p["cover"], now))
        return pid

    def _check_layout(self, conn, edition_id: str, pages: int | None) -> None:
        """Refuse (Unprocessable, with the layout's code) a set of placements no layout can hold."""
        try:
            lay_out(self._layout_input(conn, edition_id), edition_id, pages=pages)
        except LayoutError as exc:
            raise Unprocessable(exc.code, exc.message) from None

    @staticmethod
    def _layout_input(conn, edition_id: str) -> list[Placement]:
        rows = conn.execute("SELECT id, size, premium, lock_page, lock_position, cover FROM booklet_placements "
                            "WHERE edition_id = ?", (edition_id,)).fetchall()
        return [Placement(r[0], r[1], bool(r[2]), r[3], r[4], r[5]) for r in rows]

    def _editable(self, conn, edition_id: str) -> dict:
        row = self._edition_row(conn, edition_id)
        if row["status"] in ("rendering", "done"):
            raise Conflict("conflict", f"the edition is {row['status']}: make a new edition to change it")
        return row

    def create(self, body: dict, origin: str = "admin") -> dict:
        """A new edition (status draft) with its first placements, all or nothing."""
        edition_id = _new_id("bk")
        now = self.backend.clock()
        title = body["title"] or f"Cupones de {month_es(body['month'])}"
        actor = audit.current()

        def write(db):
            db.execute("INSERT INTO booklet_editions (id, month, title, paper, languages, pages, origin, status, "
                       "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (edition_id, body["month"], title, body["paper"], json.dumps(["es", "gn"]), body["pages"],
                        origin, "pending" if origin == "schedule" else "draft", now))
            for p in body["placements"]:
                self._insert_placement(db, edition_id, body, p, now)
            self._check_layout(db.conn, edition_id, body["pages"])
            if origin != "schedule":
                audit.write(self.backend.ctx, db, actor, "booklet.create", edition_id,
                            detail={"month": body["month"], "title": title, "placements": len(body["placements"])})
        self.backend.storage.submit(write)
        return self.get(edition_id)

    def add_placement(self, edition_id: str, p: dict) -> dict:
        now = self.backend.clock()
        actor = audit.current()

        def write(db):
            self._hold(db, edition_id)
            row = self._editable(db.conn, edition_id)
            pid = self._insert_placement(db, edition_id, row, p, now)
            self._check_layout(db.conn, edition_id, row["pages"])
            audit.write(self.backend.ctx, db, actor, "booklet.placement_add", edition_id, detail={"placement": pid})
            return pid
        pid = self.backend.storage.submit(write)
        return self._placement(edition_id, pid)

    def lock(self, edition_id: str, placement_id: str, page: int | None, position: int | None) -> dict:
        """Lock a placement to a page and position (both null: unlock)."""
        if (page is None) != (position is None):
            raise Invalid("invalid_value", "give both page and position, or neither to unlock")
        actor = audit.current()

        def write(db):
            self._hold(db, edition_id)
            row = self._editable(db.conn, edition_id)
            changed = db.execute("UPDATE booklet_placements SET lock_page = ?, lock_position = ? "
                                 "WHERE id = ? AND edition_id = ?", (page, position, placement_id, edition_id))
            if changed.rowcount == 0:
                raise NotFound("not_found", "no such placement in this edition")
            self._check_layout(db.conn, edition_id, row["pages"])
            audit.write(self.backend.ctx, db, actor, "booklet.placement_lock", edition_id,
                        detail={"placement": placement_id, "page": page, "position": position})
        self.backend.storage.submit(write)
        return self._placement(edition_id, placement_id)

    def _hold(self, db, edition_id: str) -> None:
        """Placements are checked (editable, the layout fits), then changed: one write per edition at a time."""
        self.backend.storage.hold(db, f"booklet-edition:{edition_id}")

    def _placement(self, edition_id: str, placement_id: str) -> dict:
        return next(p for p in self._placements(self.backend.read().conn, edition_id) if p["id"] == placement_id)

    # --- rendering --------------------------------------------------------------

    def claim(self, edition_id: str, force: bool = False, from_states=_RENDERABLE) -> float | None:
        """Move the edition to `rendering` if its state allows; the claim's stamp, or None if not ours."""
        now = self.backend.clock()
        states = list(from_states) + (["done"] if force else [])

        def write(db):
            self._hold(db, edition_id)  # a claim waits for a placement's change, which then finds it rendering
            cur = db.execute(
                f"UPDATE booklet_editions SET status = 'rendering', render_started_at = ?, error = NULL "
                f"WHERE id = ? AND (status IN ({', '.join('?' * len(states))}) "
                f"OR (status = 'rendering' AND render_started_at < ?))",
                (now, edition_id, *states, now - STALE_RENDER_S))
            return cur.rowcount
        return now if self.backend.storage.submit(write) == 1 else None

    def render(self, edition_id: str, force: bool = False) -> dict:
        """Render now (an admin's request): Conflict if it is rendering, or done and not forced."""
        row = self._edition_row(self.backend.read().conn, edition_id)
        stamp = self.claim(edition_id, force)
        if stamp is None:
            row = self._edition_row(self.backend.read().conn, edition_id)
            hint = " (send force to render it again)" if row["status"] == "done" else ""
            raise Conflict("conflict", f"the edition is {row['status']}{hint}")
        self._render_claimed(row, stamp)
        audit.record(self.backend.ctx, "booklet.render", edition_id, detail={"force": force})
        return self.get(edition_id)

    def _render_claimed(self, row: dict, stamp: float) -> None:
        edition_id = row["id"]
        try:
            pdf, layout = self.build(row)
        except Exception as exc:
            message = exc.message if isinstance(exc, (LayoutError, DomainError)) else "the render failed"
            if not isinstance(exc, (LayoutError, DomainError)):
                log.exception("booklet %s failed to render", edition_id)
            self.backend.storage.submit(lambda db: db.execute(
                "UPDATE booklet_editions SET status = 'failed', error = ? WHERE id = ? AND render_started_at = ?",
                (message, edition_id, stamp)))
            if isinstance(exc, LayoutError):
                raise Unprocessable(exc.code, exc.message) from None
            raise
        now = self.backend.clock()

        def write(db):
            cur = db.execute(
                "UPDATE booklet_editions SET status = 'done', layout = ?, rendered_at = ?, "
                "render_count = render_count + 1 WHERE id = ? AND status = 'rendering' AND render_started_at = ?",
                (json.dumps(layout, ensure_ascii=False), now, edition_id, stamp))
            if cur.rowcount != 1:  # our claim went stale and another render took over: theirs stands
                raise Conflict("conflict", "another render of this edition took over")
            # Every column but the key set anew, as REPLACE did (nothing refers to a PDF's row).
            db.execute("INSERT INTO booklet_pdfs (edition_id, pdf, sha256, rendered_at) VALUES (?, ?, ?, ?) "
                       "ON CONFLICT (edition_id) DO UPDATE SET pdf = excluded.pdf, sha256 = excluded.sha256, "
                       "rendered_at = excluded.rendered_at", (edition_id, pdf, hashlib.sha256(pdf).hexdigest(), now))
        self.backend.storage.submit(write)

    def build(self, row: dict) -> tuple[bytes, dict]:
        """The PDF and the printed slots of an edition, from the database as it is now."""
        with self.backend.storage.read_snapshot() as db:  # one snapshot
            conn = db.conn
            placements = self._placements(conn, row["id"])
            images = dict(conn.execute("SELECT id, image FROM booklet_placements WHERE edition_id = ? "
                                       "AND image IS NOT NULL", (row["id"],)).fetchall())
            if not placements:  # nothing sold: list every printed voucher active this month
                placements = self._active_vouchers(conn, row["month"], MIN_VOUCHER_SIZE[row["paper"]])
            vouchers = self._voucher_data(conn, [p["voucher_id"] for p in placements if p["voucher_id"]])
        layout = lay_out([Placement(p["id"], p["size"], p["premium"], p["lock_page"], p["lock_position"], p["cover"])
                          for p in placements], row["id"], pages=row["pages"])
        cards = {p["id"]: self._card(p, vouchers, images.get(p["id"]), row["month"]) for p in placements}
        edition = EditionInfo(row["id"], row["title"], row["month"], row["paper"])
        pdf = render_pdf(edition, layout, cards)
        by_id = {p["id"]: p for p in placements}
        slots = []
        for s in layout.slots:
            p = by_id.get(s.placement_id, {})
            slots.append({"page": s.page, "position": s.position, "size": s.size, "cover": s.cover,
                          "tier": tier_of(s.size, s.cover), "tier_label": tier_label(s.size, s.cover),
                          "placement_id": s.placement_id if p.get("id", "").startswith("plc_") else None,
                          "content": p.get("content", "house"), "premium": p.get("premium", False),
                          "advertiser": p.get("advertiser", "Pika"), "voucher_id": p.get("voucher_id"),
                          "code": p.get("code"), "price": p.get("price", 0), "currency": p.get("currency", "PYG")})
        return pdf, {"pages": layout.pages, "slots": slots}

    def _active_vouchers(self, conn, month: str, size: str) -> list[dict]:
        start, end = month_bounds(month, self.timezone)
        rows = conn.execute(
            "SELECT v.id, r.name, (SELECT code FROM printed_codes p WHERE p.voucher_id = v.id "
            "ORDER BY created_at, code LIMIT 1) FROM vouchers v JOIN retailers r ON r.id = v.retailer_id "
            "WHERE v.kind = 'printed' AND v.status = 'published' AND (v.valid_from IS NULL OR v.valid_from < ?) "
            "AND (v.valid_until IS NULL OR v.valid_until > ?) ORDER BY v.created_at, v.id", (end, start)).fetchall()
        return [{"id": f"auto_{vid}", "size": size, "content": "voucher", "voucher_id": vid, "code": code,
                 "advertiser": name, "texts": {}, "premium": False, "price": 0, "currency": "PYG",
                 "lock_page": None, "lock_position": None, "cover": None}
                for vid, name, code in rows if code is not None]

    @staticmethod
    def _voucher_data(conn, ids: list[str]) -> dict[str, dict]:
        out = {}
        for vid in set(ids):
            row = conn.execute("SELECT texts, discount_kind, discount_value, currency, valid_from, valid_until "
                               "FROM vouchers WHERE id = ?", (vid,)).fetchone()
            if row:
                out[vid] = dict(zip(("texts", "discount_kind", "discount_value", "currency", "valid_from",
                                     "valid_until"), row))
        return out

    def _card(self, p: dict, vouchers: dict, image: bytes | None, month: str) -> Card:
        card = Card(kind=p["content"], tier=tier_of(p["size"], p["cover"]), premium=p["premium"],
                    advertiser=p["advertiser"], texts=p["texts"], image=image, cover=p["cover"])
        if p["content"] != "voucher":
            return card
        v = vouchers[p["voucher_id"]]
        texts = json.loads(v["texts"])
        card.texts = {lang: {"title": texts.get(lang, {}).get("title", ""), "body": texts.get(lang, {}).get("terms", "")}
                      for lang in ("es", "gn") if lang in texts}
        for lang, own in p["texts"].items():  # the placement's own words win over the voucher's
            card.texts.setdefault(lang, {}).update(own)
        if v["discount_kind"] == "percent":
            card.discount = f"−{v['discount_value']} %"
        else:
            card.discount = "−" + format_currency(v["discount_value"], v["currency"], locale="es_PY")
        card.validity = validity_lines(v["valid_from"], v["valid_until"], month_bounds(month, self.timezone)[0],
                                       self.timezone)
        card.code = p["code"]
        card.token = self.backend.static_token(p["code"])
        return card

    def pdf(self, edition_id: str, *, finished_only: bool = False) -> bytes:
        """The edition's PDF; `finished_only` (a retailer's staff): only a done edition's, others are not found."""
        conn = self.backend.read().conn
        edition = self._edition_row(conn, edition_id)
        if finished_only and edition["status"] != "done":
            raise NotFound("not_found", "no such booklet edition")
        row = conn.execute("SELECT pdf FROM booklet_pdfs WHERE edition_id = ?", (edition_id,)).fetchone()
        if row is None:
            raise Conflict("conflict", "the edition has not been rendered yet")
        return bytes(row[0])

    def billing_csv(self, edition_id: str) -> str:
        """Every printed slot: page, position, size, tier, price and advertiser (house ads at 0)."""
        conn = self.backend.read().conn
        row = self._edition_row(conn, edition_id)
        layout = conn.execute("SELECT layout FROM booklet_editions WHERE id = ?", (edition_id,)).fetchone()[0]
        if not layout:
            raise Conflict("conflict", "the edition has not been rendered yet")
        out = io.StringIO()
        writer = csv.DictWriter(out, BILLING_FIELDS, lineterminator="\r\n", extrasaction="ignore")
        writer.writeheader()
        for slot in json.loads(layout)["slots"]:
            cells = {**slot, "edition_id": edition_id, "month": row["month"],
                     "spaces": {"single": 1, "quarter": 2, "half": 4, "full": 8}[slot["size"]],
                     "premium": "yes" if slot["premium"] else "no"}
            writer.writerow({name: safe_cell(value) for name, value in cells.items()})  # every text cell
        return out.getvalue()

    # --- the schedule -------------------------------------------------------------

    def scheduled_edition(self, month: str) -> str:
        """The month's scheduled edition, made (pending) if it does not exist yet."""
        conn = self.backend.read().conn
        found = conn.execute("SELECT id FROM booklet_editions WHERE month = ? AND origin = 'schedule'",
                             (month,)).fetchone()
        if found:
            return found[0]
        edition_id = _new_id("bk")
        now = self.backend.clock()
        settings = self.backend.config.get("booklet", {})

        def write(db):  # the unique index keeps one per month if two processes race here
            db.execute("INSERT INTO booklet_editions (id, month, title, paper, languages, pages, origin, "
                       "status, created_at) VALUES (?, ?, ?, ?, ?, NULL, 'schedule', 'pending', ?) "
                       "ON CONFLICT DO NOTHING",
                       (edition_id, month, f"Cupones de {month_es(month)}", settings.get("paper", "A5"),
                        json.dumps(["es", "gn"]), now))
            return db.execute("SELECT id FROM booklet_editions WHERE month = ? AND origin = 'schedule'",
                              (month,)).fetchone()[0]
        return self.backend.storage.submit(write)

    def render_scheduled(self, month: str) -> str:
        """The schedule's job for a month: render its edition unless done or being rendered; the outcome."""
        edition_id = self.scheduled_edition(month)
        stamp = self.claim(edition_id, from_states=("pending", "failed"))
        if stamp is None:
            return "skipped"
        row = self._edition_row(self.backend.read().conn, edition_id)
        try:
            self._render_claimed(row, stamp)
        except Exception:  # kept as failed with its reason; the next run tries again
            log.exception("scheduled booklet %s for %s failed", edition_id, month)
            return "failed"
        return "rendered"
