"""The manager's day report over a store holding many redemptions: at the till and from the backend.

    python bench/report_day.py [--redemptions 100000] [--days 30] [--runs 15]

One till's store and one backend, both real SQLite files in a temporary
folder, filled with the same generated attempts (a mix of statuses, methods,
staff, online and offline; attempt rows as large as real ones). The till
report is `pos_app.store.report.day_report` on a fresh store connection; the
backend's is `GET /api/v1/reports/daily` through the real WSGI app
(in-process), answered as JSON. Prints one JSON line. The machine is shared:
timings are noisy.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import NamedTuple

import httpx

from pos_app.sync.client import BackendClient
from pos_app.core.report import window
from pos_app.store import TillStore
from pos_app.sync.round import sync_once
from pos_app.store.report import day_report
from server_stub.app import API, App
from server_stub.backend import Backend
from server_stub.datadir import DataDir
from server_stub.demo import add_demo_data

TZ = "America/Asuncion"
METHODS = ("camera",) * 5 + ("scanner",) * 3 + ("typed", "printed", "image")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


def generate(n: int, first: date, days: int, vouchers: list[dict], staff: list[str], rng: random.Random):
    """(till row, backend row) pairs: the same attempts as each side stores them."""
    since, until = window(first, first + timedelta(days=days - 1), TZ)
    verdict = json.dumps({"accepted": True, "reason": None, "kind": "personal", "source": "token",
                          "voucher": {"id": "v" * 16, "texts": {"es": {"title": "x" * 60, "terms": "y" * 200}}},
                          "jti": "j" * 32, "code": None, "message": "m" * 60, "used": None})
    for i in range(n):
        at = since + (until - since) * (i + rng.random()) / n
        voucher = rng.choice(vouchers)
        roll = rng.random()
        status = "accepted" if roll < 0.9 else "refused" if roll < 0.98 else "conflict"
        reason = rng.choice(("expired", "already_redeemed", "malformed")) if status == "refused" else None
        jti = uuid.uuid4().hex if voucher["kind"] == "personal" else None
        code = "CAFE50" if voucher["kind"] == "printed" else None
        decided = "offline" if rng.random() < 0.2 else "online"
        key = uuid.uuid4().hex
        method = rng.choice(METHODS)
        who = rng.choice(staff)
        conflict = json.dumps({"jti": jti, "at": at - 60, "till": "Caja 2", "store_id": "s"}) \
            if status == "conflict" else None
        till = (uuid.uuid4().hex, key, at, "x" * 300, method, who, "done", int(status != "refused"), reason,
                voucher["kind"], "token", voucher["id"], jti, code, decided, status, conflict, verdict, at + 0.05,
                at + 1)
        backend = (key, at, at + 1, method, who, decided, status, reason, voucher["kind"], voucher["id"], jti, code,
                   verdict if decided == "online" else None)
        yield till, backend


def fill(store: TillStore, backend: Backend, device: dict, rows) -> None:
    conn = store.db.conn
    with conn:
        conn.executemany(
            "INSERT INTO attempts (id, key, at, input, method, staff_id, state, accepted, reason, kind, source,"
            " voucher_id, jti, code, decided, status, conflict, verdict, finished_at, synced_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [t for t, _ in rows])

    def write(db):
        db.conn.executemany(
            "INSERT INTO attempts (key, retailer_id, store_id, device_id, at, received_at, method, staff_id, decided,"
            " status, reason, kind, voucher_id, jti, code, answer) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
            " ?, ?)",
            [(b[0], device["retailer_id"], device["store_id"], device["id"], *b[1:]) for _, b in rows])
    backend.writer.submit(write)


def timed(fn, runs: int) -> dict:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return {"median_ms": round(statistics.median(times), 1), "p95_ms": round(percentile(times, 0.95), 1),
            "first_ms": round(times[0], 1)}


class World(NamedTuple):
    """A backend and one enrolled till's store, both holding the same generated redemptions."""

    backend: Backend
    info: dict
    admin_token: str
    answer: dict  # the till's enrollment
    device: dict
    path: Path  # the till's store file
    transport: httpx.WSGITransport
    fill_s: float


def build_world(root: Path, redemptions: int, first: date, days: int) -> World:
    """The demo backend and one till in `root`, filled with `redemptions` over `days` from `first`."""
    rng = random.Random(6)
    admin_token = DataDir(root / "backend").init()["admin_token"]
    backend = Backend(root / "backend")
    info = add_demo_data(backend)
    transport = httpx.WSGITransport(app=App(backend))
    with BackendClient("http://t", transport=transport) as anonymous:
        answer = anonymous.enroll(info["enrollment_codes"][0], "Caja 1")
    path = root / "till.sqlite3"
    with TillStore(path) as store, BackendClient("http://t", answer["device_token"], transport=transport) as client:
        store.save_enrollment(answer, "http://t")
        sync_once(store, client)
        device = backend.require_device(answer["device_token"])
        staff = [s["id"] for s in info["staff"]] + [None]
        started = time.perf_counter()
        fill(store, backend, device, list(generate(redemptions, first, days, info["vouchers"], staff, rng)))
        fill_s = time.perf_counter() - started
    return World(backend, info, admin_token, answer, device, path, transport, fill_s)


class Days(NamedTuple):
    first: date  # the generated store's first day
    day: date  # the day reported: the middle one
    last: date


def parse_args(doc: str) -> tuple[argparse.Namespace, Days]:
    """The report benches' shared options, and the days they cover."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--redemptions", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    first = date(2025, 3, 1)
    return args, Days(first, first + timedelta(days=args.days // 2), first + timedelta(days=args.days - 1))


def main() -> int:
    args, (first, day, last) = parse_args(__doc__)
    with tempfile.TemporaryDirectory(prefix="report-bench-") as tmp:
        backend, info, admin_token, answer, device, path, transport, fill_s = build_world(
            Path(tmp), args.redemptions, first, args.days)
        manager = next(s for s in info["staff"] if s["role"] == "manager")
        headers = {"Authorization": f"Bearer {answer['device_token']}", "X-Pika-Staff": manager["id"],
                   "X-Pika-Pin": manager["pin"]}
        with TillStore(path) as store, httpx.Client(transport=transport, base_url=f"http://t{API}") as http:
            count = day_report(store, day)["attempts"]

            def from_backend(auth=headers, **params):
                def call():
                    response = http.get("/reports/daily", headers=auth,
                                        params={"date": day.isoformat(), "store": device["store_id"], **params})
                    assert response.status_code == 200, response.text
                    response.json() if params.get("format") != "csv" else response.text
                return call
            result = {
                "redemptions_in_store": args.redemptions, "days": args.days, "attempts_that_day": count,
                "fill_s": round(fill_s, 1),
                "till_day": timed(lambda: day_report(store, day), args.runs),
                # The admin token costs a hash lookup; a manager's PIN a PBKDF2 check on every call.
                "backend_day": timed(from_backend(auth={"Authorization": f"Bearer {admin_token}"}), args.runs),
                "backend_day_csv": timed(from_backend(auth={"Authorization": f"Bearer {admin_token}"}, format="csv"),
                                         args.runs),
                "backend_day_as_manager": timed(from_backend(), args.runs),
                "till_range_all_days": timed(lambda: day_report(store, first, last), 3),
                "backend_range_all_days": timed(from_backend(to=last.isoformat(), date=first.isoformat()), 3),
            }
        backend.close()
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
