"""Booklet render figures: 64 A5 pages with 512 voucher cards, zxing-cpp runs vs qrcode → PIL → drawImage.

    .venv/bin/python bench/booklet_render.py [--runs 5] [--no-plain]

Both renders run in the same process, one after the other, so the machine's
load weighs on both; every QR of the fast render is then rasterised at
200 dpi (pdftoppm) and decoded with zbar and zxing-cpp. The fast render is
timed --runs times (median shown), each run starting its QR helper process
anew; the CPU time shown is this process's, its page-compression thread
included, the helper's not.
"""

from __future__ import annotations

import argparse
import os
import statistics
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
from server_stub.booklet import cards, qr, render  # noqa: E402
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


def _plain_render(render_pdf, edition, layout, card_set) -> float:
    """The plain approach: qrcode (pure Python) → PIL image → drawImage, same pages otherwise."""

    class PlainCodes:  # no zxing-cpp, no helper: the token is all pil_draw needs
        def __init__(self, texts):
            pass

        def __call__(self, text):
            return qr.Code(text, 0, "")

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            pass

    def pil_draw(canvas, code, x, y, size):
        plain = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=4, box_size=4)
        plain.add_data(code.text)
        image = plain.make_image().get_image()
        canvas.drawImage(ImageReader(image), x, y, size, size)

    original = qr.draw, render.Codes
    qr.draw, render.Codes = pil_draw, PlainCodes
    try:
        cards._wrap.cache_clear()
        t = time.perf_counter()
        render_pdf(edition, layout, card_set)
        return time.perf_counter() - t
    finally:
        qr.draw, render.Codes = original


def _decoded(pdf_bytes: bytes, expected: set[str]) -> tuple[int, int]:
    """Every page at 200 dpi (pdftoppm): how many of the tokens zbar and zxing-cpp read back."""
    with tempfile.TemporaryDirectory() as tmp:
        pdf = Path(tmp) / "bench.pdf"
        pdf.write_bytes(pdf_bytes)
        subprocess.run(["pdftoppm", "-r", "200", "-gray", "-png", str(pdf), str(Path(tmp) / "p")], check=True)
        found_zbar, found_zxing = set(), set()
        for png in sorted(Path(tmp).glob("p-*.png")):
            out = subprocess.run(["zbarimg", "-q", "--raw", "-Sdisable", "-Sqrcode.enable", str(png)],
                                 capture_output=True, text=True)
            found_zbar |= {line for line in out.stdout.splitlines() if line}
            image = np.asarray(Image.open(png).convert("L"))
            found_zxing |= {b.text for b in zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)}
    return len(found_zbar & expected), len(found_zxing & expected)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="timed renders of the fast path (median shown)")
    parser.add_argument("--no-plain", action="store_true", help="skip the plain render (17+ s) and its ratio")
    args = parser.parse_args()

    key = tokens.generate_private_key()
    card_set = _cards(key)
    layout = lay_out([Placement(pid, "single") for pid in card_set], "bench", covers=False)
    edition = EditionInfo("bk_bench", "Benchmark", "2026-11")
    render.fonts.register()
    render_pdf = render.render_pdf
    render_pdf(edition, lay_out([Placement("p0000", "single")], "w", covers=False), {"p0000": card_set["p0000"]})

    walls, cpus, helped = [], [], []
    real_codes = render.Codes

    class CountingCodes(real_codes):
        def __exit__(self, *exc):
            super().__exit__(*exc)
            helped.append(self.from_helper)

    render.Codes = CountingCodes
    try:
        for _ in range(args.runs):
            cards._wrap.cache_clear()  # each timed render starts with no text measured yet
            t, cpu = time.perf_counter(), time.process_time()
            fast = render_pdf(edition, layout, card_set)
            walls.append(time.perf_counter() - t)
            cpus.append(time.process_time() - cpu)
    finally:
        render.Codes = real_codes
    fast_s = statistics.median(walls)
    plain_s = None if args.no_plain else _plain_render(render_pdf, edition, layout, card_set)
    zbar, zxing = _decoded(fast, {c.token for c in card_set.values()})

    print(f"pages: {layout.pages}, voucher cards: {N}, PDF {len(fast) / 1e6:.2f} MB")
    print(f"zxing-cpp + merged runs: {fast_s:.2f} s  (median of {args.runs}: "
          f"{' '.join(f'{w:.2f}' for w in walls)}; this process's CPU {statistics.median(cpus):.2f} s, "
          f"codes from the helper process {statistics.median(helped):.0f}/{N})")
    if plain_s is not None:
        print(f"qrcode → PIL → drawImage: {plain_s:.2f} s  (×{plain_s / fast_s:.1f})")
    print(f"decoded at 200 dpi: zbar {zbar}/{N}, zxing-cpp {zxing}/{N}")
    print("load average: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
