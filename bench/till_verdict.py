"""The till's verdict and its durable commit, measured on a real store file.

- verdict: `verdict.decide` for fresh personal tokens (ES256 verify + rules
  against the SQLite store), each token seen for the first time;
- ES256 verify alone (cryptography), on the same machine in the same run,
  and the verdict's own overhead (decide minus verify, per token);
- record: the part of `TillStore.redeem_offline` after the verdict — attempt,
  used jti and outbox rows and the synchronous=FULL COMMIT — timed from its
  first INSERT to the end of COMMIT by a proxy on the store's connection;
- the whole offline redemption, for printed codes (rules without ES256) and
  for personal tokens (verify + rules + record).

    .venv/bin/python bench/till_verdict.py [--n 3000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature  # noqa: E402

from pos_app.core import tokens, verdict  # noqa: E402
from pos_app.store import TillStore  # noqa: E402

RETAILER, STORE = "ret_bench", "sto_bench"


def catalog(key) -> dict:
    def voucher(vid, kind):
        return {"id": vid, "retailer_id": RETAILER, "kind": kind, "status": "published",
                "discount": {"kind": "percent", "value": 10, "currency": "PYG"},
                "texts": {"es": {"title": "Bench", "terms": ""}}, "valid_from": None, "valid_until": None,
                "total_limit": None, "store_day_limit": None, "retailer_name": "Bench"}
    return {"retailer": {"id": RETAILER, "name": "Bench"},
            "store": {"id": STORE, "name": "Bench", "timezone": "America/Asuncion"},
            "keys": [{"kid": tokens.key_id(key.public_key()), "pem": tokens.public_pem(key.public_key())}],
            "vouchers": [voucher("v_app", "personal"), voucher("v_print", "printed")],
            "printed_codes": [{"code": "CAFE50", "voucher_id": "v_print"}],
            "claims": [], "staff": [], "revoked": [], "server_time": time.time()}


class RecordTimer:
    """Forwards to the store's connection; times first INSERT → end of COMMIT."""

    def __init__(self, conn):
        self._conn = conn
        self._start = None
        self.times: list[float] = []

    def execute(self, sql, *args):
        if self._start is None and sql.lstrip().upper().startswith("INSERT"):
            self._start = time.perf_counter()
        result = self._conn.execute(sql, *args)
        if sql.strip().upper() == "COMMIT" and self._start is not None:
            self.times.append(time.perf_counter() - self._start)
            self._start = None
        return result

    def __getattr__(self, name):
        return getattr(self._conn, name)


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def summary(name, seconds) -> dict:
    us = [s * 1e6 for s in seconds]
    return {"measure": name, "n": len(us), "median_us": round(statistics.median(us), 1),
            "p95_us": round(pct(us, 0.95), 1), "p99_us": round(pct(us, 0.99), 1)}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=3000)
    args = parser.parse_args()
    key = tokens.generate_private_key()
    folder = Path(tempfile.mkdtemp(prefix="pika-bench-"))
    store = TillStore(folder / "till.sqlite3")
    store.save_enrollment({"device_id": "dev_bench", "name": "bench", "device_token": "x", "retailer_id": RETAILER,
                           "store_id": STORE, "keys": []}, "http://127.0.0.1:9")
    store.apply_catalog(catalog(key))
    now = time.time()
    fresh = [tokens.issue_personal(key, iss="pika", aud=RETAILER, sub="c", vid="v_app", jti=uuid.uuid4().hex,
                                   iat=int(now), exp=int(now) + 3600) for _ in range(2 * args.n)]
    ctx = store.context(now)
    ctx = verdict.Context(**{**{f: getattr(ctx, f) for f in ctx.__dataclass_fields__}, "velocity_limit": 0})

    # Interleaved, so both see the same machine: its speed drifts by tens of
    # percent from minute to minute here.
    results = []
    pub = key.public_key()
    algo = ec.ECDSA(hashes.SHA256())
    t_verify, t_decide = [], []
    for token in fresh[: args.n]:
        head, _, sig_b64 = token.rpartition(".")
        sig = tokens._b64decode(sig_b64)
        der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
        t = time.perf_counter()
        pub.verify(der, head.encode(), algo)
        t_verify.append(time.perf_counter() - t)
        t = time.perf_counter()
        v = verdict.decide(token, store, ctx)
        t_decide.append(time.perf_counter() - t)
        assert v.accepted, v
    results.append(summary("es256_verify_alone (cryptography, same tokens)", t_verify))
    results.append(summary("verdict_personal_token (decide: clean, verify, rules)", t_decide))
    # Our own cost, token by token: far steadier than either figure while
    # the machine's speed drifts (the signature check is ~70 % of a verdict).
    results.append(summary("verdict_overhead (decide minus verify alone, paired)",
                           [d - v for d, v in zip(t_decide, t_verify)]))

    store.set("velocity_limit", 0)
    t_printed = []
    for _ in range(args.n):
        t = time.perf_counter()
        v, _ = store.redeem_offline("CAFE50", method="printed")
        t_printed.append(time.perf_counter() - t)
        assert v.accepted, v
    results.append(summary("redeem_offline_printed (rules + durable commit)", t_printed))

    timer = RecordTimer(store._conn)
    store._conn = timer
    t_personal = []
    for token in fresh[args.n:]:
        t = time.perf_counter()
        v, _ = store.redeem_offline(token, method="camera")
        t_personal.append(time.perf_counter() - t)
        assert v.accepted or v.reason == "rate_limited", v
    results.append(summary("redeem_offline_personal (verify + rules + durable commit)", t_personal))
    results.append(summary("record: attempt + used jti + outbox, synchronous=FULL commit", timer.times))
    store.close()
    for r in results:
        print(json.dumps(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
