"""The booklet's layout engine: properties over random placement sets (hypothesis)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server_stub.booklet.layout import (COVERS, FULL_PAGE, LEGAL_POSITIONS, SIZES, SPACES, LayoutError, Placement,
                                        lay_out)

sizes = st.sampled_from(list(SIZES))


@st.composite
def placement_sets(draw, with_locks=True):
    n = draw(st.integers(0, 40))
    out = []
    for i in range(n):
        size = draw(sizes)
        premium = draw(st.booleans())
        out.append(Placement(f"p{i:03d}", size, premium))
    covers = draw(st.lists(st.sampled_from(COVERS), unique=True, max_size=4))
    out += [Placement(f"c-{name}", "full", cover=name) for name in covers]
    if with_locks:
        # a few locks on distinct pages, so they are legal; overlapping ones are tested apart
        for j, page in enumerate(draw(st.lists(st.integers(3, 12), unique=True, max_size=3))):
            size = draw(st.sampled_from(["single", "quarter", "half"]))
            position = draw(st.sampled_from(LEGAL_POSITIONS[size]))
            out.append(Placement(f"l{j}", size, lock_page=page, lock_position=position))
    return out


def _spaces(slot) -> int:
    return slot.mask()


def check_layout(placements, layout):
    pages = {}
    for slot in layout.slots:
        mask = slot.mask()
        assert mask, slot  # a legal shape at a legal position
        assert not pages.get(slot.page, 0) & mask, f"overlap on page {slot.page}"
        pages[slot.page] = pages.get(slot.page, 0) | mask
    assert set(pages) == set(range(1, layout.pages + 1))
    assert all(m == FULL_PAGE for m in pages.values()), "every space is accounted for"
    placed = [s.placement_id for s in layout.slots if s.placement_id]
    assert sorted(placed) == sorted(p.id for p in placements), "every placement exactly once"
    by_id = {s.placement_id: s for s in layout.slots if s.placement_id}
    for p in placements:
        slot = by_id[p.id]
        assert slot.size == p.size
        if p.lock_page is not None:
            assert (slot.page, slot.position) == (p.lock_page, p.lock_position), "locks are honoured"
        if p.cover:
            assert slot.cover == p.cover
    assert layout.covers[1] == "front" and layout.covers[layout.pages] == "back"


@settings(max_examples=150, deadline=None)
@given(placement_sets(), st.integers(0, 2**32))
def test_layout_properties(placements, seed):
    layout = lay_out(placements, seed)
    check_layout(placements, layout)
    assert lay_out(list(reversed(placements)), seed) == layout, "the same edition lays out the same way"


@settings(max_examples=150, deadline=None)
@given(placement_sets(with_locks=False), st.integers(0, 2**32))
def test_no_wasted_page_without_locks(placements, seed):
    """Without locks, the fewest pages hold everything: house ads fill less than a page."""
    layout = lay_out(placements, seed)
    interior = [p for p in placements if not p.cover]
    spaces = sum(SIZES[p.size] for p in interior)
    fixed = len(layout.covers)
    assert layout.pages - fixed == -(-spaces // SPACES)
    house = sum(s.spaces for s in layout.slots if s.placement_id is None and s.cover is None)
    assert house < SPACES or not interior


@settings(max_examples=60, deadline=None)
@given(st.lists(sizes, min_size=1, max_size=30), st.integers(0, 1000))
def test_no_fillable_gap_with_fixed_pages(sizes_, seed):
    """With the page count fixed, either everything fits, or the error says it does not fit."""
    placements = [Placement(f"p{i}", s) for i, s in enumerate(sizes_)]
    try:
        layout = lay_out(placements, seed, pages=4)
    except LayoutError as exc:
        assert exc.code in ("does_not_fit", "too_many_full_pages")
        assert sum(SIZES[s] for s in sizes_) > 16 or sum(s == "full" for s in sizes_) > 2
        return
    check_layout(placements, layout)


def test_seed_shuffles_the_rest():
    placements = [Placement(f"p{i}", "single") for i in range(24)]
    a, b = lay_out(placements, "bk_a"), lay_out(placements, "bk_b")
    assert [s.placement_id for s in a.slots] != [s.placement_id for s in b.slots]
    assert lay_out(placements, "bk_a") == a


def test_premium_comes_first():
    placements = [Placement(f"p{i}", "single") for i in range(20)] + [Placement("zz-premium", "half", premium=True)]
    layout = lay_out(placements, 1)
    slot = next(s for s in layout.slots if s.placement_id == "zz-premium")
    assert (slot.page, slot.position) == (2, 0)


@pytest.mark.parametrize("placements, pages, code", [
    ([Placement("a", "single", lock_page=3, lock_position=1), Placement("b", "quarter", lock_page=3,
                                                                          lock_position=0)], None, "lock_overlap"),
    ([Placement(f"f{i}", "full") for i in range(3)], 4, "too_many_full_pages"),
    ([Placement("a", "half", lock_page=3, lock_position=1)], None, "illegal_position"),
    ([Placement("a", "quarter", lock_page=3, lock_position=3)], None, "illegal_position"),
    ([Placement("a", "single", lock_page=3, lock_position=8)], None, "lock_out_of_range"),
    ([Placement("a", "single", lock_page=0, lock_position=0)], None, "lock_out_of_range"),
    ([Placement("a", "single", lock_page=9, lock_position=0)], 4, "lock_out_of_range"),
    ([Placement("a", "single", lock_page=1, lock_position=0)], None, "lock_on_cover"),
    ([Placement("a", "single", lock_page=4, lock_position=0)], 4, "lock_on_cover"),
    ([Placement("a", "single", lock_page=3, lock_position=None)], None, "incomplete_lock"),
    ([Placement("a", "half", cover="front")], None, "cover_not_full"),
    ([Placement("a", "full", cover="front"), Placement("b", "full", cover="front")], None, "cover_taken"),
    ([Placement("a", "full", cover="middle")], None, "unknown_cover"),
    ([Placement("a", "triple")], None, "unknown_size"),
    ([Placement("a", "single"), Placement("a", "single")], None, "duplicate_placement"),
    ([Placement(f"p{i}", "half") for i in range(9)], 4, "does_not_fit"),
    ([Placement("a", "single")], 10_000, "too_many_pages"),
])
def test_impossible_requests_are_refused_with_the_reason(placements, pages, code):
    with pytest.raises(LayoutError) as caught:
        lay_out(placements, 7, pages=pages)
    assert caught.value.code == code and caught.value.message


def test_without_covers_the_pages_are_all_interior():
    layout = lay_out([Placement(f"p{i}", "single") for i in range(512)], "bench", covers=False)
    assert layout.pages == 64 and not layout.covers
    assert all(s.placement_id for s in layout.slots)
