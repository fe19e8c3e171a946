"""The renderer's fast paths give the same PDF as the plain ones: QR run operators built with
numpy, codes shared with a helper process (or not, if it fails), page streams Flate-encoded on a
second thread; and a booklet big enough to use the helper still decodes, every code."""

from __future__ import annotations

import subprocess
import sys
import time
import zlib

import numpy as np
import pytest
import zxingcpp
from PIL import Image

from pos_app.core import tokens
from server_stub.booklet import qr, qr_helper, render
from server_stub.booklet.layout import Placement, lay_out
from server_stub.booklet.model import Card, EditionInfo

VOUCHERS = 64  # eight pages: above qr_helper.MIN_CODES, so the helper runs


def _plain_ops(modules: np.ndarray) -> str:
    """The operators formatted run by run: what run_ops must give."""
    runs = []
    for r, row in enumerate(modules.tolist()):
        c = 0
        while c < len(row):
            if row[c]:
                start = c
                while c < len(row) and row[c]:
                    c += 1
                runs.append(f"{start} {r} {c - start} 1 re")
            else:
                c += 1
    return " ".join(runs)


@pytest.mark.parametrize("n", [21, 69, 177])
def test_run_ops_matches_plain_formatting(n):
    rng = np.random.default_rng(n)
    for density in (0.0, 0.3, 0.5, 0.9, 1.0):
        modules = rng.random((n, n)) < density
        assert qr.run_ops(modules) == _plain_ops(modules)
    modules = qr.matrix("eyJ" + "x" * 300)
    assert qr.run_ops(modules) == _plain_ops(modules)


@pytest.fixture(scope="module")
def booklet():
    key = tokens.generate_private_key()
    now = int(time.time())
    cards = {}
    for i in range(VOUCHERS):
        token = tokens.issue_static(key, iss="pika", aud="ret_test", vid=f"vch_{i:03d}", code=f"T{i:04d}",
                                    iat=now, exp=now + 86400)
        cards[f"p{i:03d}"] = Card(kind="voucher", tier=5, advertiser="Café Pika", discount="−10 %",
                                  code=f"T{i:04d}", token=token,
                                  texts={"es": {"title": "Cupón"}, "gn": {"title": "Kuatia hag̃ua"}},
                                  validity={"es": "Válido hasta el 30/11/2026"})
    layout = lay_out([Placement(pid, "single") for pid in cards], "t", covers=False)
    return EditionInfo("bk_t", "Prueba", "2026-11"), layout, cards


def test_helper_codes_are_the_codes(booklet):
    _, _, cards = booklet
    texts = [c.token for c in cards.values()]
    with qr_helper.Codes(texts) as codes:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the helper works from the last text back to the first
            codes(texts[0])
            if codes.from_helper:
                break
            time.sleep(0.05)
        assert all(codes(t) == qr.encode(t) for t in texts)
        assert codes.from_helper == 1 + len(texts), "the helper sent every code"


def test_the_helper_starts_without_numpy():
    """qr_symbol is all the helper imports: numpy would cost it 0.15 s before its first code."""
    probe = qr_helper._HELPER_MAIN.replace("qr_symbol.serve()", "print('numpy' in sys.modules)")
    out = subprocess.run([sys.executable, "-I", "-c", probe], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "False"


def test_same_pdf_with_the_helper_or_without(booklet, monkeypatch):
    edition, layout, cards = booklet
    with_helper = render.render_pdf(edition, layout, cards, invariant=True)
    monkeypatch.setattr(qr_helper, "_HELPER_MAIN", "import sys; sys.exit(3)")  # a helper that dies
    assert render.render_pdf(edition, layout, cards, invariant=True) == with_helper
    monkeypatch.setattr(qr_helper, "MIN_CODES", 10**6)  # no helper at all
    assert render.render_pdf(edition, layout, cards, invariant=True) == with_helper


def test_page_streams_are_flate_only_and_every_code_decodes(booklet, tmp_path):
    edition, layout, cards = booklet
    data = render.render_pdf(edition, layout, cards)
    assert b"/ASCII85Decode" not in data and data.count(b"/FlateDecode") >= layout.pages
    with_codes = 0
    for part in data.split(b"stream\n")[1:]:
        try:
            with_codes += b" 1 re " in zlib.decompressobj().decompress(part)
        except zlib.error:
            pass
    assert with_codes == layout.pages, "each page's stream inflates to its codes' run operators"
    pdf = tmp_path / "b.pdf"
    pdf.write_bytes(data)
    fonts = subprocess.run(["pdffonts", str(pdf)], check=True, capture_output=True, text=True).stdout
    assert all(line.split()[-5] == "yes" for line in fonts.splitlines()[2:]), "every font embedded"
    subprocess.run(["pdftoppm", "-r", "200", "-gray", "-png", str(pdf), str(tmp_path / "p")], check=True)
    zbar, zxing = set(), set()
    for png in sorted(tmp_path.glob("p-*.png")):
        out = subprocess.run(["zbarimg", "-q", "--raw", "-Sdisable", "-Sqrcode.enable", str(png)],
                             capture_output=True, text=True, timeout=60, check=False)  # 4: none found
        zbar |= {line for line in out.stdout.splitlines() if line}
        image = np.asarray(Image.open(png).convert("L"))
        zxing |= {b.text for b in zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)}
    expected = {c.token for c in cards.values()}
    assert zbar == zxing == expected
