"""The booklet's tightest voucher card for the docs: an A5 single slot with the longest value, titles and code.

    .venv/bin/python docs/screenshots/take_booklet_card.py

A backend in a temporary folder makes a printed voucher of Gs. 1.000.000 (formatted by babel in
es_PY, as every card is) with long Spanish and Guaraní titles, a 24-letter printed code and a late
start, places it in a single space of a March edition, and renders the real PDF. pdftoppm rasterises
the page at 150 dpi and the picture is cropped to the slot's cut lines: booklet-card.png.
"""

from __future__ import annotations

import datetime
import subprocess
import sys
import tempfile
from pathlib import Path
from zoneinfo import ZoneInfo

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from PIL import Image  # noqa: E402

from server_stub.backend import Backend  # noqa: E402
from server_stub.booklet.editions import Booklets  # noqa: E402
from server_stub.booklet.layout import Slot  # noqa: E402
from server_stub.booklet.placements import edition as edition_body  # noqa: E402
from server_stub.booklet.render import Geometry  # noqa: E402
from server_stub.datadir import DataDir  # noqa: E402

DPI = 150
ZONE = ZoneInfo("America/Asuncion")
TEXTS = {"es": {"title": "Combo familiar de chipa guasu, sopa paraguaya y mbejú con cocido de leña",
                "terms": "Válido de lunes a viernes en todas las sucursales, una por persona y por compra."},
         "gn": {"title": "Chipa guasu, so'o jopara ha mbeju ñembyaty, kosido g̃uarã ỹ, G̃uahẽ porã",
                "terms": "Peteĩ tapichápe, peteĩ jejogua rehe."}}


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "backend"
        DataDir(root).init()
        backend = Backend(root)
        try:
            retailer = backend.create_retailer("Panadería y Confitería Ñandutí Mbujape")
            start = int(datetime.datetime(2031, 3, 15, tzinfo=ZONE).timestamp())
            end = int(datetime.datetime(2031, 5, 1, tzinfo=ZONE).timestamp())
            voucher = backend.create_voucher({"retailer_id": retailer["id"], "kind": "printed", "texts": TEXTS,
                                              "discount": {"kind": "amount", "value": 1_000_000, "currency": "PYG"},
                                              "valid_from": start, "valid_until": end})
            backend.change_voucher(voucher["id"], "publish")
            backend.create_printed_code(voucher["id"], "MBUJAPE2031COMBOFAMILIAR")
            booklets = Booklets(backend)
            made = booklets.create(edition_body({"month": "2031-03", "title": "Cupones de marzo", "placements": [
                {"size": "single", "content": "voucher", "voucher_id": voucher["id"], "lock_page": 2,
                 "lock_position": 0}]}))
            done = booklets.render(made["id"])
            pdf = Path(tmp) / "booklet.pdf"
            pdf.write_bytes(booklets.pdf(made["id"]))
        finally:
            backend.close()
        slot = next(s for s in done["layout"]["slots"] if s["content"] == "voucher")
        subprocess.run(["pdftoppm", "-r", str(DPI), "-png", "-f", str(slot["page"]), "-l", str(slot["page"]),
                        "-singlefile", str(pdf), str(Path(tmp) / "page")], check=True)
        geo = Geometry("A5")
        x, y, w, h = geo.rect(Slot(slot["page"], slot["position"], slot["size"], "card"))
        k, margin = DPI / 72, 3  # pixels a point; a few pixels of page round the cut lines
        box = (round(x * k) - margin, round((geo.height - y - h) * k) - margin,
               round((x + w) * k) + margin, round((geo.height - y) * k) + margin)
        target = HERE / "booklet-card.png"
        Image.open(Path(tmp) / "page.png").crop(box).save(target, optimize=True)
        print("wrote", target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
