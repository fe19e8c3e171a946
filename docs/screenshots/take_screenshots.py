"""Screenshots of the till for the docs, on a real X server (Xvfb) at a tablet's 1280×800.

    xvfb-run -a -s "-screen 0 1280x800x24" .venv/bin/python docs/screenshots/take_screenshots.py

Runs the demo's embedded backend, drives the real window through its states
and grabs the whole screen (dialogs included) after each.
"""

from __future__ import annotations

import shutil
import sys
import time
from datetime import date
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QEventLoop
from PySide6.QtGui import QGuiApplication

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from pos_app.core.domain import Method  # noqa: E402
from pos_app.cli.demo import prepare_demo  # noqa: E402
from pos_app.gui.report import models  # noqa: E402
from pos_app.gui.app import make_application  # noqa: E402
from pos_app.gui.main_window import TillWindow  # noqa: E402
from pos_app.gui.report.view import REDEMPTIONS_TAB  # noqa: E402
from pos_app.scan.sample_feed import write_sample_feed  # noqa: E402


def pump(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)
        time.sleep(0.01)


def wait_for(condition, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError("the window did not get there in time")
        pump(0.05)


def shot(name: str) -> None:
    pump(0.4)
    QGuiApplication.primaryScreen().grabWindow(0).save(str(HERE / f"{name}.png"))
    print("wrote", HERE / f"{name}.png")


def redeem(window: TillWindow, text: str, method: str) -> None:
    shown = []
    window.verdict_shown.connect(shown.append)
    window.submit(text, method)
    wait_for(lambda: shown)
    window.verdict_shown.disconnect(shown.append)


def add_busy_day(demo) -> date:
    """Yesterday at the demo's till: a breakfast, lunch and evening rush, refusals, a conflict, a stack of coupons."""
    import json
    import random
    import sqlite3
    import uuid
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    zone = ZoneInfo("America/Asuncion")
    day = datetime.now(zone).date() - timedelta(days=1)
    coffee, chipa, printed = (v["id"] for v in demo.info["vouchers"])
    staff = [s["id"] for s in demo.info["staff"] if s["role"] in ("cashier", "manager")]
    rng = random.Random(14)
    rows = []

    def add(at, status, method, voucher, kind, *, reason=None, decided="online", code=None, conflict=None, who=None):
        rows.append((uuid.uuid4().hex, uuid.uuid4().hex, at, "", method, who or rng.choice(staff), "done",
                     int(status == "accepted"), reason, kind, voucher, None if code else uuid.uuid4().hex, code,
                     decided, status, json.dumps(conflict) if conflict else None, at + rng.uniform(0.15, 0.9)))

    start = datetime.combine(day, datetime.min.time(), zone).timestamp()
    for hour, n in {7: 14, 8: 26, 9: 18, 10: 9, 11: 12, 12: 24, 13: 19, 14: 8, 15: 7, 16: 10, 17: 17, 18: 21,
                    19: 12, 20: 5}.items():
        for _ in range(n):
            at = start + hour * 3600 + rng.uniform(0, 3599)
            pick = rng.random()
            decided = "offline" if 15 <= hour < 16 or rng.random() < 0.06 else "online"
            if pick < 0.5:
                add(at, "accepted", rng.choice(("camera",) * 4 + ("scanner",)), coffee, "personal", decided=decided)
            elif pick < 0.75:
                add(at, "accepted", rng.choice(("camera", "typed", "image")), chipa, "personal", decided=decided)
            elif pick < 0.92:
                add(at, "accepted", "printed", printed, "printed", code="CAFE50", decided=decided)
            else:
                reason = rng.choice(("expired", "already_redeemed", "malformed", "mistyped"))
                add(at, "refused", rng.choice(("camera", "typed")), None if reason == "malformed" else coffee,
                    None if reason == "malformed" else "personal", reason=reason)
    for i in range(13):  # a stack of booklet coupons in under a minute
        add(start + 18.5 * 3600 + 4 * i, "accepted", "printed", printed, "printed", code="CAFE50", who=staff[0])
    add(start + 15.3 * 3600, "conflict", "camera", coffee, "personal", decided="offline",
        conflict={"till": "Caja 2", "at": start + 15.1 * 3600})
    conn = sqlite3.connect(demo.till_data / "till.sqlite3")
    with conn:
        conn.executemany("INSERT INTO attempts (id, key, at, input, method, staff_id, state, accepted, reason, kind,"
                         " voucher_id, jti, code, decided, status, conflict, finished_at)"
                         " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    conn.close()
    return day


def main() -> int:
    app = make_application()
    demo = prepare_demo()
    try:
        personal = [v for v in demo.info["vouchers"] if v["kind"] == "personal"]
        claims = [demo.backend.create_claim(v["id"], f"shot-{i}") for i, v in enumerate(personal)]
        # The preview shows a phone with a code; its decodes are not wired, so each state is chosen here.
        feed = write_sample_feed([claims[1]["token"]], demo.root / "camera")
        window = TillWindow(demo.till_data / "till.sqlite3", camera=feed, camera_loop=True, sounds=False)
        window.setGeometry(0, 0, 1280, 800)
        window.show()
        wait_for(lambda: window.camera_feed is not None)
        window.camera_feed.decoded.disconnect(window.camera_text)
        window.set_language("es")
        cashier = next(s for s in demo.info["staff"] if s["role"] == "cashier")
        window.login.reset()
        window.login.staff_id.setCurrentIndex(window.login.staff_id.findData(cashier["id"]))
        window.login.pin.setText("12")
        shot("login")

        window.log_in_as({k: cashier[k] for k in ("id", "name", "role")})
        wait_for(lambda: window.status.last_sync)
        shot("ready")

        redeem(window, claims[0]["token"], Method.CAMERA)
        shot("accepted")

        window.panel.show_ready()
        redeem(window, claims[0]["short_code"], Method.TYPED)
        shot("refused-already-redeemed")

        window.panel.show_ready()
        from pos_app.gui.printed_entry import PrintedCodeDialog
        dialog = PrintedCodeDialog(window)
        dialog.code.setText("CAFE50")
        dialog.show()
        shot("printed-entry")
        dialog.close()
        redeem(window, "CAFE50", Method.PRINTED)
        shot("printed-accepted")

        # The manager's report of a busy day (yesterday, added straight to the till's store).
        day = add_busy_day(demo)
        manager = next(s for s in demo.info["staff"] if s["role"] == "manager")
        window.log_in_as({k: manager[k] for k in ("id", "name", "role")})
        view = window.open_report()
        view.show_days(day)
        wait_for(lambda: view.report is not None and view.report["from"] == day.isoformat())
        shot("report-es")
        window.set_language("gn")
        wait_for(lambda: view.language == "gn" and not view.state.text())
        view.tabs.setCurrentIndex(REDEMPTIONS_TAB)  # the day's scans, one a row
        shot("report-gn")
        # A manager voids one of the day's redemptions: the dialog, a quick reason picked.
        window.set_language("es")
        wait_for(lambda: view.language == "es" and not view.state.text())
        coffee = next(a for a in view.attempts.records if a[models.STATUS] == "accepted" and a[models.VOUCHER_ID]
                      and a[models.METHOD] == Method.CAMERA and not a[models.VOIDED])
        view.select_attempt(coffee[models.KEY])
        view.attempts_table.scrollTo(view.attempts_table.currentIndex())
        dialog = view.open_void_dialog()
        dialog.quick[0].click()
        shot("report-void")
        dialog.reject()
        view.close()
        window.log_in_as({k: cashier[k] for k in ("id", "name", "role")})

        window.set_language("gn")
        window.panel.show_ready()
        redeem(window, claims[1]["short_code"], Method.TYPED)
        shot("guarani-accepted")
        window.lock()
        shot("guarani-locked")
        window.shutdown()
    finally:
        demo.stop()
        shutil.rmtree(demo.root, ignore_errors=True)
    app.quit()
    return 0


if __name__ == "__main__":
    sys.exit(main())
