"""The till's scanning pipeline, measured with its references in the same run.

- corpus: the real photos in tests/data/qr-photos through the
  pipeline with zxing-cpp and with pyzbar, and each decoder alone (no pipeline);
- a 1280×720 camera frame (the sample feed: a phone over a counter), with a
  code and without one, zxing and zbar interleaved frame by frame;
- frame in → verdict ready: decode + `TillStore.redeem_offline` of a fresh
  personal token on a real store file (offline, synchronous=FULL commit);
- typed short code → verdict: `TillStore.redeem_offline` of a claim's code
  as a cashier types it (lower case, dashes);
- the demo's sample feed: writing 6 codes as JPEG frames.

The machine's 2 cores are shared: every comparison is measured in the same
run, interleaved, so both sides see the same load.

    .venv/bin/python bench/scan_pipeline.py [--n 300]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402

from pos_app.core import codes, tokens  # noqa: E402
from pos_app.scan.decoders import make_decoder  # noqa: E402
from pos_app.scan.pipeline import ScanPipeline, scan_image_file  # noqa: E402
from pos_app.scan.sample_feed import render_frames, write_sample_feed  # noqa: E402
from pos_app.store import TillStore  # noqa: E402

CORPUS = ROOT / "tests" / "data" / "qr-photos"
RETAILER, STORE = "ret_bench", "sto_bench"


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def row(name, seconds, note=""):
    ms = [s * 1e3 for s in seconds]
    return (name, len(ms), statistics.median(ms), pct(ms, 0.95), note)


def corpus_counts() -> list[tuple[str, str]]:
    pairs = [(p, p.with_suffix(".txt").read_bytes().decode("utf-8")) for p in sorted(CORPUS.glob("*/*"))
             if p.suffix in (".png", ".jpg", ".webp") and p.with_suffix(".txt").exists()]
    out = []
    for name in ("zxing", "zbar"):
        decoder = make_decoder(name)
        piped = sum(expected in scan_image_file(p, decoder) for p, expected in pairs)
        # The decoder alone on the picture as read, gray: the README's baseline.
        alone = sum(expected in decoder.decode(cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)) for p, expected in pairs)
        out.append((f"{name}: pipeline", f"{piped}/{len(pairs)}"))
        out.append((f"{name}: decoder alone", f"{alone}/{len(pairs)}"))
    return out


def catalog(key, short_codes) -> dict:
    def voucher(vid, kind):
        return {"id": vid, "retailer_id": RETAILER, "kind": kind, "status": "published",
                "discount": {"kind": "percent", "value": 10, "currency": "PYG"},
                "texts": {"es": {"title": "Bench", "terms": ""}}, "valid_from": None, "valid_until": None,
                "total_limit": None, "store_day_limit": None, "retailer_name": "Bench"}
    now = time.time()
    return {"retailer": {"id": RETAILER, "name": "Bench"},
            "store": {"id": STORE, "name": "Bench", "timezone": "America/Asuncion"},
            "keys": [{"kid": tokens.key_id(key.public_key()), "pem": tokens.public_pem(key.public_key())}],
            "vouchers": [voucher("v_app", "personal")], "printed_codes": [],
            # Tills know claims by their code's digest (codes.claim_digest), never the code.
            "claims": [{"code_digest": codes.claim_digest(c, RETAILER), "jti": uuid.uuid4().hex,
                        "voucher_id": "v_app", "expires_at": now + 3600} for c in short_codes],
            "staff": [], "revoked": [], "server_time": now}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=300, help="frames / redemptions per measure")
    args = parser.parse_args()
    n = args.n
    key = tokens.generate_private_key()
    now = int(time.time())
    fresh = [tokens.issue_personal(key, iss="pika", aud=RETAILER, sub="c", vid="v_app", jti=uuid.uuid4().hex,
                                   iat=now - 5, exp=now + 3600) for _ in range(n)]
    print(f"personal token: {len(fresh[0])} characters")

    print("\n## Real-photo corpus (exact expected text)\n")
    for name, count in corpus_counts():
        print(f"| {name} | {count} |")

    # Camera frames of the sample feed: frames 0..n-1 each show a fresh token.
    frames = list(render_frames(fresh, frames_per_code=1, blank_frames=0))[:n]
    blanks = list(render_frames([], blank_frames=min(n, 60)))
    zx, zb = ScanPipeline(make_decoder("zxing")), ScanPipeline(make_decoder("zbar"))
    timings = {k: [] for k in ("zx_code", "zb_code", "zx_none", "zb_none")}
    misses = {"zxing": 0, "zbar": 0}
    for i, frame in enumerate(frames):  # interleaved: both decoders see the same load
        for pipe, label in ((zx, "zx"), (zb, "zb")):
            t = time.perf_counter()
            texts = pipe.scan(frame)
            timings[f"{label}_code"].append(time.perf_counter() - t)
            misses[pipe.decoder.name] += texts != [fresh[i]]
        blank = blanks[i % len(blanks)]
        for pipe, label in ((zx, "zx"), (zb, "zb")):
            t = time.perf_counter()
            assert pipe.scan(blank) == []
            timings[f"{label}_none"].append(time.perf_counter() - t)

    folder = Path(tempfile.mkdtemp(prefix="pika-scan-bench-"))
    short_codes = [codes.new_short_code() for _ in range(n)]
    store = TillStore(folder / "till.sqlite3")
    store.save_enrollment({"device_id": "dev_bench", "name": "bench", "device_token": "x", "retailer_id": RETAILER,
                           "store_id": STORE, "keys": []}, "http://127.0.0.1:9")
    store.apply_catalog(catalog(key, short_codes))
    store.set("velocity_limit", 0)  # a bench redeems faster than any till may
    t_frame, t_decode, t_redeem = [], [], []
    for i, frame in enumerate(frames):
        t = time.perf_counter()
        texts = zx.scan(frame)
        t1 = time.perf_counter()
        verdict, _ = store.redeem_offline(texts[0], method="camera")
        t2 = time.perf_counter()
        assert verdict.accepted, verdict
        t_frame.append(t2 - t)
        t_decode.append(t1 - t)
        t_redeem.append(t2 - t1)
    t_typed = []
    for code in short_codes:
        typed = codes.format_short_code(code).lower()
        t = time.perf_counter()
        verdict, _ = store.redeem_offline(typed, method="typed")
        t_typed.append(time.perf_counter() - t)
        assert verdict.accepted, verdict
    store.close()

    t_feed = []
    demo_texts = fresh[:6]
    for _ in range(3):
        t = time.perf_counter()
        write_sample_feed(demo_texts, tempfile.mkdtemp(prefix="pika-feed-"))
        t_feed.append(time.perf_counter() - t)

    rows = [
        row("1280×720 frame with a code: zxing pipeline", timings["zx_code"], f"missed {misses['zxing']}"),
        row("1280×720 frame with a code: zbar pipeline (reference)", timings["zb_code"], f"missed {misses['zbar']}"),
        row("1280×720 frame without a code: zxing pipeline", timings["zx_none"]),
        row("1280×720 frame without a code: zbar pipeline (reference)", timings["zb_none"]),
        row("frame in → verdict ready (decode + redeem_offline, personal token)", t_frame),
        row("  of which decode", t_decode),
        row("  of which redeem_offline (verify, rules, durable commit)", t_redeem),
        row("typed short code → verdict (redeem_offline)", t_typed),
        row("sample feed: write 6 codes (76 JPEG frames)", t_feed),
    ]
    print("\n## Timings (ms)\n")
    print("| measure | n | median | p95 | note |")
    print("|---|---:|---:|---:|---|")
    for name, count, med, p95, note in rows:
        print(f"| {name} | {count} | {med:.2f} | {p95:.2f} | {note} |")
    for kind in ("code", "none"):
        ratio = statistics.median(timings[f"zb_{kind}"]) / statistics.median(timings[f"zx_{kind}"])
        ratio95 = pct(timings[f"zb_{kind}"], 0.95) / pct(timings[f"zx_{kind}"], 0.95)
        print(f"\nzbar / zxing, frames {'with' if kind == 'code' else 'without'} a code: "
              f"{ratio:.1f}× at the median, {ratio95:.1f}× at p95")
    return 0


if __name__ == "__main__":
    sys.exit(main())
