"""No voucher card cuts what matters, on any slot a voucher can take (issue 12 §3).

A field report had a single slot print "−Gs.…". Here every size the layout
offers a voucher on each paper (model.MIN_VOUCHER_SIZE and up, plain and
premium, and the four covers) is rendered through the real API with the
longest real values: an amount of Gs. 1.000.000 (babel, es_PY, as the cards
format it) and 100 %, 70-odd character titles in Spanish and Guaraní (ñ, g̃,
G̃, ỹ), a long advertiser, a 24-character printed code and a late start's
two-date validity. The PDF is read back with `pdftotext -bbox-layout` and
rasterised with `pdftoppm`:

- the value is one line, whole; every word of both titles, of the validity
  and of the advertiser is there whole; the printed code is one word;
- every word a card prints lies inside that card's box;
- the printed code stays off its QR's quiet zone, and every card's words
  stand out from the card behind them (a code drawn dark on a dark cover,
  half on the QR's white, was there but could not be read).
"""

from __future__ import annotations

import datetime
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
import zxingcpp
from PIL import Image

from server_stub.booklet.layout import COVERS, SIZES, Slot
from server_stub.booklet.model import MIN_VOUCHER_SIZE, PAPERS
from server_stub.booklet.qr_symbol import symbol
from server_stub.booklet.render import Geometry

MONTH = "2031-03"
ZONE = ZoneInfo("America/Asuncion")
TITLE_ES = "Combo familiar de chipa guasu, sopa paraguaya y mbejú con cocido de leña"
TITLE_GN = "Chipa guasu, so'o jopara ha mbeju ñembyaty, kosido g̃uarã ỹ, G̃uahẽ porã"
ADVERTISER = "Panadería y Confitería Ñandutí Mbujape"
TERMS = "Válido de lunes a viernes en todas las sucursales, una por persona y por compra."
VALUES = {"amount": ({"kind": "amount", "value": 1_000_000}, "−Gs. 1.000.000"),
          "percent": ({"kind": "percent", "value": 100}, "−100 %")}
# Starts on the 15th, so the card states both days: the longest validity there is.
VALIDITY = ("Válido del 15/03/2031 al 30/04/2031", "Oiko 15/03/2031 guive 30/04/2031 peve")
DPI = 150
MASTHEAD = 46 * 72 / 25.4  # points (A5; A6 scales it): the front cover's band above its card (render._cover_page)


def voucher_shapes(paper: str) -> list[tuple[str, str | None, bool]]:
    """(size, cover, premium) of every slot a voucher can take on this paper."""
    smallest = SIZES[MIN_VOUCHER_SIZE[paper]]
    interior = [(size, None, premium) for size in SIZES if SIZES[size] >= smallest for premium in (False, True)]
    return interior + [("full", cover, False) for cover in COVERS]


def _run(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True, timeout=60).stdout


@dataclass
class Word:
    text: str
    x0: float  # points, from the page's top left (pdftotext's frame)
    y0: float
    x1: float
    y1: float

    def centre(self) -> tuple[float, float]:
        return (self.x0 + self.x1) / 2, (self.y0 + self.y1) / 2


def _read_words(pdf: Path) -> list[list[list[Word]]]:
    """Page → line → words, as `pdftotext -bbox-layout` reads them."""
    root = ET.fromstring(_run("pdftotext", "-enc", "UTF-8", "-bbox-layout", str(pdf), "-"))
    ns = {"h": "http://www.w3.org/1999/xhtml"}
    pages = []
    for page in root.iterfind(".//h:page", ns):
        pages.append([[Word(w.text or "", *(float(w.get(k)) for k in ("xMin", "yMin", "xMax", "yMax")))
                       for w in line.iterfind("h:word", ns)] for line in page.iterfind(".//h:line", ns)])
    return pages


@dataclass
class Printed:
    """One voucher card as printed: where its box is, and what was read inside it."""
    paper: str
    value: str
    slot: dict
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in points from the page's top left
    lines: list[list[Word]]
    raster: np.ndarray  # the page in grey, DPI
    qrs: list[tuple[float, float, float, float]]  # quiet-zone squares on the page, in points

    @property
    def name(self) -> str:
        s = self.slot
        return f"{self.paper} {s['cover'] or s['size']}{' premium' if s['premium'] else ''} {self.value}"

    @property
    def words(self) -> list[Word]:
        return [w for line in self.lines for w in line]


def _card_box(geo: Geometry, slot: dict) -> tuple[float, float, float, float]:
    """The card's rectangle, pdftotext's frame: an interior slot's inset rectangle; a cover's page
    inside its header and footer, the front's below its masthead."""
    if slot["cover"]:
        x, y, w, h = geo.side, geo.foot, geo.width - 2 * geo.side, geo.height - geo.head - geo.foot
        h -= MASTHEAD * geo.k if slot["cover"] == "front" else 0
    else:
        x, y, w, h = geo.rect(Slot(slot["page"], slot["position"], slot["size"], "p"))
        i = geo.inset
        x, y, w, h = x + i, y + i, w - 2 * i, h - 2 * i
    return x, geo.height - (y + h), x + w, geo.height - y


def _quiet_squares(png: Path) -> list[tuple[float, float, float, float]]:
    """Each decoded QR's square with its 4-module quiet zone, in points from the top left."""
    image = np.asarray(Image.open(png).convert("L"))
    out = []
    for b in zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode):
        side = symbol(b.text)[0]
        p = b.position
        xs = [p.top_left.x, p.top_right.x, p.bottom_left.x, p.bottom_right.x]
        ys = [p.top_left.y, p.top_right.y, p.bottom_left.y, p.bottom_right.y]
        module = (max(xs) - min(xs)) / (side - 1)  # the corners sit on the outer modules' centres
        grow = 4.5 * module
        k = 72 / DPI
        out.append(((min(xs) - grow) * k, (min(ys) - grow) * k, (max(xs) + grow) * k, (max(ys) + grow) * k))
    return out


def _edition(api, paper: str, value: str, tmp: Path) -> list[Printed]:
    start = int(datetime.datetime(2031, 3, 15, 1, tzinfo=ZONE).timestamp())
    end = int(datetime.datetime(2031, 5, 1, tzinfo=ZONE).timestamp())
    placements = []
    for n, (size, cover, premium) in enumerate(voucher_shapes(paper)):
        voucher = api.voucher("printed", texts={"es": {"title": TITLE_ES, "terms": TERMS},
                                                "gn": {"title": TITLE_GN, "terms": "Peteĩ tapichápe."}},
                              discount=VALUES[value][0], valid_from=start, valid_until=end)
        code = f"MBUJAPE{paper}{value[0]}{n:02d}".upper().ljust(24, "W")  # 24: the longest a printed code is
        api.backend.create_printed_code(voucher["id"], code)
        placements.append({"size": size, "content": "voucher", "voucher_id": voucher["id"], "cover": cover,
                           "premium": premium, "advertiser": ADVERTISER})
    made = api.ok(api.client.post("/booklets", headers=api.admin,
                                  json={"month": MONTH, "paper": paper, "placements": placements}), 201)
    done = api.ok(api.client.post(f"/booklets/{made['id']}/render", headers=api.admin, json={}))
    pdf = tmp / f"{paper}-{value}.pdf"
    pdf.write_bytes(api.client.get(f"/booklets/{made['id']}.pdf", headers=api.admin).content)
    _run("pdftoppm", "-r", str(DPI), "-gray", "-png", str(pdf), str(tmp / f"{paper}-{value}"))
    pngs = sorted(tmp.glob(f"{paper}-{value}-*.png"), key=lambda p: int(p.stem.rsplit("-", 1)[1]))
    rasters = [np.asarray(Image.open(p).convert("L"), dtype=np.float64) / 255 for p in pngs]
    squares = [_quiet_squares(p) for p in pngs]
    pages = _read_words(pdf)
    geo = Geometry(paper)
    printed = []
    for slot in done["layout"]["slots"]:
        if slot["content"] != "voucher":
            continue
        box = _card_box(geo, slot)
        inside = [line for line in pages[slot["page"] - 1] if _within_centre(line[0], box)]
        printed.append(Printed(paper, value, slot, box, inside, rasters[slot["page"] - 1],
                               [q for q in squares[slot["page"] - 1] if _within_centre(Word("", *q), box)]))
    assert len(printed) == len(placements)
    return printed


def _within_centre(word: Word, box) -> bool:
    cx, cy = word.centre()
    return box[0] <= cx <= box[2] and box[1] <= cy <= box[3]


@pytest.fixture(scope="module")
def cards(module_api, tmp_path_factory) -> dict[str, Printed]:
    tmp = tmp_path_factory.mktemp("fit")
    out = {}
    for paper in PAPERS:
        for value in VALUES:
            for card in _edition(module_api, paper, value, tmp):
                out[card.name] = card
    return out


NAMES = [f"{paper} {cover or size}{' premium' if premium else ''} {value}"
         for paper in PAPERS for size, cover, premium in voucher_shapes(paper) for value in VALUES]


def test_every_voucher_size_is_covered():
    """The cases are the layout's own: A5 from a single, A6 from a half, and every cover."""
    assert len(NAMES) == len(set(NAMES))
    assert {n.split()[1] for n in NAMES if n.startswith("A5 ")} == {"single", "quarter", "half", "full", *COVERS}
    assert {n.split()[1] for n in NAMES if n.startswith("A6 ")} == {"half", "full", *COVERS}


@pytest.mark.parametrize("name", NAMES)
def test_a_card_shows_its_value_titles_code_and_validity_whole(cards, name):
    card = cards[name]
    lines = [" ".join(w.text for w in line) for line in card.lines]
    words = [part for w in card.words for part in w.text.split()]  # a shaped line (g̃, G̃) reads as one "word"
    value = VALUES[card.value][1]
    assert value in lines, f"{name}: the value is not one whole line: {lines}"
    cut = [w for w in words if "…" in w and not any(t.startswith(w.rstrip("…")) for t in TERMS.split())]
    assert not cut, f"{name}: {cut} cut, and only the terms may be: {lines}"
    for text in (TITLE_ES, TITLE_GN, ADVERTISER.upper(), *VALIDITY):
        missing = [w for w in text.split() if w not in words]
        assert not missing, f"{name}: {missing} of {text!r} not printed whole: {lines}"
    assert card.slot["code"] in words, f"{name}: the code {card.slot['code']} is not whole: {lines}"


@pytest.mark.parametrize("name", NAMES)
def test_a_card_keeps_its_words_inside_its_box(cards, name):
    card = cards[name]
    x0, y0, x1, y1 = card.box
    slack = 0.5  # points: pdftotext's boxes are the font's, a little wider than the ink
    out = [w.text for w in card.words
           if w.x0 < x0 - slack or w.y0 < y0 - slack or w.x1 > x1 + slack or w.y1 > y1 + slack]
    assert not out, f"{name}: {out} spill out of the card"


def _luminance(grey: np.ndarray) -> np.ndarray:
    return np.where(grey <= 0.04045, grey / 12.92, ((grey + 0.055) / 1.055) ** 2.4)


@pytest.mark.parametrize("name", NAMES)
def test_the_code_keeps_off_its_qr(cards, name):
    card = cards[name]
    assert len(card.qrs) == 1, f"{name}: {len(card.qrs)} QR codes decoded on the card"
    qx0, qy0, qx1, qy1 = card.qrs[0]
    code = next(w for w in card.words if w.text == card.slot["code"])
    overlap = min(code.x1, qx1) - max(code.x0, qx0), min(code.y1, qy1) - max(code.y0, qy0)
    assert min(overlap) <= 0, f"{name}: the printed code lies {overlap[1]:.1f} pt into its QR's quiet zone"


@pytest.mark.parametrize("name", NAMES)
def test_what_a_card_must_show_stands_out_from_it(cards, name):
    card = cards[name]
    k = DPI / 72
    needed = {*" ".join((VALUES[card.value][1], TITLE_ES, TITLE_GN, ADVERTISER.upper(), *VALIDITY)).split(),
              card.slot["code"]}
    for word in card.words:  # the ink against the card behind it, as WCAG measures contrast
        if not needed & set(word.text.split()):
            continue  # the badge (white on gold, a look of its own) and the terms
        patch = card.raster[int(word.y0 * k):int(word.y1 * k) + 1, int(word.x0 * k):int(word.x1 * k) + 1]
        lum = _luminance(patch)
        low, high = np.percentile(lum, 3), np.percentile(lum, 97)
        ratio = (high + 0.05) / (low + 0.05)
        assert ratio >= 3, f"{name}: {word.text!r} has a contrast of {ratio:.1f}:1 with its card"


def test_the_refusals_of_a_voucher_placement_are_documented(module_api):
    """outside_month and voucher_too_small, as the API answers them, are named in openapi.json's 422 of the
    operation that gave them (create an edition; add a placement)."""
    import json

    api = module_api
    doc = json.loads((Path(__file__).resolve().parents[1] / "server_stub" / "openapi.json").read_text("utf-8"))
    expired = api.voucher("printed", valid_until=int(datetime.datetime(2031, 3, 1, tzinfo=ZONE).timestamp()))
    api.backend.create_printed_code(expired["id"], "VENCIDO2031")
    fresh = api.voucher("printed")
    api.backend.create_printed_code(fresh["id"], "NUEVO2031")
    cases = {"outside_month": ("A5", "single", expired["id"]), "voucher_too_small": ("A6", "quarter", fresh["id"])}
    for code, (paper, size, voucher_id) in cases.items():
        placement = {"size": size, "content": "voucher", "voucher_id": voucher_id}
        refused = api.client.post("/booklets", headers=api.admin,
                                  json={"month": MONTH, "paper": paper, "placements": [placement]})
        edition = api.ok(api.client.post("/booklets", headers=api.admin, json={"month": MONTH, "paper": paper}), 201)
        added = api.client.post(f"/booklets/{edition['id']}/placements", headers=api.admin, json=placement)
        for answer, path in ((refused, "/api/v1/booklets"), (added, "/api/v1/booklets/{edition_id}/placements")):
            assert answer.status_code == 422 and answer.json()["error"]["code"] == code, answer.text
            documented = doc["paths"][path]["post"]["responses"]["422"]
            if "$ref" in documented:  # a shared answer: components/responses/…
                documented = doc["components"]["responses"][documented["$ref"].rsplit("/", 1)[1]]
            assert f"`{code}`" in documented["description"], f"{path}: 422 {code} is not documented"
