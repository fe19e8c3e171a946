"""The demo: a real backend embedded in this process, demo data, an enrolled till.

Everything is made fresh in a temporary folder (keys included), so a newcomer
sees the whole flow with no set-up and nothing secret is ever shipped.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from .core.domain import Method


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

    from .__main__ import open_store
    from .backend_client import BackendClient
    from .sync import sync_once

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


def run_headless_demo(out: TextIO) -> int:
    """A scripted walk through the spine, told step by step."""
    import shlex
    import shutil
    import sys

    from .__main__ import client_for, open_store
    from .redemption import redeem
    from .sync import sync_once

    demo = prepare_demo()
    say = lambda text: out.write(text + "\n")  # noqa: E731
    try:
        say(f"Backend with demo data on {demo.server.url}; till 'Caja 1' enrolled.")
        personal = [v for v in demo.info["vouchers"] if v["kind"] == "personal"]
        printed = next(v for v in demo.info["vouchers"] if v["kind"] == "printed")
        first = demo.backend.create_claim(personal[0]["id"], "demo-customer-1")
        second = demo.backend.create_claim(personal[1]["id"], "demo-customer-2")
        say(f"Two customers claimed vouchers; short codes {first['short_code']} and {second['short_code']}.")
        store = open_store(str(demo.till_data))
        cashier = next(s for s in demo.info["staff"] if s["role"] == "cashier")

        def show(title, text, method, client):
            outcome = redeem(store, text, method=method, staff_id=cashier["id"], client=client)
            v = outcome.verdict
            facts = v.voucher.text("title", "es") if v.voucher else v.message
            if v.used:
                facts += f" (redeemed at {v.used.till})"
            verdict_text = "ACCEPTED" if v.accepted else f"REFUSED: {v.reason}"
            say(f"  {title:<38} {verdict_text:<26} [{outcome.decided}] {facts}")

        try:
            with client_for(store) as client:
                say("Online:")
                show("scan customer 1's QR", first["token"], Method.CAMERA, client)
                show("scan it again", first["token"], Method.CAMERA, client)
                show("printed booklet code", printed["code"].lower(), Method.PRINTED, client)
                summary = sync_once(store, client)
                say(f"Sync: outbox {summary['outbox']}, {summary['feed_events']} feed events pulled.")
                say("Offline (the backend is not asked):")
                show("customer 1's short code, typed", first["short_code"].lower(), Method.TYPED, None)
                show("customer 2's short code, typed", second["short_code"].replace("-", " "), Method.TYPED, None)
                show("a short code with a typo", "K7QF-3M2X-T", Method.TYPED, None)
                show("the printed code again", printed["code"], Method.PRINTED, None)
                summary = sync_once(store, client)
                say(f"Sync: {summary['recorded']} offline attempts recorded at the backend, "
                    f"outbox {summary['outbox']}.")
        finally:
            store.close()
        say("That was the till's work, end to end. To see it in the cashier's window: "
            f"{shlex.join([sys.executable, '-m', 'pos_app', '--demo'])}")
    finally:
        demo.stop()
        shutil.rmtree(demo.root, ignore_errors=True)
    return 0
