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
# The browser's own locale (its date fields' order): the region's, for the console's language.
BROWSER_LOCALES = {"es": "es-PY", "gn": "es-PY", "en": "en-US", "pt": "pt-BR"}


def name_of(template: str) -> str:
    """A page's file name from its route: /console/vouchers/{voucher_id} → vouchers-voucher."""
    plain = re.sub(r"\{(\w+?)(_id)?\}", r"\1", template.removeprefix("/console"))
    slug = re.sub(r"[^a-z0-9]+", "-", plain.lower()).strip("-")
    return slug or "home"


def fill(template: str, ids: dict[str, str]) -> str | None:
    """The route with each `{param}` one of the demo's ids: by the param's name, or for a bare `{id}` by the
    path's part before it (/vouchers/{id} a voucher's); None for a kind the demo has none of."""
    parts = template.split("/")
    for i, part in enumerate(parts):
        found = re.findall(r"\{(\w+)\}", part)
        if found:
            name = found[0] if found[0] != "id" else f"{parts[i - 1]}/id"
            if name not in ids:
                return None
            parts[i] = part.replace("{" + found[0] + "}", ids[name])
    return "/".join(parts)


def shop(page, url: str, info: dict, out: Path, taken: list) -> None:
    """The shop page as a shop sees it: a web till made here by the operator, a cashier, two codes."""
    page.goto(f"{url}/console/tills/web")
    page.fill("#new-web-till #f-name", "Web Centro")
    with page.expect_navigation():
        page.click("#create-here")
    cashier = next(s for s in info["staff"] if s["role"] == "cashier")
    page.goto(f"{url}/console/shop")
    page.fill("#shop-sign-in #f-staff_id", cashier["id"])
    page.fill("#shop-sign-in #f-pin", cashier["pin"])
    with page.expect_navigation():
        page.click("#shop-sign-in button[type=submit]")
    printed = next(v for v in info["vouchers"] if v["kind"] == "printed")
    for code, name in ((printed["code"], "accepted"), ("ZZZZ-ZZZZ-Z", "refused")):
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 900})
            page.goto(f"{url}/console/shop")
            page.fill("#f-code", code)
            page.click("#redeem-button")
            page.wait_for_selector("#verdict[data-shown]")
            target = out / f"console-shop-{name}-{width}.png"
            page.screenshot(path=str(target), full_page=True)
            taken.append(target.name)  # a printed code is good again at the other width (its limit is 200 a day)


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


def demo_findings(backend, info: dict, till: dict) -> int:
    """A few findings for the findings page (as the till-log check and reconciliation raise them): a till's
    log with records missing, its outbox stuck, a printed code over its daily limit. Returns the first's id."""
    import time

    from server_stub.operations import findings

    now = time.time()
    device, store = till["device_id"], info["store_id"]
    printed = next(v for v in info["vouchers"] if v["kind"] == "printed")

    def write(db):
        first = findings.raise_finding(db, code="log_gap", subject=device, now=now - 7200,
                                       retailer_id=info["retailer_id"], store_id=store, device_id=device, detail={
                                           "seqs": [41, 42, 43], "message": "records 41 to 43 are missing"})
        findings.raise_finding(db, code="outbox_stuck", subject=device, now=now - 3600,
                               retailer_id=info["retailer_id"], store_id=store, device_id=device, detail={
                                   "device_id": device, "till": "Caja 1", "store_id": store, "outbox": 3,
                                   "oldest_at": now - 2 * 86400, "reported_at": now - 3600})
        findings.raise_finding(db, code="printed_store_day_over", subject=f"{printed['id']}/{store}/day",
                               now=now - 600, retailer_id=info["retailer_id"], store_id=store, detail={
                                   "voucher_id": printed["id"], "store_id": store, "day": "2025-06-01", "uses": 212,
                                   "limit": 200})
        return first
    return backend.ctx.storage.submit(write)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    parser.add_argument("--lang", default="es")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="console-shots-") as tmp:
        backend, app, info, admin_token, till = demo_world(Path(tmp) / "backend")
        ids = {"retailers/id": info["retailer_id"], "vouchers/id": info["vouchers"][0]["id"],
               "staff/id": info["staff"][1]["id"], "tills/id": till["device_id"],
               "edition_id": info["booklet"]["edition_id"],
               "findings/id": str(demo_findings(backend, info, till)),
               "void/id": backend.read().execute("SELECT key FROM attempts WHERE status = 'accepted' "
                                                 "ORDER BY at DESC LIMIT 1").fetchone()[0]}
        server = EmbeddedServer(app).start()
        taken = []
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
                context = browser.new_context(viewport={"width": 1280, "height": 900},
                                              locale=BROWSER_LOCALES.get(args.lang, "es-PY"))
                page = context.new_page()
                page.goto(f"{server.url}/console/sign-in")
                for width in WIDTHS:
                    page.set_viewport_size({"width": width, "height": 900})
                    page.screenshot(path=str(args.out / f"console-sign-in-{width}.png"), full_page=True)
                page.fill("#operator-sign-in [name=token]", admin_token)
                page.click("#operator-sign-in button[type=submit]")
                page.wait_for_url(f"{server.url}/console/")
                page.select_option("#language", args.lang)
                page.click("form[action='/console/language'] button")
                paths = []
                for method, template in app.console.router.routes():
                    if method != "GET" or "/static/" in template or template in ("/", "/console/sign-in"):
                        continue
                    path = fill(template, ids)
                    if path is None or template.endswith((".pdf", ".csv", ".png", ".json", "/download")) \
                            or template.startswith("/console/shop"):
                        continue
                    paths.append((template, path))
                for width in WIDTHS:
                    page.set_viewport_size({"width": width, "height": 900})
                    for template, path in paths:
                        page.goto(server.url + path)
                        target = args.out / f"console-{name_of(template)}-{width}.png"
                        page.screenshot(path=str(target), full_page=True)
                        taken.append(target.name)
                # What a form answers with: an enrollment code (text and QR), a test claim (QR and short code).
                personal = next(v for v in info["vouchers"] if v["kind"] == "personal")
                for width in WIDTHS:
                    page.set_viewport_size({"width": width, "height": 900})
                    page.goto(f"{server.url}/console/tills")
                    with page.expect_navigation():
                        page.click("#new-code button[type=submit]")
                    page.screenshot(path=str(args.out / f"console-tills-code-{width}.png"), full_page=True)
                    page.goto(f"{server.url}/console/claims")
                    page.select_option("#new-claim #f-voucher_id", personal["id"])
                    with page.expect_navigation():
                        page.click("#new-claim button[type=submit]")
                    page.screenshot(path=str(args.out / f"console-claims-issued-{width}.png"), full_page=True)
                    taken += [f"console-tills-code-{width}.png", f"console-claims-issued-{width}.png"]
                # The edition once rendered: its preview's page images (rasterised on the first view).
                app.booklets.render(info["booklet"]["edition_id"])
                for width in WIDTHS:
                    page.set_viewport_size({"width": width, "height": 900})
                    page.goto(f"{server.url}/console/booklets/{info['booklet']['edition_id']}")
                    images = page.locator("#preview img")
                    for i in range(images.count()):  # lazily loaded: each scrolled into view, as a person would
                        images.nth(i).scroll_into_view_if_needed()
                        page.wait_for_load_state("networkidle")
                    target = args.out / f"console-booklets-edition-rendered-{width}.png"
                    page.screenshot(path=str(target), full_page=True)
                    taken.append(target.name)
                shop(page, server.url, info, args.out, taken)
                browser.close()
        finally:
            server.stop()
            backend.close()
    sys.stdout.write("\n".join(taken) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
