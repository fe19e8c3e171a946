"""The booklet pages' tests' shared steps: an edition made, a voucher placed, a preview image checked."""

from __future__ import annotations

import io
import re
import subprocess

from server_stub.console import booklet_preview

IMAGE = re.compile(r'src="(/console/booklets/[^"]+/preview/([0-9a-f]{64})/1\.png)"')


def printed_vouchers(api) -> list[str]:
    """The published printed vouchers, as the API lists them (the demo has four)."""
    return [v["id"] for v in api.client.get("/vouchers", headers=api.admin).json()["vouchers"]
            if v["kind"] == "printed" and v["status"] == "published"]


def new_edition(console, month="2031-05", **extra) -> str:
    made = console.post("/console/booklets", {"month": month, "paper": "A5", "title": "", "pages": "", **extra})
    assert made.status_code == 303, made.text[:800]
    return made.headers["location"].split("/console/booklets/")[1].split("?")[0]


def place(console, edition_id, voucher_id, tier, **extra):
    return console.post(f"/console/booklets/{edition_id}/placements",
                        {"voucher_id": voucher_id, "tier": tier, "price": "", **extra},
                        token_from=f"/console/booklets/{edition_id}")


def pdf_pages(pdf: bytes, folder) -> int:
    """The PDF's pages as poppler counts them (rasterised, small)."""
    target = folder / "downloaded.pdf"
    target.write_bytes(pdf)
    subprocess.run(["pdftoppm", "-png", "-r", "20", str(target), str(folder / "page")], check=True,
                   capture_output=True, timeout=120)
    return len(list(folder.glob("page-*.png")))


def assert_a_page_image(png: bytes) -> None:
    """A portrait page at the preview's size, with something printed on it."""
    from PIL import Image, ImageStat

    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG"
        assert max(image.size) == booklet_preview.LONGEST_SIDE_PX
        assert image.size[1] > image.size[0]
        grey = image.convert("L")
        low, high = grey.getextrema()
        assert high - low > 100, "a blank page"
        assert ImageStat.Stat(grey).stddev[0] > 10, "next to nothing printed"
