"""Where each placement of an edition goes: pure rules, no Qt, no I/O.

A page is a grid of 8 spaces, 2 columns × 4 rows, numbered row by row:

    0 1
    2 3
    4 5
    6 7

Legal shapes (the position of a placement is its top-left space):

- single  (1 space):  1 × 1, any position 0–7;
- quarter (2 spaces): a full-width row, 2 × 1, positions 0, 2, 4, 6;
- half    (4 spaces): a 2 × 2 block, positions 0, 2, 4 (rows 1–2, 2–3, 3–4);
- full    (8 spaces): the whole page, position 0.

Every shape but the single spans the page's width, so a page's free space is
whole rows plus single holes; that is what lets the packing below fill every
space it can. Page 1 is the front cover and the last page the back cover;
page 2 and the last-but-one are the inside covers when a placement claims
them, else ordinary pages. Order of placing: locks, then premium (earliest
page), then the rest, largest first, onto pages picked by a generator seeded
with the edition (so the same edition always lays out the same way). Spaces
nothing can take get house ads.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

COLUMNS, ROWS = 2, 4
SPACES = COLUMNS * ROWS
FULL_PAGE = (1 << SPACES) - 1
SIZES = {"single": 1, "quarter": 2, "half": 4, "full": 8}
COVERS = ("front", "inside_front", "inside_back", "back")
MAX_PAGES = 256
MAX_PLACEMENTS = 2048


class LayoutError(ValueError):
    """A request no layout can satisfy, with a stable code and a plain message."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def _mask(size: str, position: int) -> int:
    """The spaces a shape covers at a position, as bits; 0 if the position is illegal."""
    if size == "single":
        return 1 << position if 0 <= position < SPACES else 0
    if position % COLUMNS or not 0 <= position < SPACES:
        return 0
    rows = {"quarter": 1, "half": 2, "full": 4}[size]
    if position // COLUMNS + rows > ROWS:
        return 0
    return ((1 << (rows * COLUMNS)) - 1) << position


LEGAL_POSITIONS = {size: tuple(p for p in range(SPACES) if _mask(size, p)) for size in SIZES}
# Where the packing puts an unlocked shape, best first: halves at the top or
# bottom before the middle, so two halves share a page.
_AUTO_POSITIONS = {"single": tuple(range(SPACES)), "quarter": (0, 2, 4, 6), "half": (0, 4, 2), "full": (0,)}


@dataclass(frozen=True)
class Placement:
    """What the layout needs to know of a placement."""

    id: str
    size: str
    premium: bool = False
    lock_page: int | None = None
    lock_position: int | None = None
    cover: str | None = None


@dataclass(frozen=True)
class Slot:
    """A placed shape: a placement's, or a house ad's (placement_id None)."""

    page: int
    position: int
    size: str
    placement_id: str | None
    cover: str | None = None

    @property
    def spaces(self) -> int:
        return SIZES[self.size]

    def mask(self) -> int:
        return _mask(self.size, self.position)


@dataclass
class Layout:
    pages: int
    slots: list[Slot] = field(default_factory=list)
    covers: dict[int, str] = field(default_factory=dict)  # page → cover name

    def page_slots(self, page: int) -> list[Slot]:
        return sorted((s for s in self.slots if s.page == page), key=lambda s: s.position)


def lay_out(placements: list[Placement], seed: int | str, *, pages: int | None = None,
            covers: bool = True) -> Layout:
    """The layout of these placements; `pages` fixes the page count, else the fewest that hold them.

    With `covers=False` there are no cover pages (a run of interior pages, as the benchmark prints).
    """
    if len(placements) > MAX_PLACEMENTS:
        raise LayoutError("too_many_placements", f"an edition holds at most {MAX_PLACEMENTS} placements")
    if pages is not None and not (1 <= pages <= MAX_PAGES):
        raise LayoutError("too_many_pages", f"an edition has 1 to {MAX_PAGES} pages")
    ordered = sorted(placements, key=lambda p: p.id)  # the input's order must not change the outcome
    _check(ordered, covers)
    cover_of = {p.cover: p for p in ordered if p.cover}
    if pages is not None:
        return _pack(ordered, seed, pages, covers, cover_of)
    interior = [p for p in ordered if not p.cover]
    if covers:
        for p in interior:
            if p.lock_page == 1 or (p.lock_page == 2 and "inside_front" in cover_of):
                raise LayoutError("lock_on_cover", f"placement {p.id} is locked onto a cover page")
    spaces = sum(SIZES[p.size] for p in interior)
    fixed = 2 * covers + ("inside_front" in cover_of) + ("inside_back" in cover_of)
    last_lock = max((p.lock_page for p in interior if p.lock_page), default=0)
    lowest = max(1, fixed + -(-spaces // SPACES), last_lock + covers + ("inside_back" in cover_of))
    last_error = None
    for count in range(lowest, MAX_PAGES + 1):
        try:
            return _pack(ordered, seed, count, covers, cover_of)
        except LayoutError as exc:  # more pages may hold it
            if exc.code not in ("does_not_fit", "too_many_full_pages"):
                raise
            last_error = exc
    raise LayoutError("too_many_pages", f"the placements need more than {MAX_PAGES} pages") from last_error


def _check(placements: list[Placement], covers: bool) -> None:
    seen_ids, seen_covers = set(), set()
    for p in placements:
        if p.id in seen_ids:
            raise LayoutError("duplicate_placement", f"placement {p.id} is listed twice")
        seen_ids.add(p.id)
        if p.size not in SIZES:
            raise LayoutError("unknown_size", f"size is one of {', '.join(SIZES)}")
        if p.cover is not None:
            if not covers or p.cover not in COVERS:
                raise LayoutError("unknown_cover", f"cover is one of {', '.join(COVERS)}")
            if p.size != "full":
                raise LayoutError("cover_not_full", f"the {p.cover} cover takes a full-page placement")
            if p.cover in seen_covers:
                raise LayoutError("cover_taken", f"two placements claim the {p.cover} cover")
            if p.lock_page is not None or p.lock_position is not None:
                raise LayoutError("lock_on_cover", "a cover placement is placed by its cover, not a lock")
            seen_covers.add(p.cover)
        if (p.lock_page is None) != (p.lock_position is None):
            raise LayoutError("incomplete_lock", f"placement {p.id}: a lock needs both page and position")
        if p.lock_page is not None:
            if not 1 <= p.lock_page <= MAX_PAGES or not 0 <= p.lock_position < SPACES:
                raise LayoutError("lock_out_of_range", f"placement {p.id}: page 1–{MAX_PAGES}, position 0–7")
            if not _mask(p.size, p.lock_position):
                raise LayoutError("illegal_position", f"placement {p.id}: a {p.size} goes at position "
                                  f"{', '.join(map(str, LEGAL_POSITIONS[p.size]))}")


def _pack(placements: list[Placement], seed, count: int, covers: bool, cover_of: dict) -> Layout:
    rng = random.Random(f"booklet:{seed}")
    layout = Layout(pages=count)
    cover_pages = {}
    if covers:
        if count < 2 + ("inside_front" in cover_of) + ("inside_back" in cover_of):
            raise LayoutError("does_not_fit", f"{count} pages cannot hold the covers")
        cover_pages = {1: "front", count: "back"}
        if "inside_front" in cover_of:
            cover_pages[2] = "inside_front"
        if "inside_back" in cover_of:
            cover_pages[count - 1] = "inside_back"
    layout.covers = cover_pages
    used = {page: 0 for page in range(1, count + 1)}
    for page, name in cover_pages.items():
        used[page] = FULL_PAGE
        p = cover_of.get(name)
        layout.slots.append(Slot(page, 0, "full", p.id if p else None, name))
    interior = [page for page in range(1, count + 1) if page not in cover_pages]

    def put(p: Placement, page: int, position: int) -> None:
        used[page] |= _mask(p.size, position)
        layout.slots.append(Slot(page, position, p.size, p.id))

    def fits(p: Placement, page: int) -> int | None:
        for position in _AUTO_POSITIONS[p.size]:
            if not used[page] & _mask(p.size, position):
                return position
        return None

    locked = [p for p in placements if p.lock_page is not None and not p.cover]
    for p in locked:
        if p.lock_page > count:
            raise LayoutError("lock_out_of_range", f"placement {p.id} is locked to page {p.lock_page} of {count}")
        if p.lock_page in cover_pages:
            raise LayoutError("lock_on_cover", f"placement {p.id} is locked to the {cover_pages[p.lock_page]} cover")
        mask = _mask(p.size, p.lock_position)
        if used[p.lock_page] & mask:
            raise LayoutError("lock_overlap", f"placement {p.id} is locked onto a space another lock holds")
        put(p, p.lock_page, p.lock_position)

    free = [p for p in placements if p.lock_page is None and not p.cover]
    fulls = sum(1 for p in free if p.size == "full")
    if fulls > sum(1 for page in interior if not used[page]):
        raise LayoutError("too_many_full_pages", f"{fulls} full-page placements, fewer free pages")
    premium = sorted((p for p in free if p.premium), key=lambda p: -SIZES[p.size])
    rest = [p for p in free if not p.premium]
    rng.shuffle(rest)
    rest.sort(key=lambda p: -SIZES[p.size])  # stable: the shuffle orders each size
    for p in premium:  # premium buys the front of the booklet
        for page in interior:
            position = fits(p, page)
            if position is not None:
                put(p, page, position)
                break
        else:
            raise LayoutError("does_not_fit", f"{count} pages cannot hold every placement")
    for p in rest:
        candidates = [(page, position) for page in interior if (position := fits(p, page)) is not None]
        if not candidates:
            raise LayoutError("does_not_fit", f"{count} pages cannot hold every placement")
        put(p, *rng.choice(candidates))
    for page in interior:  # house ads in whatever is left, largest shapes first
        for size in ("full", "half", "quarter", "single"):
            for position in LEGAL_POSITIONS[size]:
                mask = _mask(size, position)
                if not used[page] & mask:
                    used[page] |= mask
                    layout.slots.append(Slot(page, position, size, None))
    layout.slots.sort(key=lambda s: (s.page, s.position))
    return layout
