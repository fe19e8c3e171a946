"""The day report as a PDF over a store holding many redemptions: build + render, at the till and from the backend.

    python bench/report_pdf.py [--redemptions 100000] [--days 30] [--runs 15]

The same generated store as bench/report_day.py (its `build_world`):
one till's store and one backend, real SQLite files in a temporary folder.
At the till: `store.report.day_report` on a fresh store connection, then
`pos_app.pdf.day_report.render` (what `python -m pos_app report --format pdf`
does); from the backend: `GET /api/v1/reports/daily?format=pdf` through the
real WSGI app in-process, with the admin token. The first run includes
registering the fonts (once per process). Prints one JSON line; the machine
is shared, timings are noisy.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from report_day import build_world, parse_args, timed

from pos_app.pdf.day_report import render
from pos_app.store import TillStore
from pos_app.store.report import day_report
from server_stub.app import API


def main() -> int:
    args, (first, day, last) = parse_args(__doc__)
    with tempfile.TemporaryDirectory(prefix="report-pdf-bench-") as tmp:
        backend, _, admin_token, _, device, path, transport, _ = build_world(
            Path(tmp), args.redemptions, first, args.days)
        sizes = {}

        def till_pdf(first_day=day, last_day=day):
            def call():
                with TillStore(path) as store:
                    pdf = render(day_report(store, first_day, last_day))
                sizes["till"] = len(pdf)
            return call

        with httpx.Client(transport=transport, base_url=f"http://t{API}") as http:
            def backend_pdf(**params):
                def call():
                    response = http.get("/reports/daily", headers={"Authorization": f"Bearer {admin_token}"},
                                        params={"date": day.isoformat(), "store": device["store_id"], "format": "pdf",
                                                **params})
                    assert response.status_code == 200 and response.content.startswith(b"%PDF"), response.text
                    sizes["backend"] = len(response.content)
                return call

            with TillStore(path) as store:
                report = day_report(store, day)
            result = {
                "redemptions_in_store": args.redemptions, "days": args.days, "attempts_that_day": report["attempts"],
                "till_day_pdf": timed(till_pdf(), args.runs),
                "render_only": timed(lambda: render(report), args.runs),
                "backend_day_pdf": timed(backend_pdf(), args.runs),
                "till_range_all_days_pdf": timed(till_pdf(first, last), 3),
                "backend_range_all_days_pdf": timed(backend_pdf(date=first.isoformat(), to=last.isoformat()), 3),
                "pdf_bytes": sizes,
            }
        backend.close()
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
