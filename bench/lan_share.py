"""Sharing over the shop's LAN (issue 18): a code redeemed at one till → refused at another, the backend down.

Three tills of one store, each a real store file with its LanService (real sockets on loopback, its own
threads), no backend at all. Each round redeems a new personal code at till 1 (an offline verdict, committed
as the window's store thread commits it) and times until till 2's and till 3's files hold it as used (read by
connections of their own, as their verdict would): that is when a cashier there is told `already_redeemed`.
Two paths: push (the default: till 1's service sees its log head move within 50 ms and pushes at once) and
pull-only (the reference: peers hear only at their next pull, every 2 s). One process, so the GIL is shared
by the three services and the timer; tills on separate PCs each have a core of their own.

    .venv/bin/python bench/lan_share.py [--n 40] [--pull-interval 2]
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
sys.path.insert(0, str(ROOT / "tests"))  # lan_helpers: tills of one store set up as the backend would

from lan_helpers import make_tills, personal, set_lan_peers  # noqa: E402
from pos_app.core import tokens  # noqa: E402
from pos_app.lan.service import LanService  # noqa: E402
from pos_app.store import TillStore  # noqa: E402


def fixed_ports(paths: list[Path]) -> None:
    ports = []
    for path in paths:
        service = LanService(path)
        service.start()
        ports.append(service.wait_listening(10))
        service.stop()
    for path, port in zip(paths, ports):
        with TillStore(path, asset_keys_dir=None) as store:
            with store.transaction():
                store.write_setting("lan_port", port)
        set_lan_peers(path, [p for p in ports if p != port])


def measure(root: Path, key, n: int, *, push: bool, pull_interval_s: float) -> dict:
    paths = make_tills(root, key, 3)
    fixed_ports(paths)
    services = [LanService(path, push=push, pull_interval_s=pull_interval_s) for path in paths]
    for service in services:
        service.start()
    till1 = TillStore(paths[0], asset_keys_dir=None)
    others = [TillStore(path, asset_keys_dir=None) for path in paths[1:]]
    times: list[float] = []
    try:
        assert all(service.wait_listening(10) for service in services)
        time.sleep(pull_interval_s + 1)  # every link has said hello
        for i in range(n):
            token = personal(key, f"jti-{push}-{i}")
            started = time.perf_counter()
            verdict, _ = till1.redeem_offline(token, method="typed")
            assert verdict.accepted
            for store in others:
                while store.used(f"jti-{push}-{i}") is None:
                    if time.perf_counter() - started > 10:
                        raise SystemExit("a redemption did not reach a peer in 10 s")
                    time.sleep(0.001)
                times.append(time.perf_counter() - started)
            time.sleep(0.05 + (i % 7) * 0.03)  # redemptions at a cashier's pace, off the pull's beat
        for store in others:
            assert store.redeem_offline(personal(key, f"jti-{push}-0"), method="typed")[0].reason == \
                "already_redeemed"
    finally:
        for service in services:
            service.stop()
        for store in [till1, *others]:
            store.close()
    times.sort()
    return {"path": "push" if push else "pull-only", "samples": len(times),
            "p50_ms": round(statistics.median(times) * 1000, 1),
            "p95_ms": round(times[int(0.95 * (len(times) - 1))] * 1000, 1), "max_ms": round(times[-1] * 1000, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=40, help="redemptions per path (each heard by two tills)")
    parser.add_argument("--pull-interval", type=float, default=2.0)
    args = parser.parse_args()
    key = tokens.generate_private_key()
    with tempfile.TemporaryDirectory() as tmp:
        for push in (True, False):
            result = measure(Path(tmp) / ("push" if push else "pull"), key, args.n, push=push,
                             pull_interval_s=args.pull_interval)
            print(json.dumps({**result, "goal_p95_ms": 1000}))


if __name__ == "__main__":
    main()
