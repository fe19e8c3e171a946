"""The smallest chain a bench redeems against: a retailer, a store, a published personal voucher, enrolled
tills, and fresh claims' tokens for them. One place, so the benches measure the same thing."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from pos_app.core import tokens
from server_stub.backend import Backend
from server_stub.datadir import DataDir


@dataclass
class Chain:
    key: object  # the backend's signing key, to issue tokens without a request each
    retailer: str
    store: str
    voucher: str
    devices: list[dict] = field(default_factory=list)  # enroll's answers: device_id, device_token, …

    def token(self, ttl_s: int = 7200) -> str:
        """A fresh personal token of the voucher (a claim the backend never saw: its jti is new)."""
        now = int(time.time())
        return tokens.issue_personal(self.key, iss="pika", aud=self.retailer, sub="c", vid=self.voucher,
                                     jti=uuid.uuid4().hex, iat=now, exp=now + ttl_s)


def make_chain(data: Path, *, tills: int = 1, database: str | None = None, **config) -> Chain:
    """A new backend in `data` (over `database` if given) with its config set (velocity off: a bench till
    redeems faster than any cashier; the caller's `config` on top), and `tills` enrolled."""
    DataDir(data).init(database)
    DataDir(data).set_config(**{"velocity_limit": 0, **config})
    backend = Backend(data)
    try:
        retailer = backend.create_retailer("Bench")
        store = backend.create_store(retailer["id"], "Bench store")
        voucher = backend.create_voucher({"retailer_id": retailer["id"], "kind": "personal",
                                          "texts": {"es": {"title": "Bench"}},
                                          "discount": {"kind": "percent", "value": 10}})
        backend.change_voucher(voucher["id"], "publish")
        devices = [backend.enroll(backend.create_enrollment_code(store["id"])["code"], f"bench-till-{n}")
                   for n in range(tills)]
        return Chain(backend.signing_key, retailer["id"], store["id"], voucher["id"], devices)
    finally:
        backend.close()
