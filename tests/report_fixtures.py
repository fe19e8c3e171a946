"""A backend and enrolled tills sharing one settable clock, for reports over known days.

Reports are about when things happened, so the backend (which issues the
tokens and judges online) and every till read the same fake clock; the
backend app runs in-process (httpx WSGITransport) over real SQLite files.
"""

from __future__ import annotations

from datetime import date, datetime, time as dtime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx

from pos_app.cli.commands import STORE_NAME
from pos_app.sync.client import BackendClient
from pos_app.sync.redeem import redeem
from pos_app.store import TillStore
from pos_app.sync.round import sync_once
from server_stub.app import API, App
from server_stub.backend import Backend
from server_stub.datadir import DataDir
from server_stub.demo import add_demo_data

ASUNCION = ZoneInfo("America/Asuncion")


def local(day: date, hh: int, mm: int = 0, ss: int = 0) -> float:
    """The epoch time of a wall-clock time at the store (zoneinfo: no offset assumed)."""
    return datetime.combine(day, dtime(hh, mm, ss), ASUNCION).timestamp()


class Clock:
    def __init__(self, t: float):
        self.t = t

    def __call__(self) -> float:
        return self.t


class Till:
    """An enrolled till: its store (in `data/till.sqlite3`, as the CLI opens it) and its client."""

    def __init__(self, world: "World", name: str, code: str, folder: str | None = None):
        self.world, self.name = world, name
        self.data = world.root / (folder or name.replace(" ", "_"))
        anonymous = BackendClient("http://t", transport=world.transport)
        try:
            answer = anonymous.enroll(code, name)
        finally:
            anonymous.close()
        self.token = answer["device_token"]
        self.store = TillStore(self.data / STORE_NAME)
        self.store.save_enrollment(answer, "http://t")
        self.client = BackendClient("http://t", self.token, transport=world.transport)
        self.sync()

    def sync(self):
        summary = sync_once(self.store, self.client, clock=self.world.clock)
        assert summary.error is None, summary
        return summary

    def redeem(self, at: float, text: str, method: str, *, staff: str | None = None, online: bool = True):
        self.world.clock.t = at
        return redeem(self.store, text, method=method, staff_id=staff, client=self.client if online else None,
                      clock=self.world.clock)

    def key_at(self, at: float) -> str:
        """The idempotency key of this till's attempt made at `at` (an offline verdict's Outcome has none)."""
        return next(a["key"] for a in self.store.attempts(at, at + 1e-3))

    def close(self) -> None:
        self.client.close()
        self.store.close()


class World:
    """`database`: None for SQLite in the backend's folder, or a PostgreSQL URL (fixture backend_database)."""

    def __init__(self, root: Path, start: float, database: str | None = None):
        self.root = Path(root)
        self.clock = Clock(start)
        self.admin_token = DataDir(self.root / "backend").init(database)["admin_token"]
        self.backend = Backend(self.root / "backend", clock=self.clock)
        self.info = add_demo_data(self.backend)
        self.app = App(self.backend)
        self.transport = httpx.WSGITransport(app=self.app)
        self.http = httpx.Client(transport=self.transport, base_url=f"http://t{API}")
        self.tills: list[Till] = []
        self._codes = list(self.info["enrollment_codes"])

    def till(self, name: str) -> Till:
        till = Till(self, name, self._codes.pop(0))
        self.tills.append(till)
        return till

    # The demo's vouchers, in the order server_stub.demo makes them.
    @property
    def coffee(self) -> str:
        """Personal, 12,000 PYG off."""
        return self.info["vouchers"][0]["id"]

    @property
    def chipa(self) -> str:
        """Personal, 20 % off: no amount until there is a sale."""
        return self.info["vouchers"][1]["id"]

    @property
    def cafe50(self) -> str:
        """Printed (code CAFE50), 50 % off, 200 a store a day."""
        return self.info["vouchers"][2]["id"]

    def staff(self, role: str) -> dict:
        return next(s for s in self.info["staff"] if s["role"] == role)

    def claim(self, voucher_id: str, customer: str) -> dict:
        return self.backend.create_claim(voucher_id, customer)

    def manager_headers(self, till: Till, role: str = "manager") -> dict:
        member = self.staff(role)
        return {"Authorization": f"Bearer {till.token}", "X-Pika-Staff": member["id"], "X-Pika-Pin": member["pin"]}

    def admin_headers(self) -> dict:
        return {"Authorization": f"Bearer {self.admin_token}"}

    def close(self) -> None:
        for till in self.tills:
            till.close()
        self.http.close()
        self.backend.close()
