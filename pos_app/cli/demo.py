"""The demo: a real backend embedded in this process, demo data, an enrolled till.

Everything is made fresh in a temporary folder (keys included), so a newcomer
sees the whole flow with no set-up and nothing secret is ever shipped.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from ..core.domain import Discount, Method

OTHER_TILL = "Caja 2"  # the demo store's other till, where one customer's code was already used
OTHER_TILL_MINUTES_AGO = 25


@dataclass
class DemoSetup:
    root: Path
    till_data: Path
    server: object  # server_stub.serving.EmbeddedServer
    backend: object  # server_stub.backend.Backend
    info: dict  # what demo-data returned

    def stop(self) -> None:
        self.server.stop()
        self.backend.close()


def prepare_demo(root: Path | None = None, till_name: str = "Caja 1") -> DemoSetup:
    """Backend with demo data on a loopback port, and one till enrolled to it."""
    from server_stub.app import App
    from server_stub.backend import Backend
    from server_stub.datadir import DataDir
    from server_stub.demo import add_demo_data
    from server_stub.serving import EmbeddedServer

    from .data_folder import open_store
    from ..sync.client import BackendClient
    from ..sync.round import sync_once

    root = Path(root or tempfile.mkdtemp(prefix="pika-demo-"))
    DataDir(root / "backend").init()
    backend = Backend(root / "backend")
    info = add_demo_data(backend)
    server = EmbeddedServer(App(backend)).start()
    till_data = root / "till"
    store = open_store(str(till_data), must_be_enrolled=False)
    try:
        with BackendClient(server.url, timeout=10) as client:
            answer = client.enroll(info["enrollment_codes"][0], till_name)
        store.save_enrollment(answer, server.url)
        with BackendClient(server.url, answer["device_token"], timeout=10) as client:
            sync_once(store, client)
    finally:
        store.close()
    return DemoSetup(root, till_data, server, backend, info)


def redeem_at_other_till(demo: DemoSetup, token: str) -> dict:
    """A customer's code redeemed at the store's other till a while ago (the demo's refusal): its answer.

    Made through the backend's API as that till would, with its own enrollment, so the
    refusal the demo till then shows names a real till and a real time."""
    from ..sync.client import BackendClient

    with BackendClient(demo.server.url, timeout=10) as anonymous:
        enrolled = anonymous.enroll(demo.info["enrollment_codes"][1], OTHER_TILL)
    with BackendClient(demo.server.url, enrolled["device_token"], timeout=10) as other:
        status, body = other.redeem(uuid.uuid4().hex, input=token, method=Method.CAMERA, staff_id=None,
                                    at=time.time() - OTHER_TILL_MINUTES_AGO * 60)
    if status != 201:
        raise RuntimeError(f"the demo's other till could not redeem its code: {status} {body}")
    return body


def voucher_caption(voucher: dict, language: str = "es") -> tuple[str, ...]:
    """What a customer's phone shows under a voucher's code: its discount (as the till words it) and title."""
    from ..words import i18n

    d = voucher["discount"]
    discount = i18n.format_discount(Discount(d["kind"], d["value"], d.get("currency") or "PYG"))
    texts = voucher.get("texts") or {}
    title = (texts.get(language) or texts.get("es") or next(iter(texts.values()), {})).get("title", "")
    return (i18n._("{discount} off").format(discount=discount), title)


@dataclass(frozen=True)
class FeedItem:
    text: str  # what the phone's code holds
    caption: tuple[str, ...]  # what the phone shows under it
    expect: str  # what the till answers: accepted, or the refusal's reason


def demo_feed(demo: DemoSetup) -> list[FeedItem]:
    """The window demo's camera feed: a customer's voucher, a booklet's printed code, a code already used
    at the other till (refused with when and where), a second customer, and a phone with a web link (no
    voucher). Each phone's caption is its voucher's own discount. (The first customer shown again would
    only show its acceptance again: the till takes a code seen twice for one still in view.)"""
    from ..words import i18n

    vouchers = {v["id"]: demo.backend.get_voucher(v["id"]) for v in demo.info["vouchers"]}
    personal = [v for v in demo.info["vouchers"] if v["kind"] == "personal"]
    printed = next(v for v in demo.info["vouchers"] if v["kind"] == "printed")
    first = demo.backend.create_claim(personal[0]["id"], "demo-customer-1")["token"]
    second = demo.backend.create_claim(personal[1]["id"], "demo-customer-2")["token"]
    used = demo.backend.create_claim(personal[0]["id"], "demo-customer-3")["token"]
    redeem_at_other_till(demo, used)
    static = demo.backend.static_token(printed["code"])
    coffee, chipa = voucher_caption(vouchers[personal[0]["id"]]), voucher_caption(vouchers[personal[1]["id"]])
    booklet = voucher_caption(vouchers[printed["id"]]) + (i18n._("Booklet code {code}").format(code=printed["code"]),)
    return [FeedItem(first, coffee, "accepted"), FeedItem(static, booklet, "accepted"),
            FeedItem(used, coffee, "already_redeemed"), FeedItem(second, chipa, "accepted"),
            FeedItem("https://example.com/menu", (i18n._("Our menu"),), "malformed")]


def write_demo_feed(demo: DemoSetup, folder: Path) -> tuple[str, list[FeedItem]]:
    """The demo feed's frames written into `folder` (its cv2 pattern), captions drawn in the till's font."""
    from .. import resources
    from ..scan.sample_feed import write_sample_feed

    items = demo_feed(demo)
    pattern = write_sample_feed([item.text for item in items], folder, captions=[item.caption for item in items],
                                font=resources.path("fonts", "DejaVuSans.ttf"))
    return pattern, items


def console_line(demo: DemoSetup) -> str:
    """Where the demo backend's web console is, and a manager who may sign in to it."""
    manager = next(s for s in demo.info["staff"] if s["role"] == "manager")
    return (f"The web console: {demo.server.url}/console/ (staff id {manager['id']}, PIN {manager['pin']}; "
            f"the shop page: {demo.server.url}/console/shop)")


def run_headless_demo(out: TextIO) -> int:
    """A scripted walk through the spine, told step by step."""
    from ..words import i18n
    from ..sync.client import client_for
    from .data_folder import open_store
    from ..relaunch import till_command
    from ..sync.redeem import redeem
    from ..sync.round import sync_once

    demo = prepare_demo()
    say = lambda text: out.write(text + "\n")  # noqa: E731
    try:
        say(f"Backend with demo data on {demo.server.url}; till 'Caja 1' enrolled.")
        say(console_line(demo))
        personal = [v for v in demo.info["vouchers"] if v["kind"] == "personal"]
        printed = next(v for v in demo.info["vouchers"] if v["kind"] == "printed")
        first = demo.backend.create_claim(personal[0]["id"], "demo-customer-1")
        second = demo.backend.create_claim(personal[1]["id"], "demo-customer-2")
        elsewhere = demo.backend.create_claim(personal[0]["id"], "demo-customer-3")
        redeem_at_other_till(demo, elsewhere["token"])
        say(f"Two customers claimed vouchers; short codes {first['short_code']} and {second['short_code']}. "
            f"A third customer's code was used at {OTHER_TILL} {OTHER_TILL_MINUTES_AGO} minutes ago.")
        store = open_store(str(demo.till_data))
        cashier = next(s for s in demo.info["staff"] if s["role"] == "cashier")

        def show(title, text, method, client):
            outcome = redeem(store, text, method=method, staff_id=cashier["id"], client=client)
            v = outcome.verdict
            facts = v.voucher.text("title", "es") if v.voucher else v.message
            if v.used:
                facts += f" (redeemed at {v.used.till or '?'}, {i18n.format_time(v.used.at, store.store_timezone)})"
            verdict_text = "ACCEPTED" if v.accepted else f"REFUSED: {v.reason}"
            say(f"  {title:<38} {verdict_text:<26} [{outcome.decided}] {facts}")

        try:
            with client_for(store) as client:
                say("Online:")
                show("scan customer 1's QR", first["token"], Method.CAMERA, client)
                show("scan it again", first["token"], Method.CAMERA, client)
                show(f"customer 3's QR, used at {OTHER_TILL}", elsewhere["token"], Method.CAMERA, client)
                show("printed booklet code", printed["code"].lower(), Method.PRINTED, client)
                summary = sync_once(store, client)
                say(f"Sync: outbox {summary.outbox}, {summary.feed_events} feed events pulled.")
                say("Offline (the backend is not asked):")
                show("customer 1's short code, typed", first["short_code"].lower(), Method.TYPED, None)
                show("customer 2's short code, typed", second["short_code"].replace("-", " "), Method.TYPED, None)
                show("a short code with a typo", "K7QF-3M2X-T", Method.TYPED, None)
                show("the printed code again", printed["code"], Method.PRINTED, None)
                summary = sync_once(store, client)
                say(f"Sync: {summary.recorded} offline attempts recorded at the backend, "
                    f"outbox {summary.outbox}.")
        finally:
            store.close()
        say("That was the till's work, end to end. To see it in the cashier's window: "
            f"{till_command('--demo')}")
    finally:
        demo.stop()
        shutil.rmtree(demo.root, ignore_errors=True)
    return 0


def run_window_demo(*, quit_after_s: float | None = None, screenshot: str | None = None) -> int:
    """The till on an embedded backend with demo data, fed by a sample camera feed."""
    from ..gui.app import display_problem, install_error_dialog, leave, make_application, no_display_message
    from ..gui.app import refuse_to_start, schedule_exit
    from ..gui.main_window import TillWindow
    from ..words.i18n import _
    from .data_folder import StoreError

    if display_problem():
        sys.stderr.write(no_display_message("--demo"))
        return 2

    app = make_application()
    try:
        demo = prepare_demo()  # its till's folder is always new: only an unwritable one can fail here
    except StoreError as exc:
        refuse_to_start(app, exc.problem, quit_after_s)
    install_error_dialog(demo.till_data)
    window = None
    try:
        personal = [v for v in demo.info["vouchers"] if v["kind"] == "personal"]
        printed = next(v for v in demo.info["vouchers"] if v["kind"] == "printed")
        typed = demo.backend.create_claim(personal[0]["id"], "demo-customer-typed")
        feed, _items = write_demo_feed(demo, demo.root / "camera")
        window = TillWindow(demo.till_data / "till.sqlite3", camera=feed, camera_loop=True)
        cashier = next(s for s in demo.info["staff"] if s["role"] == "cashier")
        manager = next(s for s in demo.info["staff"] if s["role"] == "manager")
        window.log_in_as({k: cashier[k] for k in ("id", "name", "role")})
        window.set_demo_note(_("Demo: the camera plays a sample feed of vouchers. Type {short} (a customer's "
                               "short code) or use the printed code {printed}. Lock with Ctrl+L; PINs: "
                               "{cashier} {cpin}, {manager} {mpin} (manager: the day's report with F6).").format(
            short=typed["short_code"], printed=printed["code"], cashier=cashier["name"], cpin=cashier["pin"],
            manager=manager["name"], mpin=manager["pin"]))
        sys.stderr.write(console_line(demo) + "\n")
        window.show()
        schedule_exit(app, window, quit_after_s, screenshot)
        code = app.exec()
    finally:
        if window is not None:
            window.shutdown()
        demo.stop()
        shutil.rmtree(demo.root, ignore_errors=True)
    leave(code)
