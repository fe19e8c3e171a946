"""A new operator's whole path, in a real browser, from an empty backend to a real till redeeming.

Sign in with the token `init` printed; create a retailer, a store, a personal
voucher with Spanish and Guaraní texts and a printed one with its code, a
cashier and an enrollment code — all on the console's pages, no curl, no id
typed by hand. A real till process (`python -m pos_app`) enrolls with the
code it reads from the page's QR, and redeems the test claim the console
issued, read from that page's QR through the till's own decoder, and the
printed code typed. The console's day at a glance then shows both.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from console_fixtures import DESKTOP, sign_in_operator_in
from console_people_helpers import decode_png
from server_stub.app import App
from server_stub.backend import Backend
from server_stub.datadir import DataDir
from server_stub.serving import EmbeddedServer

pytestmark = pytest.mark.slow


def till(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pos_app", *args], capture_output=True, text=True, timeout=120)


@pytest.fixture
def empty_backend(tmp_path):
    """A backend as `init` leaves it: no retailer, no store, nothing but the operator's token."""
    token = DataDir(tmp_path / "backend").init()["admin_token"]
    backend = Backend(tmp_path / "backend")
    server = EmbeddedServer(App(backend)).start()
    yield server.url, token, backend
    server.stop()
    backend.close()


def choose(page, select: str, text: str) -> None:
    """Pick the option whose words hold `text` (the operator's lists name each store with its retailer)."""
    page.select_option(select, page.locator(f"{select} option", has_text=text).first.get_attribute("value"))


def submit(page, form: str) -> None:
    with page.expect_navigation():
        page.click(f"{form} button[type=submit]")


def test_a_new_operator_sets_up_a_chain_and_a_real_till_redeems_its_test_claim(chromium, empty_backend, tmp_path):
    url, token, backend = empty_backend
    context = chromium.new_context(viewport=DESKTOP, locale="es-PY")
    page = context.new_page()
    page.set_default_timeout(15_000)
    sign_in_operator_in(page, url, token)

    page.goto(f"{url}/console/retailers")
    page.fill("#new-retailer #f-name", "Supermercado Ñandutí")
    submit(page, "#new-retailer")
    assert "Supermercado Ñandutí" in page.content()

    page.goto(f"{url}/console/stores")
    choose(page, "#new-store #f-retailer_id", "Supermercado Ñandutí")
    page.fill("#new-store #f-name", "Sucursal Centro")
    submit(page, "#new-store")
    assert "Sucursal Centro" in page.content()

    def voucher(kind: str, title_es: str, title_gn: str, percent: str) -> str:
        page.goto(f"{url}/console/vouchers/new")
        page.select_option("#f-kind", kind)
        page.fill("#f-title_es", title_es)
        page.fill("#f-terms_es", "Uno por cliente.")
        page.fill("#f-title_gn", title_gn)
        page.fill("#f-terms_gn", "Peteĩ cliente-pe.")
        page.select_option("#f-discount_kind", "percent")
        page.fill("#f-discount_value", percent)
        submit(page, "#voucher-form")
        with page.expect_navigation():
            page.click("#publish")
        assert page.get_attribute("#voucher-status", "data-status") == "published"
        return page.url.rsplit("/", 1)[1].split("?")[0]

    personal = voucher("personal", "Café gratis", "Kafe rei", "100")
    voucher("printed", "10 % en panadería", "10 % panadería-pe", "10")
    page.fill("#new-code #f-code", "NANDU10")
    submit(page, "#new-code")
    assert "NANDU10" in page.inner_text("#printed-codes")

    page.goto(f"{url}/console/staff/new")
    page.fill("#new-staff #f-name", "Ana Benítez")
    page.select_option("#new-staff #f-role", "cashier")
    choose(page, "#new-staff #f-store_id", "Sucursal Centro")
    page.fill("#new-staff #f-pin", "2580")
    page.fill("#new-staff #f-pin_again", "2580")
    submit(page, "#new-staff")
    cashier = page.url.rsplit("/", 1)[1].split("?")[0]
    assert cashier.startswith("stf_")

    page.goto(f"{url}/console/tills")
    choose(page, "#new-code #f-store_id", "Sucursal Centro")
    submit(page, "#new-code")
    code = decode_png(page.locator("#enrollment-qr").screenshot())
    assert len(code) == 1
    folder = tmp_path / "till"
    enrolled = till("enroll", "--data", str(folder), "--server", url, "--code", code[0], "--name", "Caja 1")
    assert enrolled.returncode == 0, enrolled.stderr
    assert till("sync", "--data", str(folder)).returncode == 0

    page.goto(f"{url}/console/claims")
    page.select_option("#new-claim #f-voucher_id", personal)
    submit(page, "#new-claim")
    qr = tmp_path / "claim.png"
    qr.write_bytes(page.locator("#claim-qr").screenshot())
    short_code = page.inner_text("#claim-code").strip()
    assert short_code

    scanned = till("redeem", "--data", str(folder), "--staff", cashier, "--image", str(qr))
    assert scanned.returncode == 0, scanned.stdout + scanned.stderr
    verdict = json.loads(scanned.stdout.strip().splitlines()[-1])
    assert verdict["accepted"] is True and verdict["decided"] == "online", verdict
    again = till("redeem", "--data", str(folder), "--staff", cashier, short_code)
    assert again.returncode != 0 and "already_redeemed" in again.stdout
    printed = till("redeem", "--data", str(folder), "--staff", cashier, "--printed", "NANDU10")
    assert printed.returncode == 0, printed.stdout + printed.stderr

    page.goto(f"{url}/console/today")
    body = page.inner_text("main")
    assert "Sucursal Centro" in body
    counted = backend.read().execute("SELECT count(*) FROM attempts WHERE status = 'accepted'").fetchone()[0]
    assert counted == 2
    context.close()
