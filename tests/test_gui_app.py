"""Starting the till: the display check, the demo as a newcomer runs it, and a camera that comes and goes."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from pos_app.gui.app import display_problem

ROOT = Path(__file__).resolve().parents[1]


def run_till(*args, env_changes=None, timeout=90):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env.update(env_changes or {})
    return subprocess.run([sys.executable, "-m", "pos_app", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_display_check():
    assert display_problem({}, "linux")
    assert not display_problem({"DISPLAY": ":0"}, "linux")
    assert not display_problem({"WAYLAND_DISPLAY": "wayland-0"}, "linux")
    assert not display_problem({"QT_QPA_PLATFORM": "offscreen"}, "linux")
    assert not display_problem({}, "win32")


def test_demo_without_a_display_says_how_to_run_it(tmp_path):
    result = run_till("--demo", timeout=30)
    assert result.returncode == 2
    assert "xvfb-run" in result.stderr and "QT_QPA_PLATFORM=offscreen" in result.stderr
    assert "Traceback" not in result.stderr
    # The commands work as printed, pasted from another folder: this install's interpreter, not `python`.
    assert "  python -m" not in result.stderr
    [headless] = [line.split(":", 1)[1].strip() for line in result.stderr.splitlines() if "in text:" in line]
    argv = shlex.split(headless)
    assert argv[0] == sys.executable and argv[1:] == ["-m", "pos_app", "--demo", "--headless"]
    walked = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert walked.returncode == 0, walked.stderr
    assert "ACCEPTED" in walked.stdout
    [offscreen] = [line.split(":", 1)[1].strip() for line in result.stderr.splitlines() if "QT_QPA" in line]
    assert shlex.split(offscreen)[1:] == [sys.executable, "-m", "pos_app", "--demo"]


@pytest.mark.slow
def test_demo_runs_its_window_with_the_sample_feed_and_quits_cleanly(tmp_path):
    shot = tmp_path / "demo.png"
    result = run_till("--demo", "--quit-after", "6", "--screenshot", str(shot),
                      env_changes={"QT_QPA_PLATFORM": "offscreen"})
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    image = cv2.imread(str(shot))
    assert image is not None and image.shape[1] >= 1000


def test_headless_demo_walks_through_the_spine():
    result = run_till("--demo", "--headless")
    assert result.returncode == 0, result.stderr
    assert "ACCEPTED" in result.stdout and "already_redeemed" in result.stdout
    # A real refusal from another till, with where and when.
    [elsewhere] = [line for line in result.stdout.splitlines() if "customer 3's QR" in line]
    assert "REFUSED: already_redeemed" in elsewhere and "(redeemed at Caja 2, " in elsewhere
    assert "next release" not in result.stdout
    assert shlex.join([sys.executable, "-m", "pos_app", "--demo"]) in result.stdout.splitlines()[-1]


def test_window_on_a_till_that_is_not_enrolled_is_refused_before_any_window(tmp_path):
    result = run_till("--data", str(tmp_path / "till"), env_changes={"QT_QPA_PLATFORM": "offscreen"})
    assert result.returncode == 2
    assert "not enrolled" in result.stderr and "Traceback" not in result.stderr


def test_a_camera_unplugged_mid_shift_is_said_and_picked_up_again(qtbot, tmp_path):
    from pos_app.words import i18n
    from pos_app.gui.camera import CameraFeed, CameraView
    from pos_app.scan.frames import CameraUnavailable, CaptureSource
    from pos_app.scan.sample_feed import write_sample_feed

    pattern = write_sample_feed(["https://example.com/a"], tmp_path / "feed", frames_per_code=3, blank_frames=2)
    plugged = [True]

    def opener(spec, loop=False):
        # A real cv2 capture read as a live camera: when its pictures run out, reads fail like an unplugged one.
        if not plugged[0]:
            raise CameraUnavailable("camera 0 cannot be opened")
        return CaptureSource(cv2.VideoCapture(pattern, cv2.CAP_IMAGES), "camera 0", live=True, lost_after=3)

    i18n.set_language("es")
    view = CameraView()
    qtbot.addWidget(view)
    feed = CameraFeed("0", opener=opener)
    states = []
    feed.state_changed.connect(lambda state, detail: states.append(state))
    feed.state_changed.connect(view.set_state)
    feed.preview.connect(view.show_frame)
    plugged[0] = False
    feed.start()
    try:
        qtbot.waitUntil(lambda: "unavailable" in states, timeout=5000)
        plugged[0] = True
        qtbot.waitUntil(lambda: "running" in states, timeout=8000)
        plugged[0] = False
        qtbot.waitUntil(lambda: "lost" in states, timeout=8000)
        assert "desconectada" in view.text()  # the UI's default language, Spanish
        assert feed.frames > 0
        plugged[0] = True
        qtbot.waitUntil(lambda: states[-1] == "running" and states.count("running") == 2, timeout=8000)
    finally:
        feed.stop()
    qtbot.waitUntil(lambda: states[-1] == "stopped", timeout=2000)


def test_commands_told_to_a_person_fit_a_venv_and_a_bundle():
    from pos_app.relaunch import till_command

    assert till_command("--demo", executable="/opt/pika till/python", frozen=False) == \
        "'/opt/pika till/python' -m pos_app --demo"
    # A PyInstaller bundle's executable is the till itself: it takes the arguments directly.
    assert till_command("--demo", "--headless", executable="/opt/pika-till/pika-till", frozen=True) == \
        "/opt/pika-till/pika-till --demo --headless"


def test_the_window_uses_the_fonts_the_till_ships(tmp_path):
    """On a machine with no DejaVu (fontconfig told of no font folder at all) the window still has it."""
    conf = tmp_path / "fonts.conf"
    conf.write_text('<?xml version="1.0"?><!DOCTYPE fontconfig SYSTEM "fonts.dtd">'
                    f"<fontconfig><cachedir>{tmp_path / 'cache'}</cachedir></fontconfig>")
    probe = ("from PySide6.QtGui import QFontDatabase, QFontInfo\n"
             "from pos_app.gui.app import make_application\n"
             "app = make_application()\n"
             "print(sorted({'DejaVu Sans', 'DejaVu Sans Mono'} & set(QFontDatabase.families())),"
             " QFontInfo(app.font()).family())\n")
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "FONTCONFIG_FILE": str(conf)}
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("]")[0] + "]" == "['DejaVu Sans', 'DejaVu Sans Mono']", out.stdout
    assert out.stdout.strip().endswith("DejaVu Sans"), out.stdout
