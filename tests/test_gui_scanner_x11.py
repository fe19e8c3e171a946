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
from pathlib import Path

import pytest

TOOLS = ("Xvfb", "xdotool", "setxkbmap")


@pytest.fixture(scope="module")
def display():
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)} (packaging/install.sh installs them)")
    # Xvfb picks a free display itself and writes its number on the pipe once it listens.
    read_end, write_end = os.pipe()
    # Xvfb stamps the key events the window times a burst by: like xdotool (x11_scanner_inner.xdo), it runs
    # ahead of the rest of a busy machine when it may, so a stall of its own does not split a scan.
    nice = ["nice", "-n", "-15"] if os.geteuid() == 0 else []
    server = subprocess.Popen([*nice, "Xvfb", "-displayfd", str(write_end), "-screen", "0", "1280x800x24",
                               "-nolisten", "tcp"], pass_fds=(write_end,),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_end)
    with os.fdopen(read_end) as announced:
        number = announced.readline().strip()
    assert number.isdigit(), "Xvfb did not start"
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
