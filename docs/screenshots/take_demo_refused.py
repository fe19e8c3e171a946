"""The window demo's refusal, as a newcomer sees it: the sample feed's code already used at the other till.

    xvfb-run -a -s "-screen 0 1280x800x24" .venv/bin/python docs/screenshots/take_demo_refused.py

The demo's own feed (`pos_app.cli.demo.write_demo_feed`) runs through the real camera
pipeline; the screen is grabbed while the refusal, with where and when, is shown.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from PySide6.QtGui import QGuiApplication

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from pos_app.cli.demo import OTHER_TILL, prepare_demo, write_demo_feed  # noqa: E402
from pos_app.gui.app import make_application  # noqa: E402
from pos_app.gui.main_window import TillWindow  # noqa: E402
from take_screenshots import pump, wait_for  # noqa: E402


def main() -> int:
    app = make_application()
    demo = prepare_demo()
    try:
        feed, _items = write_demo_feed(demo, demo.root / "camera")
        window = TillWindow(demo.till_data / "till.sqlite3", camera=feed, sounds=False)
        window.setGeometry(0, 0, 1280, 800)
        cashier = next(s for s in demo.info["staff"] if s["role"] == "cashier")
        window.log_in_as({k: cashier[k] for k in ("id", "name", "role")})
        refused = []
        window.verdict_shown.connect(
            lambda o: refused.append(o) if o is not None and o.verdict.used and o.verdict.used.till == OTHER_TILL
            else None)
        window.show()
        wait_for(lambda: refused, timeout=60)
        pump(0.15)  # the preview catches up with the phone still in view
        out = HERE / "demo-refused.png"
        QGuiApplication.primaryScreen().grabWindow(0).save(str(out))
        print("wrote", out)
        window.shutdown()
    finally:
        demo.stop()
        shutil.rmtree(demo.root, ignore_errors=True)
    app.quit()
    return 0


if __name__ == "__main__":
    sys.exit(main())
