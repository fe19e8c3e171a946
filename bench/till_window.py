"""The till's window: cold start to a usable window, and memory over an hour of scanning.

    .venv/bin/python bench/till_window.py                      # both, an hour of scanning simulated
    .venv/bin/python bench/till_window.py --minutes 10 --starts 3

Cold start: a fresh process (offscreen) from launch until the login screen
is shown with its staff list loaded and painted. Soak: the real window,
logged in, its camera fed a looping sample feed of voucher codes as fast as
the pipeline takes them (an hour of a 15 fps camera is 54,000 frames), every
decoded code redeemed on the real store; RSS sampled as it goes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

CHILD = """
import sys, time
from pos_app.gui.app import make_application
from pos_app.gui.main_window import TillWindow
from PySide6.QtCore import QCoreApplication
app = make_application()
window = TillWindow(sys.argv[1], sounds=True)
window.show()
while not (window.info and window.login.staff_id.count()):
    QCoreApplication.processEvents()
window.repaint()
print("READY", time.time(), flush=True)
window.shutdown()
"""


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def cold_starts(store_path: Path, n: int) -> list[float]:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    times = []
    for _ in range(n):
        started = time.time()
        out = subprocess.run([sys.executable, "-c", CHILD, str(store_path)], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=60)
        line = next((x for x in out.stdout.splitlines() if x.startswith("READY")), None)
        if line is None:
            raise RuntimeError(f"the window did not start: {out.stderr[-2000:]}")
        times.append(float(line.split()[1]) - started)
    return times


def preview_rate(demo, seconds: float = 5.0) -> float:
    """Preview images per second reaching the GUI thread from a 30 fps feed played in real time."""
    from PySide6.QtCore import QCoreApplication, QEventLoop

    from pos_app.gui.app import make_application
    from pos_app.gui.camera import CameraFeed
    from pos_app.scan.frames import open_source
    from pos_app.scan.sample_feed import write_sample_feed

    make_application()
    personal = next(v for v in demo.info["vouchers"] if v["kind"] == "personal")
    feed = write_sample_feed([demo.backend.create_claim(personal["id"], "preview")["token"]],
                             demo.root / "preview-feed")
    camera = CameraFeed(feed, loop=True, opener=lambda spec, loop: open_source(spec, loop=loop, fps=30))
    shown = []
    camera.preview.connect(lambda image: shown.append(time.monotonic()))
    camera.start()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)
    camera.stop()
    settled = [t for t in shown if t > shown[0] + 0.5] if shown else []
    return (len(settled) - 1) / (settled[-1] - settled[0]) if len(settled) > 1 else 0.0


def soak(demo, minutes: float, report_every_min: float) -> list[tuple[float, int, float]]:
    from PySide6.QtCore import QCoreApplication, QEventLoop

    from pos_app.gui.app import make_application
    from pos_app.gui.camera import CameraFeed
    from pos_app.gui.main_window import TillWindow
    from pos_app.scan.sample_feed import write_sample_feed

    app = make_application()
    personal = [v for v in demo.info["vouchers"] if v["kind"] == "personal"]
    tokens = [demo.backend.create_claim(personal[i % 2]["id"], f"soak-{i}")["token"] for i in range(6)]
    feed = write_sample_feed(tokens + [demo.backend.static_token("CAFE50"), "https://example.com/menu"],
                             demo.root / "soak-feed")
    window = TillWindow(demo.till_data / "till.sqlite3", sounds=False)
    window.show()
    while not window.info:
        QCoreApplication.processEvents()
    cashier = next(s for s in demo.info["staff"] if s["role"] == "cashier")
    window.log_in_as({k: cashier[k] for k in ("id", "name", "role")})
    decided = []
    window.verdict_shown.connect(decided.append)
    window.camera_feed = CameraFeed(feed, loop=True, realtime=False)
    window.camera_feed.preview.connect(window.camera_view.show_frame)
    window.camera_feed.decoded.connect(window.camera_text)
    window.camera_feed.start()
    frames_total = int(minutes * 60 * 15)
    step = int(report_every_min * 60 * 15)
    samples, next_report, started = [], 0, time.monotonic()
    while window.camera_feed.frames < frames_total:
        QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
        if window.camera_feed.frames >= next_report:
            samples.append((window.camera_feed.frames / 15 / 60, len(decided), rss_mb()))
            print(f"  simulated {samples[-1][0]:6.1f} min  verdicts {samples[-1][1]:6d}  RSS {samples[-1][2]:7.1f} MB"
                  f"  ({time.monotonic() - started:5.0f} s)", flush=True)
            next_report += step
        time.sleep(0.002)
    samples.append((window.camera_feed.frames / 15 / 60, len(decided), rss_mb()))
    window.shutdown()
    app.processEvents()
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=5, help="cold starts to time")
    parser.add_argument("--minutes", type=float, default=60.0, help="minutes of 15 fps scanning to simulate")
    parser.add_argument("--report-every", type=float, default=5.0, help="simulated minutes between RSS samples")
    args = parser.parse_args()

    from pos_app.cli.demo import prepare_demo

    demo = prepare_demo()
    try:
        print(f"machine load average: {os.getloadavg()[0]:.2f}")
        if args.starts:
            times = cold_starts(demo.till_data / "till.sqlite3", args.starts)
            print(f"cold start to a usable window (offscreen), {len(times)} runs: median "
                  f"{statistics.median(times):.2f} s, max {max(times):.2f} s (goal ≤ 1.5 s)")
        print(f"camera preview on the GUI thread: {preview_rate(demo):.1f} fps (goal ≥ 15; capped at 25)")
        if args.minutes:
            samples = soak(demo, args.minutes, args.report_every)
            half = [s for s in samples if s[0] >= samples[-1][0] / 2]
            growth = half[-1][2] - half[0][2]
            print(f"soak: {samples[-1][0]:.0f} simulated minutes, {samples[-1][1]} verdicts; RSS start "
                  f"{samples[0][2]:.0f} MB, end {samples[-1][2]:.0f} MB, max {max(s[2] for s in samples):.0f} MB "
                  f"(goal ≤ 250 MB); growth over the second half {growth:+.1f} MB")
    finally:
        demo.stop()
        shutil.rmtree(demo.root, ignore_errors=True)
    os._exit(0)  # see pos_app.gui.app._leave: no Qt teardown at interpreter exit


if __name__ == "__main__":
    main()
