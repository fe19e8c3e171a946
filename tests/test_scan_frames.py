"""Frame sources the way the till's camera worker reads them: the sample feed
of real tokens, a folder, a video file that ends, a camera that is absent or
stops delivering; and the scan loop (repeat filter + real store) over a feed."""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from pathlib import Path

import cv2
import numpy as np
import pytest

from pos_app.core import tokens
from pos_app.scan.decoders import make_decoder
from pos_app.scan.frames import LOST_AFTER, CameraUnavailable, CaptureSource, list_cameras, open_source
from pos_app.scan.pipeline import ScanPipeline
from pos_app.scan.repeat import RepeatFilter
from pos_app.scan.sample_feed import write_sample_feed
from scan_fixtures import enrolled_store, on_frame, personal_tokens, qr_picture

FRAMES_PER_CODE, BLANK = 6, 3


@pytest.fixture(scope="module")
def key():
    return tokens.generate_private_key()


@pytest.fixture(scope="module")
def feed(tmp_path_factory, key):
    texts = personal_tokens(key, 3)
    pattern = write_sample_feed(texts, tmp_path_factory.mktemp("feed"), frames_per_code=FRAMES_PER_CODE,
                                blank_frames=BLANK)
    return texts, pattern


def read_all(source, limit=1000) -> list[np.ndarray]:
    frames = []
    while len(frames) < limit and (frame := source.read()) is not None:
        frames.append(frame)
    return frames


def test_sample_feed_shows_each_token_between_empty_frames(feed):
    texts, pattern = feed
    source = open_source(pattern)
    frames = read_all(source)
    assert source.ended and not source.lost and source.read() is None
    source.close()
    assert len(frames) == len(texts) * (FRAMES_PER_CODE + BLANK) + BLANK
    assert frames[0].shape == (720, 1280, 3)
    pipeline = ScanPipeline(make_decoder("zxing"))
    seen = [pipeline.scan(f) for f in frames]
    expected = []
    for text in texts:
        expected += [[]] * BLANK + [[text]] * FRAMES_PER_CODE
    assert seen == expected + [[]] * BLANK
    # zbar, the slower decoder, reads the feed's codes too (most frames of each).
    zbar = ScanPipeline(make_decoder("zbar"))
    for i, text in enumerate(texts):
        start = i * (FRAMES_PER_CODE + BLANK) + BLANK
        hits = sum(zbar.scan(f) == [text] for f in frames[start:start + FRAMES_PER_CODE])
        assert hits >= FRAMES_PER_CODE - 1


def test_frames_vary_like_a_hand_holds_a_phone(feed):
    _, pattern = feed
    frames = read_all(open_source(pattern))
    code_frames = frames[BLANK:BLANK + FRAMES_PER_CODE]
    # No two frames of one code are the same picture (tilt, position, blur, noise move).
    diffs = [float(np.mean(cv2.absdiff(a, b))) for a, b in zip(code_frames, code_frames[1:])]
    assert min(diffs) > 2.0, diffs


def test_a_looping_source_starts_over(feed):
    texts, pattern = feed
    total = len(texts) * (FRAMES_PER_CODE + BLANK) + BLANK
    source = open_source(pattern, loop=True)
    frames = read_all(source, limit=total + BLANK + 1)
    assert len(frames) == total + BLANK + 1 and not source.ended
    assert ScanPipeline(make_decoder("zxing")).scan(frames[total + BLANK]) == [texts[0]]
    source.close()
    assert source.read() is None


def test_a_folder_of_pictures_is_a_source(feed):
    texts, pattern = feed
    folder = open_source(Path(pattern).parent)
    frames = read_all(folder)
    assert len(frames) == len(texts) * (FRAMES_PER_CODE + BLANK) + BLANK and folder.ended
    assert folder.description.startswith("pictures in ")
    one = open_source(pattern % BLANK, loop=True)  # one screenshot, shown again and again
    assert [ScanPipeline(make_decoder("zxing")).scan(f) for f in read_all(one, limit=3)] == [[texts[0]]] * 3


def test_a_video_file_plays_and_ends_without_hanging(tmp_path):
    path = tmp_path / "counter.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 12, (1280, 720))
    assert writer.isOpened()
    for i in range(10):
        frame = on_frame(qr_picture("VIDEO-CODE", scale=6)) if 3 <= i < 7 else np.full((720, 1280, 3), 90, np.uint8)
        writer.write(frame)
    writer.release()
    source = open_source(path)
    assert source.fps == 12 and source.description == f"video {path}"
    pipeline = ScanPipeline(make_decoder("zxing"))
    started = time.perf_counter()
    seen = [pipeline.scan(f) for f in read_all(source)]
    assert seen == [[]] * 3 + [["VIDEO-CODE"]] * 4 + [[]] * 3
    assert source.ended and source.read() is None and time.perf_counter() - started < 5
    looped = open_source(path, loop=True)
    assert len(read_all(looped, limit=25)) == 25 and not looped.ended


def test_a_camera_that_stops_delivering_is_lost(tmp_path):
    """A live source whose reads fail (here a capture that has run dry, as an
    unplugged webcam's do) reports `lost` after LOST_AFTER reads, at once."""
    path = tmp_path / "short.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (320, 240))
    for _ in range(3):
        writer.write(np.full((240, 320, 3), 90, np.uint8))
    writer.release()
    source = CaptureSource(cv2.VideoCapture(str(path)), "camera 9", live=True)
    assert len(read_all(source)) == 3 and not source.lost
    started = time.perf_counter()
    for _ in range(LOST_AFTER - 2):
        assert source.read() is None
    assert not source.lost  # a few dropped frames are not a lost camera
    assert source.read() is None and source.lost and not source.ended
    assert time.perf_counter() - started < 1.0
    source.close()


@pytest.mark.parametrize("spec", [0, "0", 3, " 2 "])
def test_a_missing_camera_says_so_plainly(spec):
    started = time.perf_counter()
    with pytest.raises(CameraUnavailable, match=r"^no camera number \d on this computer$"):
        open_source(spec)
    assert time.perf_counter() - started < 1.0


def test_missing_files_and_non_videos_are_unavailable(tmp_path):
    (tmp_path / "notes.avi").write_text("not a video")
    (tmp_path / "empty").mkdir()
    cases = {str(tmp_path / "feed" / "%04d.png"): "no pictures match", str(tmp_path / "gone.mp4"): "no such file",
             str(tmp_path / "notes.avi"): "not a video", str(tmp_path / "empty"): "no pictures in the folder"}
    for spec, message in cases.items():
        with pytest.raises(CameraUnavailable, match=message):
            open_source(spec)


def test_list_cameras_is_quick_when_there_are_none():
    started = time.perf_counter()
    found = list_cameras()
    assert time.perf_counter() - started < 1.0
    if not any(Path(f"/dev/video{i}").exists() for i in range(4)):  # CI machines and this one
        assert found == []
    assert all(i in range(4) for i in found)


def test_the_scan_loop_redeems_each_code_once(feed, key, tmp_path):
    """The camera worker's loop without Qt: frames → pipeline → repeat filter →
    a real store. Each token is seen on six frames and redeemed once; the
    other sightings show the same acceptance, never `already_redeemed`."""
    texts, pattern = feed
    db = tmp_path / "till" / "till.sqlite3"
    store = enrolled_store(db, key)
    source = open_source(pattern)
    pipeline, repeats = ScanPipeline(make_decoder("zxing")), RepeatFilter(hold_s=4.0)
    shown = []
    now = time.time()
    try:
        while (frame := source.read()) is not None:
            now += 1 / source.fps
            for text in pipeline.scan(frame):
                outcome = repeats.lookup(text, now)
                if outcome is None:
                    outcome, _ = store.redeem_offline(text, method="camera", now=now)
                    repeats.remember(text, outcome, now)
                shown.append(outcome)
    finally:
        store.close()
    with closing(sqlite3.connect(db)) as conn:
        methods = conn.execute("SELECT method, accepted, count(*) FROM attempts GROUP BY 1, 2").fetchall()
    assert len(shown) == len(texts) * FRAMES_PER_CODE
    assert all(v.accepted for v in shown), {v.reason for v in shown}
    assert methods == [("camera", 1, len(texts))]
