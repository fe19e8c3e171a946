"""What a withdrawn-till check and the offline policy cost each redemption at the till (issue 15).

Every redemption now reads, from the store's file, whether the backend withdrew the till
(`standing.check`) and, for the verdict's context, how long since it last heard from the backend
(`standing.days_unheard`): two one-row reads of the settings table. Measured beside the whole offline
redemption of a printed code (`sync.redeem.redeem`: verdict, attempt, outbox row, synchronous=FULL commit)
on the same store file, the two alternated in rounds, so the machine's drift falls on both alike.

    .venv/bin/python bench/till_standing.py [--n 2000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pos_app.core.domain import Method  # noqa: E402
from pos_app.store import TillStore, standing  # noqa: E402
from pos_app.sync.redeem import redeem  # noqa: E402

CATALOG = {
    "retailer": {"id": "ret_bench", "name": "Bench"}, "store": {"id": "sto_bench", "name": "Bench"},
    "keys": [], "claims": [], "staff": [], "revoked": [], "policy": {"offline_days": 7},
    "vouchers": [{"id": "v_printed", "retailer_id": "ret_bench", "kind": "printed", "status": "published",
                  "discount": {"kind": "percent", "value": 10, "currency": "PYG"}}],
    "printed_codes": [{"code": "CAFE50", "voucher_id": "v_printed"}],
}


def per_call_us(fn, n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - started) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        store = TillStore(Path(folder) / "till.sqlite3", asset_keys_dir=None)
        store.apply_catalog(CATALOG)
        store.set("velocity_limit", 0)
        standing.note_heard(store)
        now = time.time()
        checks, redemptions = [], []
        for _ in range(args.rounds):
            checks.append(per_call_us(lambda: (standing.check(store), standing.days_unheard(store, now)), args.n))
            redemptions.append(per_call_us(lambda: redeem(store, "CAFE50", method=Method.PRINTED), args.n // 4))
        store.close()
    check, whole = statistics.median(checks), statistics.median(redemptions)
    print(json.dumps({"n": args.n, "rounds": args.rounds, "checks_us": round(check, 1),
                      "offline_redemption_us": round(whole, 1), "share": round(check / whole, 4),
                      "checks_us_by_round": [round(c, 1) for c in checks],
                      "redemption_us_by_round": [round(r, 1) for r in redemptions]}))


if __name__ == "__main__":
    main()
