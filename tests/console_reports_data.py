"""A store's day made through the API, for the console's manager pages' tests (today, the day report).

Online redemptions of claims and of the booklet's printed code, a garbage scan refused, and from a second
till a sync of offline entries: one redeeming a claim the first till had already redeemed (a conflict,
won by Caja 1) and one it claims to have accepted without anything the backend can check (a dispute).
Also: a second store of the same retailer and a second retailer, each with a redemption of its own, for
the scope checks.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

from api_fixtures import Api, Till

PIN_B = "604812"  # a manager of store B's PIN (six digits, as managers need)


@dataclass
class Day:
    api: Api
    till: Till
    other: Till
    accepted: list[str]  # keys of accepted online redemptions (claims; the last one's claim also lost a conflict)
    printed: str  # key of the printed code's redemption
    refused: str  # key of the garbage scan
    conflict: str
    dispute: str
    store_b: dict = field(default_factory=dict)
    manager_b: dict = field(default_factory=dict)
    key_b: str = ""  # an accepted redemption at store B
    retailer_y: dict = field(default_factory=dict)
    store_y: dict = field(default_factory=dict)
    key_y: str = ""


def entry(**fields) -> dict:
    """An offline entry as a till's outbox sends it."""
    return {"key": uuid.uuid4().hex, "at": time.time() - 5, "accepted": True, "reason": None, "kind": "personal",
            "voucher_id": None, "jti": None, "code": None, "method": "camera", "staff_id": None,
            "decided": "offline", **fields}


def redeemed(api: Api, till: Till, text: str, method: str = "camera") -> str:
    key = uuid.uuid4().hex
    answer = api.redeem(till, text, method, key=key)
    assert answer.status_code in (201, 422), answer.text
    return key


def enroll_at(api: Api, store_id: str, name: str) -> Till:
    code = api.backend.create_enrollment_code(store_id)["code"]
    body = api.ok(api.client.post("/devices/enroll", json={"code": code, "name": name}), 201)
    return Till(body["device_id"], body["device_token"], name, body["store_id"])


def make_day(api: Api, *, others: bool = True) -> Day:
    till, other = api.enroll("Caja 1"), api.enroll("Caja 2")
    claims = [api.claim(customer_id=f"cust-{i}") for i in range(3)]
    accepted = [redeemed(api, till, c["token"]) for c in claims]
    printed = redeemed(api, till, api.printed_code, "typed")
    refused = redeemed(api, till, "no-such-code", "typed")
    coffee = api.demo_voucher("personal")["id"]
    late, garbage = (entry(jti=claims[-1]["jti"], voucher_id=coffee, input=claims[-1]["token"]),
                     entry(voucher_id=coffee, input="garbage"))
    results = api.ok(api.client.post("/sync", headers=other.auth, json={"entries": [late, garbage]}))["results"]
    assert [r["status"] for r in results] == ["conflict", "recorded"] and results[1]["dispute"] == "till_accepted"
    day = Day(api, till, other, accepted, printed, refused, late["key"], garbage["key"])
    if others:
        backend = api.backend
        day.store_b = backend.create_store(api.retailer_id, "Café Pika — Luque", "America/Asuncion")
        day.manager_b = backend.create_staff(api.retailer_id, "Diego Luque", "manager", PIN_B, day.store_b["id"])
        till_b = enroll_at(api, day.store_b["id"], "Caja Luque")
        day.key_b = redeemed(api, till_b, api.claim(customer_id="cust-b")["token"])
        day.retailer_y = backend.create_retailer("Otra Cadena")
        day.store_y = backend.create_store(day.retailer_y["id"], "Otra — Centro", "America/Asuncion")
        voucher = backend.create_voucher({"retailer_id": day.retailer_y["id"], "kind": "personal",
                                          "texts": {"es": {"title": "Otro", "terms": "—"}},
                                          "discount": {"kind": "amount", "value": 5000, "currency": "PYG"}})
        backend.change_voucher(voucher["id"], "publish")
        till_y = enroll_at(api, day.store_y["id"], "Caja Y")
        claim_y = backend.create_claim(voucher["id"], "cust-y")
        day.key_y = redeemed(api, till_y, claim_y["token"])
    return day
