"""What the console's booklet pages list without loading every edition: placements counted, PDFs' digests.

The booklet's own Booklets (booklet/editions.py) reads one edition whole; a
list of editions needs only a count and whether (and as which bytes) each was
rendered, in two grouped reads rather than one edition at a time. The digest
names a rendered PDF's preview images (console/booklet_preview.py).
"""

from __future__ import annotations

from .context import Context


def overview(ctx: Context) -> dict[str, dict]:
    """edition id → {"placements": count, "sha256": the PDF's digest or None}, for editions that have either."""
    conn = ctx.storage.read()
    out: dict[str, dict] = {}
    for edition_id, count in conn.execute(
            "SELECT edition_id, count(*) FROM booklet_placements GROUP BY edition_id").fetchall():
        out[edition_id] = {"placements": int(count), "sha256": None}
    for edition_id, digest in conn.execute("SELECT edition_id, sha256 FROM booklet_pdfs").fetchall():
        out.setdefault(edition_id, {"placements": 0, "sha256": None})["sha256"] = digest
    return out


def pdf_digest(ctx: Context, edition_id: str) -> str | None:
    """The edition's rendered PDF's digest (sha256, hex), or None when it has none."""
    row = ctx.storage.read().execute("SELECT sha256 FROM booklet_pdfs WHERE edition_id = ?",
                                     (edition_id,)).fetchone()
    return row[0] if row else None
