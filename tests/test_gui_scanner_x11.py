"""USB scanners through real X11 key events: xdotool on a private Xvfb, the real window under xcb.

The suite's Qt runs offscreen in this process, and a process has one Qt
platform, so the X11 tests (tests/x11_scanner_inner.py) run in a pytest of
their own, with QT_QPA_PLATFORM=xcb and DISPLAY on the private server.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.gui
TOOLS = ("Xvfb", "xdotool", "setxkbmap")


@pytest.fixture(scope="module")
def display():
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)} (packaging/install.sh installs them)")
    number = next(n for n in range(140, 400) if not Path(f"/tmp/.X11-unix/X{n}").exists()
                  and not Path(f"/tmp/.X{n}-lock").exists())
    server = subprocess.Popen(["Xvfb", f":{number}", "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not Path(f"/tmp/.X11-unix/X{number}").exists():
        assert server.poll() is None and time.monotonic() < deadline, "Xvfb did not start"
        time.sleep(0.05)
    yield f":{number}"
    server.terminate()
    server.wait(5)


def test_scanner_bursts_through_real_x11_key_events(display):
    here = Path(__file__).parent
    env = dict(os.environ, QT_QPA_PLATFORM="xcb", DISPLAY=display)
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
                          str(here / "x11_scanner_inner.py")], cwd=here.parent, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
