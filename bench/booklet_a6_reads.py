"""A6 booklet codes at a cheap phone's view: every code of fresh A6 editions read by zbar and zxing-cpp.

    .venv/bin/python bench/booklet_a6_reads.py [--runs 20]

Each run makes a fresh backend with the demo chain (fresh signing keys, so
fresh tokens and fresh QR patterns), renders an A6 edition of the month
after next through the API (each of the demo's printed vouchers on its own
half), rasterises it with pdftoppm and decodes every page with zbar
(zbarimg, the C library pyzbar wraps) and zxing-cpp. Read at 150 dpi (the
bar) and, in the same run as a reference with less margin, at 100 dpi.
The module size is measured on a 600 dpi raster from zxing-cpp's corner points.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402
import numpy as np  # noqa: E402
import zxingcpp  # noqa: E402
from PIL import Image  # noqa: E402

from server_stub.app import API, App  # noqa: E402
from server_stub.backend import Backend  # noqa: E402
from server_stub.booklet.qr_symbol import symbol  # noqa: E402
from server_stub.datadir import DataDir  # noqa: E402
from server_stub.demo import add_demo_data  # noqa: E402


def render_a6(folder: Path, month: str) -> tuple[Path, int]:
    token = DataDir(folder / "backend").init()["admin_token"]
    backend = Backend(folder / "backend")
    try:
        add_demo_data(backend)
        with httpx.Client(transport=httpx.WSGITransport(app=App(backend)), base_url=f"http://t{API}",
                          headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
            made = client.post("/booklets", json={"month": month, "paper": "A6"})
            made.raise_for_status()
            done = client.post(f"/booklets/{made.json()['id']}/render", json={})
            done.raise_for_status()
            codes = sum(s["content"] == "voucher" for s in done.json()["layout"]["slots"])
            pdf = folder / "a6.pdf"
            pdf.write_bytes(client.get(f"/booklets/{made.json()['id']}.pdf").content)
    finally:
        backend.close()
    return pdf, codes


def decode(pdf: Path, dpi: int) -> tuple[set[str], set[str]]:
    prefix = pdf.parent / f"p{dpi}"
    subprocess.run(["pdftoppm", "-r", str(dpi), "-gray", "-png", str(pdf), str(prefix)], check=True)
    zbar, zxing = set(), set()
    for png in sorted(pdf.parent.glob(f"p{dpi}-*.png")):
        out = subprocess.run(["zbarimg", "-q", "--raw", "-Sdisable", "-Sqrcode.enable", str(png)],
                             capture_output=True, text=True, timeout=60)
        zbar |= {line for line in out.stdout.splitlines() if line}
        image = np.asarray(Image.open(png).convert("L"))
        zxing |= {b.text for b in zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)}
    return zbar, zxing


def module_mm(pdf: Path) -> list[float]:
    subprocess.run(["pdftoppm", "-r", "600", "-gray", "-png", str(pdf), str(pdf.parent / "fine")], check=True)
    out = []
    for png in sorted(pdf.parent.glob("fine-*.png")):
        for b in zxingcpp.read_barcodes(np.asarray(Image.open(png).convert("L")), formats=zxingcpp.BarcodeFormat.QRCode):
            p = b.position
            width = ((p.top_right.x - p.top_left.x) ** 2 + (p.top_right.y - p.top_left.y) ** 2) ** 0.5
            out.append(width / (symbol(b.text)[0] - 1) * 25.4 / 600)
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    today = date.today()
    month = f"{today.year + (today.month + 1) // 12}-{(today.month + 1) % 12 + 1:02d}"
    totals = {dpi: {"zbar": 0, "zxing": 0} for dpi in (150, 100)}
    codes_total, streak, modules = 0, 0, []
    for run in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="a6-") as tmp:
            pdf, codes = render_a6(Path(tmp), month)
            codes_total += codes
            line = [f"run {run + 1:2d}: {codes} codes"]
            for dpi in (150, 100):
                zbar, zxing = decode(pdf, dpi)
                totals[dpi]["zbar"] += len(zbar)
                totals[dpi]["zxing"] += len(zxing)
                line.append(f"{dpi} dpi zbar {len(zbar)} zxing {len(zxing)}")
                if dpi == 150 and len(zbar) == len(zxing) == codes:
                    streak += 1
            if run == 0:
                modules = module_mm(pdf)
            print(", ".join(line), flush=True)
    print(f"A6, month {month}: {args.runs} runs, {codes_total} codes; modules {min(modules):.3f}–{max(modules):.3f} mm")
    for dpi, found in totals.items():
        print(f"  {dpi} dpi: zbar {found['zbar']}/{codes_total}, zxing-cpp {found['zxing']}/{codes_total}")
    print(f"  runs with every code read by both at 150 dpi: {streak}/{args.runs}")
    return 0 if streak == args.runs else 1


if __name__ == "__main__":
    sys.exit(main())
