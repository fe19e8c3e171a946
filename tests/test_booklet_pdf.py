"""The booklet PDF read back: pages and size, embedded fonts, Guaraní text, and every
QR rasterised at 150 dpi decoding (zbar and zxing-cpp) to a token that verifies with
the backend's key and that a till redeems as a printed code."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import zxingcpp
from PIL import Image

from pos_app.core import tokens
from server_stub.booklet.qr_symbol import symbol
from booklet_fixtures import DATES, dated_api, moment

A5_PT = (419.53, 595.28)  # 148 × 210 mm
A6_PT = (297.64, 419.53)


def _run(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True, timeout=60).stdout


def _page_sizes(pdf: Path) -> list[tuple[float, float]]:
    out = _run("pdfinfo", "-f", "1", "-l", "999", str(pdf))
    sizes = []
    for line in out.splitlines():
        if line.startswith("Page") and "size:" in line:
            parts = line.split("size:")[1].split()
            sizes.append((float(parts[0]), float(parts[2])))
    return sizes


def _decode_all(pdf: Path, tmp: Path, dpi: int = 150) -> tuple[list[str], list[str]]:
    """Every QR of every page at `dpi` (150: a cheap phone's view of paper): (zbar's texts, zxing-cpp's texts)."""
    for old in tmp.glob("page-*.png"):
        old.unlink()
    _run("pdftoppm", "-r", str(dpi), "-gray", "-png", str(pdf), str(tmp / "page"))
    zbar, zxing = [], []
    for png in sorted(tmp.glob("page-*.png")):
        out = subprocess.run(["zbarimg", "-q", "--raw", "-Sdisable", "-Sqrcode.enable", str(png)],
                             capture_output=True, text=True, timeout=60)
        zbar += [line for line in out.stdout.splitlines() if line]
        image = np.asarray(Image.open(png).convert("L"))
        zxing += [b.text for b in zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)]
    return zbar, zxing


@pytest.fixture
def rendered(api, tmp_path):
    edition_id = api.demo["booklet"]["edition_id"]
    answer = api.ok(api.client.post(f"/booklets/{edition_id}/render", headers=api.admin, json={}))
    pdf = tmp_path / "booklet.pdf"
    response = api.client.get(f"/booklets/{edition_id}.pdf", headers=api.admin)
    assert response.status_code == 200 and response.headers["content-type"] == "application/pdf"
    pdf.write_bytes(response.content)
    return answer, pdf


# The demo edition is of the month after the one it is made in, as Asunción's calendar has it.
NEXT_MONTH = {"2026-01-31": ("2026-02", "Jasykõi 2026", "febrero de 2026"),
              "2026-02-28": ("2026-03", "Jasyapy 2026", "marzo de 2026"),
              "2028-02-29": ("2028-03", "Jasyapy 2028", "marzo de 2028"),
              "2026-11-30": ("2026-12", "Jasypakõi 2026", "diciembre de 2026"),
              "2026-12-31": ("2027-01", "Jasyteĩ 2027", "enero de 2027")}


@pytest.mark.parametrize("day", DATES)
def test_pdf_pages_fonts_and_guarani_text(day, tmp_path):
    month, month_gn, month_es = NEXT_MONTH[day]
    dated = dated_api(tmp_path / "backend", moment(day))
    try:
        assert dated.demo["booklet"]["month"] == month
        edition_id = dated.demo["booklet"]["edition_id"]
        answer = dated.ok(dated.client.post(f"/booklets/{edition_id}/render", headers=dated.admin, json={}))
        pdf = tmp_path / "booklet.pdf"
        pdf.write_bytes(dated.client.get(f"/booklets/{edition_id}.pdf", headers=dated.admin).content)
    finally:
        dated.close()
    assert answer["status"] == "done" and answer["render_count"] == 1
    sizes = _page_sizes(pdf)
    assert len(sizes) == answer["layout"]["pages"] == 8
    assert all(abs(w - A5_PT[0]) < 0.05 and abs(h - A5_PT[1]) < 0.05 for w, h in sizes)
    fonts = _run("pdffonts", str(pdf)).splitlines()[2:]
    assert fonts and all(line.split()[-5] == "yes" for line in fonts), "every font embedded"
    assert all("DejaVu" in line for line in fonts), "no base-14 font that lacks ẽ ĩ ũ ỹ"
    text = _run("pdftotext", "-enc", "UTF-8", str(pdf), "-")
    for word in ("Ka'a ára ha ára g̃uarã", "Nde kuenta hepy'ỹ", "Roñangareko nde resãi rehe", "Ñe'ẽ",
                 "G̃uahẽ", "Destacado · Ojehechaukáva", "Peteĩ kupõme", "Ĩ, ũ, ỹ", month_gn, month_es):
        assert word in text, word
    pages = text.split("\f")
    assert all("Cupones Pika — edición demo" in page or "Cupones Pika" in page for page in pages if page.strip())
    for number, page in enumerate(p for p in pages if p.strip()):
        assert f"{number + 1}/8" in page.replace(" ", ""), "page numbers"


def test_every_qr_scans_back_and_redeems_at_a_till(api, rendered, tmp_path):
    answer, pdf = rendered
    printed_slots = [s for s in answer["layout"]["slots"] if s["content"] == "voucher"]
    zbar, zxing = _decode_all(pdf, tmp_path)
    assert len(zbar) == len(zxing) == len(printed_slots) == 10
    assert sorted(zbar) == sorted(zxing)
    keys = api.client.get("/health").json()  # the backend's key id, for the trust set below
    trust = tokens.TrustSet.from_pems(pem for (pem,) in api.rows("SELECT public_pem FROM signing_keys"))
    assert keys["kid"] in trust.kids()
    till = api.enroll("Caja booklet")
    codes = set()
    for text in set(zbar):
        verified = tokens.verify(text, trust, audience=api.retailer_id, now=time.time())
        assert verified.kind == "static"
        codes.add(verified.claims["code"])
        redeemed = api.redeem(till, text, method="printed")
        assert redeemed.status_code == 201, redeemed.text
        assert redeemed.json()["verdict"]["kind"] == "printed"
    assert codes == {s["code"] for s in printed_slots}


def _module_mm(pdf: Path, tmp: Path) -> list[float]:
    """Each QR's module in mm, measured on a 600 dpi raster by zxing-cpp (its corners and version)."""
    _run("pdftoppm", "-r", "600", "-gray", "-png", str(pdf), str(tmp / "fine"))
    out = []
    for png in sorted(tmp.glob("fine-*.png")):
        for b in zxingcpp.read_barcodes(np.asarray(Image.open(png).convert("L")), formats=zxingcpp.BarcodeFormat.QRCode):
            side = symbol(b.text)[0]  # modules a side: the same text encodes to the same version
            p = b.position
            width_px = ((p.top_right.x - p.top_left.x) ** 2 + (p.top_right.y - p.top_left.y) ** 2) ** 0.5
            out.append(width_px / (side - 1) * 25.4 / 600)  # corner points sit on the outer modules' centres
    return out


def test_a6_codes_read_by_both_decoders_at_150_dpi(api, tmp_path):
    """An A6 edition listing every active voucher: each takes a half (the smallest A6 slot its QR fits)."""
    answer = api.ok(api.client.post("/booklets", headers=api.admin, json={"month": "2030-02", "paper": "A6"}), 201)
    done = api.ok(api.client.post(f"/booklets/{answer['id']}/render", headers=api.admin, json={}))
    printed = {row[0] for row in api.rows("SELECT voucher_id FROM printed_codes")}
    listed = {s["voucher_id"] for s in done["layout"]["slots"] if s["content"] == "voucher"}
    assert listed == printed and len(listed) == 4
    assert {s["size"] for s in done["layout"]["slots"] if s["content"] == "voucher"} == {"half"}
    pdf = tmp_path / "a6.pdf"
    pdf.write_bytes(api.client.get(f"/booklets/{answer['id']}.pdf", headers=api.admin).content)
    sizes = _page_sizes(pdf)
    assert len(sizes) == 4 and all(abs(w - A6_PT[0]) < 0.05 and abs(h - A6_PT[1]) < 0.05 for w, h in sizes)
    trust = tokens.TrustSet.from_pems(pem for (pem,) in api.rows("SELECT public_pem FROM signing_keys"))
    zbar, zxing = _decode_all(pdf, tmp_path)
    assert len(zbar) == 4 and sorted(zbar) == sorted(zxing)
    read = {tokens.verify(t, trust, audience=api.retailer_id, now=time.time()).claims["code"] for t in zbar}
    assert read == {s["code"] for s in done["layout"]["slots"] if s["content"] == "voucher"}
    modules = _module_mm(pdf, tmp_path)
    assert len(modules) == 4 and all(m >= 0.44 for m in modules), modules


@pytest.mark.parametrize("paper, size", [("A6", "single"), ("A6", "quarter")])
def test_an_a6_voucher_smaller_than_a_half_is_refused(api, paper, size):
    voucher = api.demo_voucher("printed")["id"]
    refused = api.client.post("/booklets", headers=api.admin, json={
        "month": "2030-02", "paper": paper, "placements": [{"size": size, "content": "voucher", "voucher_id": voucher}]})
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "voucher_too_small"
