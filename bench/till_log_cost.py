"""The till's log: what its chain adds to each redemption, beside the redemption's own durable commit.

On a real store file (synchronous=FULL, as the till runs), offline redemptions of a printed code, in pairs:
one with the chain's append, the next with the append left out (the same store, the same minute), so the
machine's drift is shared. Measured in the same run:

- append: the chain's whole cost per record, timed around the store's own `_log_attempt` (the body in its
  fixed field order, the indexed read of the last (seq, hash), the sha256 link, the INSERT), inside the
  redemption's transaction;
- its parts alone, on the same store: the body, the link, the read of the last record, the INSERT;
- the append as it was before 2026-12-07, as the reference, in turn with it on the same store (its body
  by JSONEncoder.encode, which builds a C encoder per call, and the input's digest made inside);
- the floor in the same place: one `SELECT 1` where the append would be (on the redemptions without it),
  and the redemption's own UPDATE of its attempt row (`_finish`) in the same transaction, as references;
- redeem_offline with and without the append (the paired difference is the append again, seen through the
  commit's noise);
- the self-check per record (a rotating window of 20,000 records against their rows) and a head's Ed25519
  signature, the costs a sync round adds once.

    .venv/bin/python bench/till_log_cost.py [--n 3000]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pos_app.core import till_log, tokens  # noqa: E402
from pos_app.store import TillStore  # noqa: E402
from pos_app.store.chain import SELF_CHECK_WINDOW  # noqa: E402

from till_verdict import RETAILER, STORE, catalog, pct  # noqa: E402


def figures(name: str, seconds: list[float]) -> dict:
    us = [s * 1e6 for s in seconds]
    return {"measure": name, "n": len(us), "median_us": round(statistics.median(us), 2),
            "p95_us": round(pct(us, 0.95), 2), "p99_us": round(pct(us, 0.99), 2)}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=3000, help="pairs of redemptions")
    args = parser.parse_args()
    key = tokens.generate_private_key()
    store = TillStore(Path(tempfile.mkdtemp(prefix="pika-bench-")) / "till.sqlite3")
    store.save_enrollment({"device_id": "dev_bench", "device_token": "x", "retailer_id": RETAILER,
                           "store_id": STORE, "keys": []}, "http://127.0.0.1:9", name="bench",
                          log_private_key=till_log.new_private_key())
    store.apply_catalog(catalog(key))
    store.set("velocity_limit", 0)
    for _ in range(200):  # warm: caches, the file's first pages
        store.redeem_offline("CAFE50", method="printed")

    chained, finish = store._log_attempt, store._finish
    appends: list[float] = []
    floors: list[float] = []
    finishes: list[float] = []

    def timed(**fields):
        t = time.perf_counter()
        chained(**fields)
        appends.append(time.perf_counter() - t)

    def floor(**fields):
        # The machine's floor in the same place: the cheapest statement there is, where the append would be.
        t = time.perf_counter()
        store.conn.execute("SELECT 1").fetchone()
        floors.append(time.perf_counter() - t)

    def timed_finish(*args, **fields):
        # A reference in the same transaction: the redemption's own write of its attempt's verdict.
        t = time.perf_counter()
        finish(*args, **fields)
        finishes.append(time.perf_counter() - t)

    previous: list[float] = []

    def previous_append(*, key, at, accepted, attempt, method, staff_id, decided, day, input_text, input_sha):
        # The reference: the append as it was before 2026-12-07 (JSONEncoder.encode, which builds its C
        # encoder on every call, and the input's digest made inside the transaction), in turn on the same store.
        t = time.perf_counter()
        digest = None if input_text is None else \
            hashlib.sha256(input_text.encode("utf-8", "backslashreplace")).hexdigest()[:32]
        body = till_log._encode(["attempt", key, at, "accepted" if accepted else "refused", attempt["reason"],
                                 attempt["kind"], attempt["voucher_id"], attempt["jti"], attempt["code"], method,
                                 staff_id, decided, day, store.store_id, store.device_name, digest])
        store._chain_append(till_log.ATTEMPT, key, body)
        previous.append(time.perf_counter() - t)

    store._finish = timed_finish
    with_chain, without = [], []
    for i in range(3 * args.n):
        store._log_attempt = (timed, floor, previous_append)[i % 3]
        t = time.perf_counter()
        verdict, _ = store.redeem_offline("CAFE50", method="printed")
        if i % 3 != 2:
            (with_chain if i % 3 == 0 else without).append(time.perf_counter() - t)
        assert verdict.accepted, verdict
    store._log_attempt, store._finish = chained, finish
    paired = [a - b for a, b in zip(with_chain, without)]

    # The parts alone, on the same store (the writes in transactions of their own, rolled back).
    fields = dict(key="k" * 32, at=time.time(), status="accepted", reason=None, kind="printed",
                  voucher_id="v_print", jti=None, code="CAFE50", method="printed", staff_id=None,
                  decided="offline", day="2026-01-01", store_id=STORE, till="bench", input_text="CAFE50")
    t_body, t_link, t_last, t_insert = [], [], [], []
    for _ in range(args.n):
        t = time.perf_counter()
        body = till_log.attempt_body(**fields)
        t_body.append(time.perf_counter() - t)
        t = time.perf_counter()
        till_log.link("0" * 64, body)
        t_link.append(time.perf_counter() - t)
        store.conn.execute("BEGIN IMMEDIATE")
        t = time.perf_counter()
        seq, prev = store.conn.execute("SELECT seq, hash FROM log_chain ORDER BY seq DESC LIMIT 1").fetchone()
        t_last.append(time.perf_counter() - t)
        t = time.perf_counter()
        store.conn.execute("INSERT INTO log_chain (seq, kind, key, body, hash) VALUES (?, ?, ?, ?, ?)",
                           (seq + 1, "attempt", fields["key"], body, prev))
        t_insert.append(time.perf_counter() - t)
        store.conn.execute("ROLLBACK")

    records = store.log_head()[0]
    t = time.perf_counter()
    found = store.log_self_check(after=max(0, records - SELF_CHECK_WINDOW))
    check_s = time.perf_counter() - t
    assert found == [], found
    checked = min(records, SELF_CHECK_WINDOW)
    signs = []
    for _ in range(200):
        t = time.perf_counter()
        store.signed_head()
        signs.append(time.perf_counter() - t)
    store.close()

    results = [
        figures("append (body + last + link + insert, in the redemption's transaction)", appends),
        figures("reference: the append as before (encoder built per call, digest inside)", previous),
        figures("floor: one SELECT 1 in the append's place, same transaction", floors),
        figures("reference: the attempt's own UPDATE (_finish), same transaction", finishes),
        figures("  body alone (attempt_body)", t_body),
        figures("  link alone (sha256)", t_link),
        figures("  last (seq, hash) alone", t_last),
        figures("  insert alone", t_insert),
        figures("redeem_offline with the append (durable commit)", with_chain),
        figures("redeem_offline without the append (the next one, a SELECT 1 in its place)", without),
        figures("paired difference (with minus without)", paired),
        {"measure": f"self-check per record ({checked} records vs their rows)",
         "median_us": round(check_s / max(1, checked) * 1e6, 2), "total_ms": round(check_s * 1000, 1)},
        figures("signed head (Ed25519 sign)", signs),
    ]
    for line in results:
        print(json.dumps(line, ensure_ascii=False))
    goal = statistics.median(appends) * 1e6
    print(json.dumps({"goal": "append <= 10 us per record", "median_us": round(goal, 2), "met": goal <= 10,
                      "previous_median_us": round(statistics.median(previous) * 1e6, 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
