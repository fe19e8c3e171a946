"""The demo: a real backend embedded in this process, demo data, an enrolled till.

Everything is made fresh in a temporary folder (keys included), so a newcomer
sees the whole flow with no set-up and nothing secret is ever shipped.
"""

from __future__ import annotations

import json
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
    from .__main__ import client_for, open_store
    from .redemption import redeem

    demo = prepare_demo()
    say = lambda text: out.write(text + "\n")  # noqa: E731
    try:
        say(f"Backend with demo data on {demo.server.url}; till enrolled in {demo.till_data}")
        personal = next(v for v in demo.info["vouchers"] if v["kind"] == "personal")
        claim = demo.backend.create_claim(personal["id"], "demo-customer")
        say(f"A customer claimed a voucher: short code {claim['short_code']}")
        store = open_store(str(demo.till_data))
        cashier = next(s for s in demo.info["staff"] if s["role"] == "cashier")
        try:
            with client_for(store) as client:
                steps = [
                    ("Scan the customer's QR", claim["token"], Method.CAMERA, client),
                    ("Scan it again", claim["token"], Method.CAMERA, client),
                    ("Type the short code", claim["short_code"], Method.TYPED, None),
                    ("Printed booklet code", "cafe50", Method.PRINTED, client),
                    ("A typo", "K7QF-3M2X-T", Method.TYPED, None),
                ]
                for title, text, method, c in steps:
                    outcome = redeem(store, text, method=method, staff_id=cashier["id"], client=c)
                    v = outcome.verdict
                    shown = v.voucher.text("title", "es") if v.voucher else ""
                    say(f"- {title}: {'ACCEPTED' if v.accepted else 'REFUSED (' + v.reason + ')'}"
                        f" [{outcome.decided}] {shown}")
        finally:
            store.close()
        say("The till's window comes with the next release; this was the spine end to end.")
        say(json.dumps({"demo_root": str(demo.root)}))
    finally:
        demo.stop()
    return 0
