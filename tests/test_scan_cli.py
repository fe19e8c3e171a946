"""`decode` and `redeem --image` as support staff and scripts run them:
one JSON line per picture, exit codes, a real till store behind redeem."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import cv2
import numpy as np
import pytest

from pos_app.core import tokens
from scan_fixtures import CORPUS, enrolled_store, on_frame, personal_tokens, qr_picture

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pos_app", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)


@pytest.fixture(scope="module")
def key():
    return tokens.generate_private_key()


def test_decode_prints_a_line_per_picture_and_fails_at_the_end_for_unreadable_ones(tmp_path):
    photo = CORPUS / "qrcode-1" / "1.webp"
    expected = photo.with_suffix(".txt").read_bytes().decode("utf-8")
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((100, 100), 255, np.uint8))
    fake = tmp_path / "fake.png"
    fake.write_text("hello")
    proc = run("decode", photo, fake, tmp_path / "missing.jpg", blank)
    assert proc.returncode == 1, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [line["file"] for line in lines] == [str(photo), str(fake), str(tmp_path / "missing.jpg"), str(blank)]
    assert lines[0]["texts"] == [expected] and "error" not in lines[0] and lines[0]["ms"] >= 0
    assert "not a PNG" in lines[1]["error"] and lines[1]["texts"] == []
    assert "no such file" in lines[2]["error"]
    assert lines[3] == {"file": str(blank), "texts": [], "ms": lines[3]["ms"]}
    assert "Traceback" not in proc.stderr


def test_decode_with_zbar_and_a_wrong_decoder_name(tmp_path):
    path = tmp_path / "code.jpg"
    cv2.imwrite(str(path), on_frame(qr_picture("PIKA-ZBAR")))
    proc = run("decode", "--decoder", "zbar", path)
    assert proc.returncode == 0 and json.loads(proc.stdout)["texts"] == ["PIKA-ZBAR"]
    bad = run("decode", "--decoder", "opencv", path)
    assert bad.returncode == 2 and "invalid choice" in bad.stderr


def test_redeem_image_records_an_image_redemption(tmp_path, key):
    token = personal_tokens(key, 1)[0]
    enrolled_store(tmp_path / "till" / "till.sqlite3", key).close()
    data = tmp_path / "till"
    shot = tmp_path / "screenshot.png"
    cv2.imwrite(str(shot), on_frame(qr_picture(token), size=(720, 1280)))
    first = run("redeem", "--data", data, "--offline", "--image", shot)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["accepted"] is True
    again = run("redeem", "--data", data, "--offline", "--image", shot)
    assert again.returncode == 3 and json.loads(again.stdout)["reason"] == "already_redeemed"
    with closing(sqlite3.connect(data / "till.sqlite3")) as conn:
        rows = conn.execute("SELECT method, accepted, input FROM attempts ORDER BY at").fetchall()
    assert [(m, a) for m, a, _ in rows] == [("image", 1), ("image", 0)]
    assert rows[0][2] == token


def test_redeem_image_without_one_code(tmp_path, key):
    enrolled_store(tmp_path / "till" / "till.sqlite3", key).close()
    data = tmp_path / "till"
    blank = tmp_path / "blank.jpg"
    cv2.imwrite(str(blank), np.full((400, 300, 3), 240, np.uint8))
    none = run("redeem", "--data", data, "--offline", "--image", blank)
    assert none.returncode == 3
    assert json.loads(none.stdout) == {"accepted": False, "reason": "no_code",
                                       "message": f"no QR code found in {blank}", "file": str(blank)}
    two = tmp_path / "two.png"
    frame = on_frame(qr_picture("CODE-ONE"), at=(50, 50))
    frame[400:400 + 116, 700:700 + 116] = qr_picture("CODE-TWO")[..., None]
    cv2.imwrite(str(two), frame)
    several = run("redeem", "--data", data, "--offline", "--image", two)
    assert several.returncode == 2 and "holds 2 QR codes" in several.stderr
    unreadable = run("redeem", "--data", data, "--offline", "--image", tmp_path / "nope.png")
    assert unreadable.returncode == 1 and "no such file" in unreadable.stderr
    both = run("redeem", "--data", data, "--offline", "--image", blank, "CAFE50")
    assert both.returncode == 2 and "one code" in both.stderr
    printed = run("redeem", "--data", data, "--offline", "--printed", "--image", blank)
    assert printed.returncode == 2
    with closing(sqlite3.connect(data / "till.sqlite3")) as conn:
        assert conn.execute("SELECT count(*) FROM attempts").fetchone()[0] == 0  # none of these was an attempt
