"""Pictures of the day report's PDF for the docs: a demo-like day at the demo café, in Spanish, at 80 dpi.

    .venv/bin/python docs/screenshots/take_report_pdf.py

The report is the real one (`pos_app.core.report.build` over generated
attempts with the demo's vouchers, cashiers and tills), rendered by
`pos_app.pdf.day_report` and rasterised with poppler's pdftoppm into
report-pdf-page1.png (and -page2.png when there is a second page).
"""

from __future__ import annotations

import random
import subprocess
import sys
import tempfile
from datetime import date, datetime
from datetime import time as dtime
from pathlib import Path
from zoneinfo import ZoneInfo

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from pos_app.core import report
from pos_app.core.domain import Discount, Method, Voucher
from pos_app.pdf.day_report import render
from server_stub.demo import DEMO_TEXTS

DAY = date(2025, 3, 14)
TZ = ZoneInfo("America/Asuncion")
VOUCHERS = {
    "coffee": Voucher("coffee", "r", "personal", "published", Discount("amount", 12000), DEMO_TEXTS["coffee"]),
    "chipa": Voucher("chipa", "r", "personal", "published", Discount("percent", 20), DEMO_TEXTS["chipa"]),
    "terere": Voucher("terere", "r", "personal", "published", Discount("amount", 8000),
                      {"es": {"title": "Tereré de la siesta"}, "gn": {"title": "Terere ka'aru g̃uarã"}}),
    "cafe50": Voucher("cafe50", "r", "printed", "published", Discount("percent", 50), DEMO_TEXTS["printed"],
                      store_day_limit=200),
    "pan": Voucher("pan", "r", "printed", "published", Discount("amount", 5000),
                   {"es": {"title": "Pan dulce de la casa"}, "gn": {"title": "Mbujape he'ẽ"}}, store_day_limit=25),
}
STAFF = {"ana": "Ana Benítez", "bruno": "Bruno Ayala", "carla": "Carla Giménez", "diego": "Diego Ortiz"}
# Redemptions an hour at a café: breakfast, lunch, the after-work coffee.
BUSY = {7: 9, 8: 16, 9: 12, 10: 7, 11: 8, 12: 14, 13: 11, 14: 5, 15: 6, 16: 8, 17: 13, 18: 15, 19: 10, 20: 4}


def at(hour: int, minute: int, second: int = 0) -> float:
    return datetime.combine(DAY, dtime(hour, minute, second), TZ).timestamp()


def attempts() -> list[report.Row]:
    rng = random.Random(14)
    rows: list[report.Row] = []
    weights = {"coffee": 5, "chipa": 3, "terere": 2, "cafe50": 4, "pan": 2}
    for hour, n in BUSY.items():
        for _ in range(n):
            vid = rng.choices(list(weights), list(weights.values()))[0]
            voucher = VOUCHERS[vid]
            printed = voucher.kind == "printed"
            refused = rng.random() < 0.08
            till = rng.choice(("Caja 1", "Caja 1", "Caja 2"))
            rows.append(report.Row(
                key=f"k{len(rows)}", at=at(hour, rng.randrange(60), rng.randrange(60)),
                status="refused" if refused else "accepted",
                decided="offline" if till == "Caja 2" and 12 <= hour < 14 else "online",  # the lunch outage
                method=Method.PRINTED if printed else rng.choice((Method.CAMERA,) * 4 + (Method.SCANNER, Method.TYPED)),
                till=till, staff_id=rng.choice(("ana", "ana", "bruno", "carla") if till == "Caja 1" else ("diego",)),
                reason=rng.choice(("expired", "already_redeemed", "malformed", "mistyped")) if refused else None,
                kind=voucher.kind, voucher_id=vid, code={"cafe50": "CAFE50", "pan": "PAN2"}.get(vid),
                jti=None if printed else f"{rng.getrandbits(64):016x}",
                processing_s=rng.lognormvariate(-2.6, 0.5),
                voided=not refused and len(rows) == 40))
    for s in range(13):  # a stack of booklet coupons in under a minute: flagged
        rows.append(report.Row(key=f"stack{s}", at=at(18, 31, 4 * s), status="accepted", decided="online",
                               method=Method.PRINTED, till="Caja 1", staff_id="bruno", kind="printed",
                               voucher_id="cafe50", code="CAFE50", processing_s=0.05))
    for minute in (2, 4, 9):  # one used code shown again and again
        rows.append(report.Row(key=f"again{minute}", at=at(16, minute), status="refused", decided="online",
                               method=Method.CAMERA, till="Caja 2", staff_id="diego", reason="already_redeemed",
                               kind="personal", voucher_id="coffee", jti="5f1c0a9e2b7d4c3a"))
    rows.append(report.Row(key="conflict", at=at(13, 12), status="conflict", decided="offline", method=Method.CAMERA,
                           till="Caja 2", staff_id="diego", kind="personal", voucher_id="terere",
                           jti="9b2e4f7a1c3d5e6f", winner={"till": "Caja 1", "at": at(12, 58)}))
    return rows


def main() -> int:
    built = report.build(attempts(), first=DAY, last=DAY, tz_name="America/Asuncion", vouchers=VOUCHERS,
                         staff=STAFF, scope={"source": "backend", "store_id": "demo",
                                             "store_name": "Café Pika — Asunción Centro", "till": None},
                         language="es", sync_success_rate=0.992)
    for item in built["voids"]["items"]:
        item.update(void_reason="El cliente pidió anular: cobro duplicado", void_staff_id="bruno",
                    void_at=item["at"] + 240)
    pdf = render(built, language="es", generated_at=at(21, 30))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "report.pdf"
        path.write_bytes(pdf)
        subprocess.run(["pdftoppm", "-png", "-r", "80", str(path), str(Path(tmp) / "page")], check=True)
        for png in sorted(Path(tmp).glob("page-*.png")):
            number = int(png.stem.split("-")[1])
            target = HERE / f"report-pdf-page{number}.png"
            target.write_bytes(png.read_bytes())
            print("wrote", target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
