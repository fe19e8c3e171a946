"""The backend's check of a till's log: what `POST /api/v1/till-log` costs per record, beside `POST /sync`.

A till's round sends its outbox (`POST /sync`) and then the log records of the same attempts
(`POST /till-log`): the second is the price of the log at the backend. On a real data folder
(SQLite, the writer's durable commit), one till, in rounds: each round syncs B offline entries
(printed codes typed, each judged again by the backend), then sends the B log records of those
same attempts with the head signed at the batch's last record. Both through the real WSGI app in
process (JSON, auth, validation, one write each), timed per request, so the machine's drift is shared.

Measured in the same run:

- POST /sync of B entries (the reference) and POST /till-log of their B records, per record;
- the check's parts alone: `verify_segment` over the batch (links, bodies), the head's Ed25519 signature,
  and the comparison of each record with its attempt (`differences`, one indexed read per 400 records).

    .venv/bin/python bench/till_log_verify.py [--rounds 20] [--batch 500] [--postgres]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from pos_app.core import till_log  # noqa: E402
from server_stub.app import App  # noqa: E402
from server_stub.backend import Backend  # noqa: E402
from server_stub.datadir import DataDir  # noqa: E402
from server_stub.operations import till_logs  # noqa: E402

API = "/api/v1"
CODE = "BENCHLOG"


def prepare(data: Path, database: str | None) -> tuple[Backend, dict, str]:
    DataDir(data).init(database)
    DataDir(data).set_config(velocity_limit=0)  # one bench till redeems far faster than any cashier
    backend = Backend(data)
    retailer = backend.create_retailer("Bench")
    store = backend.create_store(retailer["id"], "Bench store")
    voucher = backend.create_voucher({"retailer_id": retailer["id"], "kind": "printed",
                                      "texts": {"es": {"title": "Bench"}}, "discount": {"kind": "percent", "value": 5}})
    backend.change_voucher(voucher["id"], "publish")
    backend.create_printed_code(voucher["id"], CODE)
    device = backend.enroll(backend.create_enrollment_code(store["id"])["code"], "bench-till")
    return backend, {**device, "store_id": store["id"], "voucher_id": voucher["id"]}, till_log.new_private_key()


class Till:
    """The till's half: entries as its outbox sends them, records as its chain makes them."""

    def __init__(self, device: dict, private_key: str):
        self.device, self.key = device, private_key
        self.seq, self.hash = 0, till_log.GENESIS

    def batch(self, n: int, at: float) -> tuple[list[dict], list[dict]]:
        entries, records = [], []
        for i in range(n):
            key = uuid.uuid4().hex
            entries.append({"key": key, "at": at + i * 1e-3, "accepted": True, "reason": None, "kind": "printed",
                            "voucher_id": self.device["voucher_id"], "jti": None, "code": CODE, "method": "typed",
                            "staff_id": None, "decided": "offline", "input": CODE})
            body = till_log.attempt_body(key=key, at=at + i * 1e-3, status="accepted", reason=None, kind="printed",
                                         voucher_id=self.device["voucher_id"], jti=None, code=CODE, method="typed",
                                         staff_id=None, decided="offline", day="2026-01-01",
                                         store_id=self.device["store_id"], till="bench-till", input_text=CODE)
            self.seq += 1
            self.hash = till_log.link(self.hash, body)
            records.append({"seq": self.seq, "body": body, "hash": self.hash})
        return entries, records

    def log_body(self, records: list[dict]) -> dict:
        last = records[-1]
        return {"public_key": till_log.public_key_of(self.key), "after": records[0]["seq"] - 1, "records": records,
                "head": {"seq": last["seq"], "hash": last["hash"],
                         "sig": till_log.sign_head(self.key, self.device["device_id"], last["seq"], last["hash"])},
                "tampered": []}


def per_record(name: str, seconds: list[float], n: int) -> dict:
    us = sorted(s * 1e6 / n for s in seconds)
    return {"what": name, "median_us_per_record": round(statistics.median(us), 1),
            "p90_us_per_record": round(us[int(0.9 * (len(us) - 1))], 1), "requests": len(us)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--batch", type=int, default=500, help="entries a round (POST /sync takes at most 500)")
    parser.add_argument("--postgres", action="store_true", help="also over a throwaway PostgreSQL (durable)")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="pika-bench-"))
    cluster = None
    try:
        print(json.dumps(measure(base / "sqlite", None, args), indent=2), flush=True)
        if args.postgres:
            from pg_cluster import Cluster

            os.chmod(base, 0o755)  # the cluster's user must reach its folder inside
            cluster = Cluster(base / "cluster").start()
            print(json.dumps(measure(base / "postgresql", cluster.new_database(), args), indent=2), flush=True)
        return 0
    finally:
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(base, ignore_errors=True)


def measure(data: Path, database: str | None, args) -> dict:
    backend, device, key = prepare(data, database)
    till = Till(device, key)
    auth = {"Authorization": f"Bearer {device['device_token']}"}
    sync_s, log_s, segment_s, head_s, compare_s = [], [], [], [], []
    try:
        with httpx.Client(transport=httpx.WSGITransport(app=App(backend)), base_url=f"http://t{API}") as http:
            at = time.time() - 3600
            for round_ in range(args.rounds + 1):  # the first round warms up, not counted
                entries, records = till.batch(args.batch, at + round_ * args.batch * 1e-3)
                body = till.log_body(records)
                t0 = time.perf_counter()
                answer = http.post("/sync", headers=auth, json={"entries": entries})
                t1 = time.perf_counter()
                logged = http.post("/till-log", headers=auth, json=body)
                t2 = time.perf_counter()
                assert answer.status_code == 200, answer.text
                assert logged.status_code == 200 and logged.json()["log"]["status"] == "ok", logged.text
                # The check's parts alone, on the same batch.
                prev = records[0]["hash"]
                t3 = time.perf_counter()
                problems = till_log.verify_segment(records[1:], prev=prev, after=records[0]["seq"])
                t4 = time.perf_counter()
                signed = till_log.head_signed(till_log.public_key_of(key), device["device_id"], body["head"]["seq"],
                                              body["head"]["hash"], body["head"]["sig"])
                t5 = time.perf_counter()
                found = till_logs.differences(backend.ctx.storage.read(), device["device_id"], records)
                t6 = time.perf_counter()
                assert not problems and signed and not found
                if round_:
                    sync_s.append(t1 - t0)
                    log_s.append(t2 - t1)
                    segment_s.append((t4 - t3) * len(records) / max(1, len(records) - 1))
                    head_s.append(t5 - t4)
                    compare_s.append(t6 - t5)
        held = backend.ctx.storage.read().execute("SELECT log_seq FROM devices WHERE id = ?",
                                                  (device["device_id"],)).fetchone()[0]
        assert held == till.seq
    finally:
        backend.close()
    n = args.batch
    rows = [per_record("POST /sync (reference)", sync_s, n), per_record("POST /till-log", log_s, n),
            per_record("  verify_segment (links, bodies)", segment_s, n),
            per_record("  the head's signature (once a request)", head_s, n),
            per_record("  each record against its attempt", compare_s, n)]
    ratio = statistics.median(log_s) / statistics.median(sync_s)
    return {"engine": "postgresql" if database else "sqlite", "batch": n, "rounds": args.rounds,
            "records": n * args.rounds, "till_log_over_sync": round(ratio, 3), "rows": rows}


if __name__ == "__main__":
    raise SystemExit(main())
