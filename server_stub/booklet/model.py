"""What a booklet prints: tiers and prices of slots, and the content of each card.

A slot's tier follows from where it is: the four covers are tier 1 (full
page, premium), then interior full pages (2), halves (3), quarters (4) and
single spaces (5). The premium flag is apart from the tier: it places a
listing first and gives it a badge.
"""

from __future__ import annotations

from dataclasses import dataclass, field

CONTENT_KINDS = ("voucher", "image", "ad", "sponsored")
PAPERS = ("A5", "A6")
LANGUAGES = ("es", "gn")
TIERS = {  # tier → (label, default price in PYG)
    1: ("Cover – Full Page – Tier 1", 2_500_000),
    2: ("Interior – Full Page – Tier 2", 1_200_000),
    3: ("Interior – Half Page – Tier 3", 650_000),
    4: ("Interior – Quarter Page – Tier 4", 350_000),
    5: ("Interior – Single Space – Tier 5", 150_000),
}
# The smallest slot a voucher card takes on each paper: its QR (0.45 mm modules, 34.7 mm; cards.MODULE)
# and its texts fit an A5 single space (67 × 47 mm), but A6 rows are 33 mm high, so an A6 voucher
# takes a half (95 × 67 mm).
MIN_VOUCHER_SIZE = {"A5": "single", "A6": "half"}
_SIZE_TIER = {"full": 2, "half": 3, "quarter": 4, "single": 5}
COVER_NAMES = {"front": "Front Cover", "inside_front": "Inside Front Cover", "inside_back": "Inside Back Cover",
               "back": "Back Cover"}


def tier_of(size: str, cover: str | None) -> int:
    return 1 if cover else _SIZE_TIER[size]


def tier_label(size: str, cover: str | None) -> str:
    if cover:
        return f"{COVER_NAMES[cover]} – Full Page – Tier 1"
    return TIERS[tier_of(size, cover)][0]


def default_price(size: str, cover: str | None) -> int:
    return TIERS[tier_of(size, cover)][1]


@dataclass
class Card:
    """Everything one slot prints, already resolved (texts per language, a signed token)."""

    kind: str  # voucher | image | ad | sponsored | house
    tier: int
    premium: bool = False
    advertiser: str = ""
    texts: dict[str, dict[str, str]] = field(default_factory=dict)  # lang → {title, body}
    discount: str = ""
    validity: dict[str, str] = field(default_factory=dict)  # lang → "válido hasta …"
    code: str = ""
    token: str = ""
    image: bytes | None = None
    cover: str | None = None


@dataclass
class EditionInfo:
    """What every page repeats: the edition, its month, its paper."""

    id: str
    title: str
    month: str  # YYYY-MM
    paper: str = "A5"
