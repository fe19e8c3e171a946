"""Booklet render figures: 64 A5 pages with 512 voucher cards, zxing-cpp runs vs qrcode → PIL → drawImage.

    .venv/bin/python bench/booklet_render.py

Both renders run in the same process, one after the other, so the machine's
load weighs on both; every QR of the fast render is then rasterised at
200 dpi (pdftoppm) and decoded with zbar and zxing-cpp.
"""

from __future__ import annotations

import io
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import qrcode  # noqa: E402
import zxingcpp  # noqa: E402
from PIL import Image  # noqa: E402
from reportlab.lib.utils import ImageReader  # noqa: E402

from pos_app.core import tokens  # noqa: E402
from server_stub.booklet import cards, render  # noqa: E402
from server_stub.booklet.layout import Placement, lay_out  # noqa: E402
from server_stub.booklet.model import Card, EditionInfo  # noqa: E402

N = 512


def _cards(key):
    now = int(time.time())
    out = {}
    for i in range(N):
        code = f"BENCH{i:04d}"
        token = tokens.issue_static(key, iss="pika", aud="ret_bench", vid=f"vch_{i:04d}", code=code, iat=now,
                                    exp=now + 86400 * 60)
        out[f"p{i:04d}"] = Card(kind="voucher", tier=5, advertiser="Café Pika", discount="−50 %", code=code,
                                token=token, texts={"es": {"title": "Café chico a mitad de precio",
                                                           "body": "Cupón del librito. No acumulable."},
                                                    "gn": {"title": "Kafe michĩ mbytépe hepy",
                                                           "body": "Kuatia ñemboguejy hag̃ua."}},
                                validity={"es": "Válido hasta el 30/11/2026", "gn": "Oiko 30/11/2026 peve"})
    return out




def main() -> None:
    key = tokens.generate_private_key()
    card_set = _cards(key)
    layout = lay_out([Placement(pid, "single") for pid in card_set], "bench", covers=False)
    edition = EditionInfo("bk_bench", "Benchmark", "2026-11")
    render.fonts.register()
    render_pdf = render.render_pdf
    render_pdf(edition, lay_out([Placement("p0000", "single")], "w", covers=False), {"p0000": card_set["p0000"]})

    t = time.perf_counter()
    fast = render_pdf(edition, layout, card_set)
    fast_s = time.perf_counter() - t

    # The plain approach: qrcode (pure Python) → PIL image → drawImage, same pages otherwise.
    original = cards.qr.draw


    token_of = {}

    def draw_card(c, card, *args, **kwargs):
        token_of["current"] = card.token
        return original_draw_card(c, card, *args, **kwargs)

    def pil_draw(canvas, modules, x, y, size):
        qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=4, box_size=4)
        qr.add_data(token_of["current"])
        image = qr.make_image().get_image()
        canvas.drawImage(ImageReader(image), x, y, size, size)

    original_draw_card = cards.draw_card
    cards.qr.draw = pil_draw
    render.draw_card = draw_card
    cards_matrix = cards.qr.matrix
    cards.qr.matrix = lambda text: None  # the plain path encodes with qrcode instead
    try:
        t = time.perf_counter()
        render_pdf(edition, layout, card_set)
        plain_s = time.perf_counter() - t
    finally:
        cards.qr.draw, render.draw_card, cards.qr.matrix = original, original_draw_card, cards_matrix

    with tempfile.TemporaryDirectory() as tmp:
        pdf = Path(tmp) / "bench.pdf"
        pdf.write_bytes(fast)
        subprocess.run(["pdftoppm", "-r", "200", "-gray", "-png", str(pdf), str(Path(tmp) / "p")], check=True)
        zbar = zxing = 0
        expected = {c.token for c in card_set.values()}
        found_zbar, found_zxing = set(), set()
        for png in sorted(Path(tmp).glob("p-*.png")):
            out = subprocess.run(["zbarimg", "-q", "--raw", "-Sdisable", "-Sqrcode.enable", str(png)],
                                 capture_output=True, text=True)
            found_zbar |= {line for line in out.stdout.splitlines() if line}
            image = np.asarray(Image.open(png).convert("L"))
            found_zxing |= {b.text for b in zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)}
        zbar, zxing = len(found_zbar & expected), len(found_zxing & expected)
    print(f"pages: {layout.pages}, voucher cards: {N}, PDF {len(fast) / 1e6:.2f} MB")
    print(f"zxing-cpp + merged runs: {fast_s:.2f} s")
    print(f"qrcode → PIL → drawImage: {plain_s:.2f} s  (×{plain_s / fast_s:.1f})")
    print(f"decoded at 200 dpi: zbar {zbar}/{N}, zxing-cpp {zxing}/{N}")


if __name__ == "__main__":
    main()
