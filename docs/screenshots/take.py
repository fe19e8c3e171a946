"""Takes docs/screenshots/console-*.png: every console page at 390 px and 1280 px wide, as people see them.

    .venv/bin/python docs/screenshots/take.py [--out docs/screenshots] [--lang es]

A demo backend (server_stub's demo chain, a few redemptions made through the
API by an enrolled till) on a loopback port, Debian's Chromium under
Playwright. Pages that need an id get one of the demo chain's. Each file is
named for its page and width: console-vouchers-390.png. Look at them.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import uuid
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

from server_stub.app import API, App
from server_stub.backend import Backend
from server_stub.datadir import DataDir
from server_stub.demo import add_demo_data
from server_stub.serving import EmbeddedServer

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
WIDTHS = (390, 1280)


def name_of(template: str) -> str:
    """A page's file name from its route: /console/vouchers/{voucher_id} → vouchers-voucher."""
    plain = re.sub(r"\{(\w+?)(_id)?\}", r"\1", template.removeprefix("/console"))
    slug = re.sub(r"[^a-z0-9]+", "-", plain.lower()).strip("-")
    return slug or "home"


def demo_world(root: Path):
    admin_token = DataDir(root).init()["admin_token"]
    backend = Backend(root)
    info = add_demo_data(backend)
    app = App(backend)
    with httpx.Client(transport=httpx.WSGITransport(app=app), base_url=f"http://t{API}") as http:
        till = http.post("/devices/enroll", json={"code": info["enrollment_codes"][0], "name": "Caja 1"}).json()
        auth = {"Authorization": f"Bearer {till['device_token']}"}
        personal = [v for v in info["vouchers"] if v["kind"] == "personal"]
        printed = next(v for v in info["vouchers"] if v["kind"] == "printed")
        for i in range(6):
            claim = backend.create_claim(personal[i % len(personal)]["id"], f"shot-{i}")
            http.post("/redemptions", headers={**auth, "Idempotency-Key": uuid.uuid4().hex},
                      json={"input": claim["token"], "method": "camera"})
        for _ in range(2):
            http.post("/redemptions", headers={**auth, "Idempotency-Key": uuid.uuid4().hex},
                      json={"input": printed["code"], "method": "typed"})
        http.post("/redemptions", headers={**auth, "Idempotency-Key": uuid.uuid4().hex},
                  json={"input": "NOT-A-CODE", "method": "typed"})
    return backend, app, info, admin_token, till


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    parser.add_argument("--lang", default="es")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="console-shots-") as tmp:
        backend, app, info, admin_token, till = demo_world(Path(tmp) / "backend")
        ids = {"retailer_id": info["retailer_id"], "store_id": info["store_id"],
               "voucher_id": info["vouchers"][0]["id"], "staff_id": info["staff"][0]["id"],
               "device_id": till["device_id"]}
        server = EmbeddedServer(app).start()
        taken = []
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                page = context.new_page()
                page.goto(f"{server.url}/console/sign-in")
                page.screenshot(path=str(args.out / "console-sign-in-1280.png"), full_page=True)
                page.fill("#operator-sign-in [name=token]", admin_token)
                page.click("#operator-sign-in button[type=submit]")
                page.wait_for_url(f"{server.url}/console/")
                page.select_option("#language", args.lang)
                page.click("form[action='/console/language'] button")
                paths = []
                for method, template in app.console.router.routes():
                    if method != "GET" or "/static/" in template or template in ("/", "/console/sign-in"):
                        continue
                    names = re.findall(r"\{(\w+)\}", template)
                    if any(n not in ids for n in names) or template.endswith((".pdf", ".csv", ".png", ".json")):
                        continue
                    paths.append((template, re.sub(r"\{(\w+)\}", lambda m: ids[m.group(1)], template)))
                for width in WIDTHS:
                    page.set_viewport_size({"width": width, "height": 900})
                    for template, path in paths:
                        page.goto(server.url + path)
                        target = args.out / f"console-{name_of(template)}-{width}.png"
                        page.screenshot(path=str(target), full_page=True)
                        taken.append(target.name)
                browser.close()
        finally:
            server.stop()
            backend.close()
    sys.stdout.write("\n".join(taken) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
