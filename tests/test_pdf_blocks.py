"""The PDF layout engine on its own (pos_app/pdf/blocks.py), with no report behind it: texts cleaned and clipped
to a width, a table cut to the room left with an "and N more" line, blocks paginated onto at most the pages
allowed, and a document whose pages carry their footer, read back with poppler."""

from __future__ import annotations

import subprocess

import pytest

from pos_app.pdf import blocks, fonts
from pos_app.pdf.blocks import BOLD, REGULAR, ROW, Block, Column, Header, Side, Table, Tiles, clean, clip, paginate
from pos_app.words.i18n import using


@pytest.fixture(autouse=True)
def registered_fonts():
    fonts.register()
    with using("en"):
        yield


class Box(Block):
    """A block of a fixed height that draws a filled rectangle: the simplest thing to paginate."""

    def __init__(self, h: float):
        self.h = h

    def height(self, width: float) -> float:
        return self.h

    def draw(self, c, x: float, top: float, width: float) -> None:
        c.rect(x, top - self.h, width, self.h, stroke=0, fill=1)


def _table(n: int, **kwargs) -> Table:
    return Table("Lines", [Column("Name", 3), Column("Count", 1, "right")],
                 [(f"line {i}", str(i)) for i in range(n)], **kwargs)


def _pdftotext(pdf: bytes, tmp_path) -> str:
    path = tmp_path / "blocks.pdf"
    path.write_bytes(pdf)
    return subprocess.run(["pdftotext", "-layout", "-enc", "UTF-8", str(path), "-"], check=True,
                          capture_output=True, text=True, timeout=60).stdout


def test_clean_keeps_one_printable_line_of_bounded_length():
    assert clean("  Café\x00 con\u202e\tleche\r\n ") == "Café con leche"
    assert clean(None) == "" and clean(42) == "42"
    assert clean("W" * 500, 10) == "W" * 10


def test_clip_fits_the_width_and_says_so_when_it_cuts():
    text = "Cupón con un título bastante largo para una celda"
    assert clip(text, REGULAR, 8, 1000) == text
    cut = clip(text, REGULAR, 8, 60)
    assert cut.endswith("…") and text.startswith(cut[:-1].rstrip())
    assert fonts.width(cut, REGULAR, 8) <= 60
    assert fonts.width(clip("M" * 10_000, BOLD, 8, 30), BOLD, 8) <= 30


def test_a_table_shrinks_to_the_room_and_counts_what_it_left_out():
    table = _table(40, limit=30)
    assert table.total == 40 and len(table.rows) == 30
    room = table.height(200) / 2
    cut = table.shrink(200, room)
    assert cut is not None and cut.height(200) <= room
    assert 1 <= len(cut.rows) < 30 and cut.total == 40
    assert table.shrink(200, table.height(200)) is table
    assert table.shrink(200, table.min_height(200) - ROW) is None  # not even one row fits


def test_blocks_go_to_the_next_page_and_never_past_the_last():
    page = blocks.PAGE_H - blocks.MARGIN - blocks.BOTTOM
    tall = [Box(page * 0.6) for _ in range(5)]
    assert [len(p) for p in paginate(tall, 3)] == [1, 1, 1]  # the rest dropped: a Box cannot shrink
    assert [len(p) for p in paginate(tall[:2], 3)] == [1, 1]
    [first, second] = paginate([Box(page * 0.4), Box(page * 0.4), Box(page * 0.4)], 2)
    assert len(first) == 2 and len(second) == 1
    (_, top_a), (_, top_b) = first
    assert top_a == blocks.PAGE_H - blocks.MARGIN and top_b == top_a - page * 0.4 - blocks.GAP


def test_on_the_last_page_a_table_leaves_room_for_the_blocks_after_it():
    page = blocks.PAGE_H - blocks.MARGIN - blocks.BOTTOM
    last = _table(5)
    [[(table, top), (after, after_top)]] = paginate([_table(200), last], 1)
    assert isinstance(table, Table) and len(table.rows) < 200 and table.total == 200
    assert isinstance(after, Table) and after.total == 5 and after.rows  # kept, if perhaps cut too
    assert after_top == top - table.height(blocks.WIDTH) - blocks.GAP
    assert after_top - after.height(blocks.WIDTH) >= blocks.BOTTOM
    assert table.height(blocks.WIDTH) <= page


def test_side_by_side_shrinks_each_part_to_the_same_room():
    side = Side((_table(60), 1), (_table(3), 2))
    cut = side.shrink(400, 200)
    assert cut is not None and cut.height(400) <= 200
    [(left, _), (right, _)] = cut.parts
    assert len(left.rows) < 60 and len(right.rows) == 3
    assert Side((_table(60), 1), (_table(60), 1)).shrink(400, 10) is None


def test_a_document_has_its_blocks_and_a_footer_on_every_page(tmp_path):
    header = Header("Test sheet", "Café Pika — Asunción", ["One line under the name"])
    tiles = Tiles([("Count", "1.234", "a note", False), ("Alert", "7", "", True)], ["A note under the tiles"])
    pdf = blocks.document([header, tiles, _table(30), _table(120)], title="Test sheet", footer="Under every page",
                          max_pages=2)
    assert pdf.startswith(b"%PDF-")
    text = _pdftotext(pdf, tmp_path)
    pages = [p for p in text.split("\f") if p.strip()]
    assert len(pages) == 2
    assert "TEST SHEET" in pages[0] and "Café Pika — Asunción" in pages[0] and "1.234" in pages[0]
    assert "A note under the tiles" in pages[0] and "Pika Till" in pages[0]
    assert all("Under every page" in p and f"{i}/2" in p for i, p in enumerate(pages, 1))
    assert "… and" in pages[1] and "more" in pages[1]  # the second cut to what the last page holds
    assert "line 29" in pages[0] and "line 119" not in text  # the first whole on page 1
