"""The shop page in Chromium: click → verdict shown for a typed code, and camera frame → verdict, over loopback.

    python bench/console_shop.py [--clicks 50] [--camera-runs 5]

The demo backend served by `python -m server_stub serve` (granian, as in
production) on a loopback port; Debian's Chromium under Playwright, headless.
A manager makes a web till on the console and puts it in this browser; the
demo cashier signs in at the shop page. Then, alternately:
- the shop page: the printed code typed and "Verify" clicked, timed from the
  click until the verdict is in the page (Playwright's clock), and by the
  page itself from its submit to two frames after the verdict was drawn;
- the reference, in the same run: the same redemption as a till sends it
  (POST /api/v1/redemptions with httpx over loopback), the floor the page adds to.
Camera: a browser whose fake camera plays a Y4M of a fresh claim's QR; timed
from the decoded frame to the verdict drawn (the page's clock), and from the
click on "Scan" (camera start and decoder load included). Goals (issue 16):
p95 ≤ 300 ms typed; ≤ 1 s frame → verdict. One JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

from server_stub.backend import Backend
from server_stub.datadir import DataDir
from server_stub.demo import add_demo_data

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


def figures(values: list[float]) -> dict:
    ordered = sorted(values)
    return {"n": len(values), "median_ms": round(statistics.median(values), 1),
            "p95_ms": round(ordered[max(0, int(len(ordered) * 0.95) - 1)], 1), "max_ms": round(ordered[-1], 1)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def y4m_of_qr(text: str, path: Path, width: int = 640, height: int = 480, frames: int = 30) -> None:
    """A still YUV4MPEG2 (C420) video of `text`'s QR on white, for Chromium's fake camera."""
    import qrcode
    from PIL import Image

    qr = qrcode.QRCode(border=4, box_size=1, error_correction=qrcode.constants.ERROR_CORRECT_M)
    qr.add_data(text)
    qr.make(fit=True)
    side = min(width, height) - 40
    image = qr.make_image(fill_color="black", back_color="white").convert("L").resize((side, side), Image.NEAREST)
    canvas = Image.new("L", (width, height), 255)
    canvas.paste(image, ((width - side) // 2, (height - side) // 2))
    chroma = bytes([128]) * ((width // 2) * (height // 2))
    with open(path, "wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            out.write(b"FRAME\n" + canvas.tobytes() + chroma + chroma)


def set_up_shop(page, url: str, info: dict) -> None:
    manager = next(s for s in info["staff"] if s["role"] == "manager")
    cashier = next(s for s in info["staff"] if s["role"] == "cashier")
    page.goto(f"{url}/console/sign-in")
    page.fill("#staff-sign-in [name=staff_id]", manager["id"])
    page.fill("#staff-sign-in [name=pin]", manager["pin"])
    page.click("#staff-sign-in button[type=submit]")
    page.wait_for_url(f"{url}/console/")
    page.goto(f"{url}/console/tills/web")
    page.fill("#new-web-till [name=name]", f"Web {uuid.uuid4().hex[:4]}")
    page.click("#create-here")
    page.wait_for_url(f"{url}/console/shop?ok=webtill_here")
    page.fill("#shop-sign-in [name=staff_id]", cashier["id"])
    page.fill("#shop-sign-in [name=pin]", cashier["pin"])
    page.click("#shop-sign-in button[type=submit]")
    page.wait_for_selector("#redeem-form")


def typed(page, code: str) -> tuple[float, float]:
    shown = int(page.get_attribute("#verdict", "data-shown") or 0)
    page.fill("#f-code", code)
    started = time.perf_counter()
    page.click("#redeem-button")
    page.wait_for_selector(f"#verdict[data-shown='{shown + 1}']", state="attached")
    return (time.perf_counter() - started) * 1000, page.evaluate("window.pikaShop.lastMs")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clicks", type=int, default=50)
    parser.add_argument("--camera-runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="console-shop-bench-") as tmp:
        data = Path(tmp) / "backend"
        DataDir(data).init()
        DataDir(data).set_config(velocity_limit=0)
        backend = Backend(data)
        info = add_demo_data(backend)
        printed = next(v for v in info["vouchers"] if v["kind"] == "printed")
        personal = next(v for v in info["vouchers"] if v["kind"] == "personal")
        claims = [backend.create_claim(personal["id"], f"bench-{i}")["token"] for i in range(args.camera_runs)]
        till = backend.enroll(info["enrollment_codes"][0], "Bench till")
        backend.close()
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen([sys.executable, "-m", "server_stub", "serve", "--data", str(data), "--host",
                                   "127.0.0.1", "--port", str(port)], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, env={**os.environ})
        try:
            for _ in range(200):
                try:
                    if httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            result = {}
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
                page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
                page.set_default_timeout(20_000)
                set_up_shop(page, url, info)
                wall, in_page, api = [], [], []
                auth = {"Authorization": f"Bearer {till['device_token']}"}
                with httpx.Client(base_url=f"{url}/api/v1") as http:
                    for _ in range(3):  # warm: the page's script, the server's caches
                        typed(page, printed["code"])
                    for _ in range(args.clicks):
                        click, painted = typed(page, printed["code"])
                        wall.append(click)
                        in_page.append(painted)
                        started = time.perf_counter()
                        answer = http.post("/redemptions", headers={**auth, "Idempotency-Key": uuid.uuid4().hex},
                                           json={"input": printed["code"], "method": "typed"})
                        api.append((time.perf_counter() - started) * 1000)
                        assert answer.status_code in (200, 201), answer.text
                result["typed_click_to_verdict"] = figures(wall)
                result["typed_submit_to_painted_in_page"] = figures(in_page)
                result["reference_api_redeem_over_loopback"] = figures(api)
                browser.close()
                frame, click = [], []
                for i, token in enumerate(claims):
                    video = Path(tmp) / f"claim-{i}.y4m"
                    y4m_of_qr(token, video)
                    camera = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=[
                        *ARGS, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                        f"--use-file-for-fake-video-capture={video}"])
                    context = camera.new_context(viewport={"width": 390, "height": 844})
                    context.grant_permissions(["camera"], origin=url)
                    page = context.new_page()
                    page.set_default_timeout(20_000)
                    set_up_shop(page, url, info)
                    started = time.perf_counter()
                    page.click("#camera-button")
                    page.wait_for_selector("#verdict[data-shown='1']", state="attached")
                    click.append((time.perf_counter() - started) * 1000)
                    frame.append(page.evaluate("window.pikaShop.lastFrameMs"))
                    assert page.get_attribute("#verdict", "class") == "verdict accepted"
                    detector = page.evaluate("'BarcodeDetector' in window")
                    camera.close()
                result["camera_frame_to_verdict"] = figures(frame)
                result["camera_click_to_verdict"] = figures(click)
                result["barcode_detector_present"] = detector
        finally:
            server.terminate()
            server.wait(timeout=10)
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
