"""Request bodies of the booklet API, checked: an edition, a placement, a lock.

Shared by the HTTP handlers and the command line, so both refuse the same
things with the same codes.
"""

from __future__ import annotations

import base64
import binascii
import io
import re

from ..errors import Invalid, TooLarge
from ..validation import BOOL, DICT, INT, LIST, NONE, STR
from ..validation import check as _check
from .layout import COVERS, MAX_PAGES, SIZES
from .model import CONTENT_KINDS, LANGUAGES, PAPERS

MAX_PLACEMENTS_PER_REQUEST = 512
MAX_IMAGE_BYTES = 512 * 1024
MAX_PRICE = 10**12
_MONTH = re.compile(r"^(20[0-9]{2})-(0[1-9]|1[0-2])$")

EDITION_SPEC = {"month": (STR, True, 7), "title": (STR, False, 120), "paper": (STR, False, 2),
                "pages": (INT + NONE, False, None), "placements": (LIST, False, MAX_PLACEMENTS_PER_REQUEST)}
PLACEMENT_SPEC = {
    "size": (STR, True, 8), "content": (STR, True, 16), "voucher_id": (STR + NONE, False, 64),
    "advertiser": (STR + NONE, False, 120), "texts": (DICT, False, 2), "image_base64": (STR, False, 700_000),
    "premium": (BOOL, False, None), "price": (INT + NONE, False, None), "lock_page": (INT + NONE, False, None),
    "lock_position": (INT + NONE, False, None), "cover": (STR + NONE, False, 16),
}
LOCK_SPEC = {"page": (INT + NONE, True, None), "position": (INT + NONE, True, None)}
RENDER_SPEC = {"force": (BOOL, False, None)}
_TEXT_LIMITS = {"title": 120, "body": 400}


def month(value: str) -> str:
    """A month as YYYY-MM (2000–2099), else Invalid."""
    if not isinstance(value, str) or not _MONTH.match(value):
        raise Invalid("invalid_value", "month is YYYY-MM")
    return value


def edition(body, check=_check) -> dict:
    """The edition body; `check` is the shape check to use (the app passes its own, which tests observe)."""
    body = check(body, EDITION_SPEC)
    out = {"month": month(body["month"]), "title": (body.get("title") or "").strip(),
           "paper": body.get("paper", "A5"), "pages": body.get("pages"),
           "placements": [placement(p, f"placements[{i}]", check) for i, p in enumerate(body.get("placements", []))]}
    if out["paper"] not in PAPERS:
        raise Invalid("invalid_value", f"paper is one of {', '.join(PAPERS)}")
    if out["pages"] is not None and not 2 <= out["pages"] <= MAX_PAGES:
        raise Invalid("invalid_value", f"pages is between 2 and {MAX_PAGES}")
    return out


def placement(body, where: str = "body", check=_check) -> dict:
    body = check(body, PLACEMENT_SPEC, where)
    p = {"size": body["size"], "content": body["content"], "voucher_id": body.get("voucher_id"),
         "advertiser": (body.get("advertiser") or "").strip(), "premium": body.get("premium", False),
         "price": body.get("price"), "lock_page": body.get("lock_page"), "lock_position": body.get("lock_position"),
         "cover": body.get("cover"), "texts": _texts(body.get("texts", {}), where), "image": None}
    if p["size"] not in SIZES:
        raise Invalid("invalid_value", f"{where}.size is one of {', '.join(SIZES)}")
    if p["content"] not in CONTENT_KINDS:
        raise Invalid("invalid_value", f"{where}.content is one of {', '.join(CONTENT_KINDS)}")
    if p["cover"] is not None and p["cover"] not in COVERS:
        raise Invalid("invalid_value", f"{where}.cover is one of {', '.join(COVERS)}")
    if p["price"] is not None and not 0 <= p["price"] <= MAX_PRICE:
        raise Invalid("invalid_value", f"{where}.price is a whole number of guaraníes, 0 or more")
    if p["content"] == "voucher":
        if not p["voucher_id"]:
            raise Invalid("invalid_value", f"{where}: a voucher placement needs voucher_id")
    elif p["voucher_id"] is not None:
        raise Invalid("invalid_value", f"{where}: only a voucher placement names a voucher_id")
    if p["content"] in ("ad", "sponsored") and not p["texts"].get("es", {}).get("title"):
        raise Invalid("invalid_value", f"{where}: an ad needs texts.es.title")
    if p["content"] in ("ad", "sponsored", "image") and not p["advertiser"]:
        raise Invalid("invalid_value", f"{where}: name the advertiser")
    if p["content"] == "image":
        if "image_base64" not in body:
            raise Invalid("invalid_value", f"{where}: an image placement needs image_base64 (PNG or JPEG)")
        p["image"] = _image(body["image_base64"], where)
    elif "image_base64" in body:
        raise Invalid("invalid_value", f"{where}: only an image placement carries an image")
    return p


def lock(body, check=_check) -> tuple[int | None, int | None]:
    body = check(body, LOCK_SPEC)
    return body["page"], body["position"]


def _texts(texts: dict, where: str) -> dict:
    out = {}
    for lang, entry in texts.items():
        if lang not in LANGUAGES or not isinstance(entry, dict) or not set(entry) <= set(_TEXT_LIMITS):
            raise Invalid("invalid_value", f"{where}.texts are {{es|gn: {{title, body}}}}")
        for key, value in entry.items():
            if not isinstance(value, str) or len(value) > _TEXT_LIMITS[key] or "\x00" in value:
                raise Invalid("invalid_value", f"{where}.texts.{lang}.{key} is text of at most "
                                               f"{_TEXT_LIMITS[key]} characters")
        out[lang] = {k: " ".join(v.split()) for k, v in entry.items()}
    return out


def _image(text: str, where: str) -> bytes:
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise Invalid("invalid_value", f"{where}.image_base64 is not base64") from None
    if len(data) > MAX_IMAGE_BYTES:
        raise TooLarge("payload_too_large", f"{where}: an image is at most {MAX_IMAGE_BYTES} bytes")
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format not in ("PNG", "JPEG") or max(image.size) > 6000:
                raise Invalid("invalid_value", f"{where}: the image is a PNG or JPEG up to 6000 px")
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise Invalid("invalid_value", f"{where}: the image cannot be read") from None
    return data
