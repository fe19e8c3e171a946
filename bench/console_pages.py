"""Server time of every console page over a retailer holding many attempts, beside the API's own calls.

    python bench/console_pages.py [--redemptions 100000] [--days 30] [--runs 40]

The demo chain's backend (a real SQLite file in a temporary folder) filled with
`--redemptions` attempts over the `--days` days ending today (bench/report_day.py's
generator: statuses, methods, staff, online and offline), so today's pages have
a day's worth. Every GET page of the console's router is asked `--runs` times
through the real WSGI app in process, signed in as the platform operator and as
the store's manager; each id in a path is filled with one of the chain's own.
Server time is the app's call, measured around it. In the same run, for
reference: the API's /health (the floor: routing, JSON, the rate limit) and the
API's JSON day report (what the report page adds to). Goals (issue 16): p95 ≤ 50
ms for every page, ≤ 150 ms for the day report. One JSON line per page, then a
summary line.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report_day import build_world, percentile  # noqa: E402  (the bench folder's shared generator)

from server_stub.app import API, App  # noqa: E402

TOKEN = re.compile(r'name="csrf" value="([^"]+)"')


def timed(client: httpx.Client, path: str, runs: int) -> dict:
    client.get(path)  # once before: the template compiled, the caches filled, as on a serving backend
    times, status = [], None
    for _ in range(runs):
        started = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - started) * 1000)
        status = response.status_code
    return {"status": status, "median_ms": round(sorted(times)[len(times) // 2], 2),
            "p95_ms": round(percentile(times, 0.95), 2), "max_ms": round(max(times), 2)}


def sign_in(app: App, fields: dict) -> httpx.Client:
    client = httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://bench", follow_redirects=False)
    page = client.get("/console/sign-in")
    token = html.unescape(TOKEN.findall(page.text)[-1])
    answer = client.post("/console/sign-in", data={"csrf": token, **fields})
    assert answer.status_code == 303, answer.text[:300]
    return client


def fill(template: str, ids: dict[str, str]) -> str | None:
    """The template with each `{param}` one of the chain's ids: by the param's name, or for a bare `{id}` by
    the path's part before it (/vouchers/{id} a voucher's); None when the bench has none of that kind."""
    parts = template.split("/")
    out = []
    for i, part in enumerate(parts):
        names = re.findall(r"\{(\w+)\}", part)
        if not names:
            out.append(part)
            continue
        name = names[0] if names[0] != "id" else f"{parts[i - 1]}/id"
        if name not in ids:
            return None
        out.append(part.replace("{" + names[0] + "}", ids[name]))
    return "/".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redemptions", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--runs", type=int, default=40)
    args = parser.parse_args()
    today = date.today()
    first = today - timedelta(days=args.days - 1)
    with tempfile.TemporaryDirectory(prefix="console-bench-") as tmp:
        world = build_world(Path(tmp), args.redemptions, first, args.days)
        backend, info = world.backend, world.info
        app = App(backend)
        manager = next(s for s in info["staff"] if s["role"] == "manager")
        vouchers = info["vouchers"]
        staff = info["staff"][0]["id"]
        key = backend.read().execute("SELECT key FROM attempts WHERE status = 'accepted' ORDER BY at DESC "
                                     "LIMIT 1").fetchone()[0]
        ids = {"retailers/id": info["retailer_id"], "vouchers/id": vouchers[0]["id"], "staff/id": staff,
               "tills/id": world.device["id"], "void/id": key, "edition_id": info["booklet"]["edition_id"]}
        store_scope = f"store:{info['store_id']}"
        queries = {"/console/reports": f"?scope={store_scope}&date={today.isoformat()}",
                   "/console/reports/download": f"?scope={store_scope}&date={today.isoformat()}&format=csv"}
        operator = sign_in(app, {"how": "token", "token": world.admin_token})
        as_manager = sign_in(app, {"how": "staff", "staff_id": manager["id"], "pin": manager["pin"]})
        api = httpx.Client(transport=httpx.WSGITransport(app=app), base_url=f"http://bench{API}")
        admin = {"Authorization": f"Bearer {world.admin_token}"}
        reference = {
            "api_health": timed(api, "/health", args.runs),
            "api_day_report_json": None,
        }
        api.headers.update(admin)
        reference["api_day_report_json"] = timed(
            api, f"/reports/daily?date={today.isoformat()}&store={info['store_id']}", args.runs)
        rows, worst, skipped = [], 0.0, []
        for method, template in app.console.router.routes():
            if method != "GET" or "/static/" in template or template in ("/", "/console/sign-in"):
                continue
            path = fill(template, ids)
            if path is None or template.endswith((".pdf", ".png")):
                skipped.append(template)
                continue
            path += queries.get(template, "")
            for who, client in (("operator", operator), ("manager", as_manager)):
                result = {"page": path, "as": who, **timed(client, path, args.runs)}
                rows.append(result)
                if result["status"] == 200:
                    worst = max(worst, result["p95_ms"])
                sys.stdout.write(json.dumps(result) + "\n")
        summary = {"redemptions": args.redemptions, "days": args.days, "fill_s": round(world.fill_s, 1),
                   "pages": len(rows), "worst_p95_ms": worst, "reference": reference, "skipped": skipped}
        sys.stdout.write(json.dumps(summary) + "\n")
        for client in (operator, as_manager, api):
            client.close()
        backend.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
