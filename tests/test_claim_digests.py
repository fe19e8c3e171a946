"""A claim's short code never reaches a till: the catalog and the feed carry its digest.

Finding 3 of "A backend that trusts no till": every till received every
outstanding claim's codes, and a stolen till could redeem them all. Now a till
recognises a code a customer shows by its digest (pos_app.core.codes.claim_digest)
and holds nothing that redeems a claim.
"""

from __future__ import annotations

import json
import sqlite3

import httpx

from pos_app.core import codes
from pos_app.core.domain import Method
from pos_app.store import TillStore
from pos_app.sync.client import BackendClient
from pos_app.sync.round import sync_once
from server_stub.app import App


def _till(api, tmp_path, name="Caja digest"):
    till = api.enroll(name)
    store = TillStore(tmp_path / f"{name}.sqlite3")
    store.save_enrollment({"device_id": till.id, "device_token": till.token, "retailer_id": api.retailer_id,
                           "store_id": till.store_id, "name": name, "keys": api.backend.public_keys},
                          "http://t")
    return till, store


def test_the_digest_is_the_code_s_alone_and_the_retailer_s():
    code = codes.new_short_code()
    digest = codes.claim_digest(code, "ret_a")
    assert digest == codes.claim_digest(code, "ret_a") and len(digest) == 32 and int(digest, 16) >= 0
    assert digest != codes.claim_digest(code, "ret_b")
    assert digest != codes.claim_digest(codes.new_short_code(), "ret_a")


def test_catalog_and_feed_hold_no_short_code_yet_the_till_knows_it_offline(api, tmp_path):
    till, store = _till(api, tmp_path)
    before = api.claim(customer_id="cust-before")  # in the catalog
    with BackendClient("http://t", till.token, transport=httpx.WSGITransport(app=App(api.backend))) as client:
        sync_once(store, client)
        after = api.claim(customer_id="cust-after")  # heard of through the feed
        sync_once(store, client)
        catalog = client.catalog()
        feed = client.feed(0)
    wire = json.dumps([catalog, feed])
    for claim in (before, after):
        canon = codes.parse_short_code(claim["short_code"])
        assert canon not in wire and claim["short_code"] not in wire
        assert codes.claim_digest(canon, api.retailer_id) in wire
    conn = sqlite3.connect(tmp_path / "Caja digest.sqlite3")
    try:
        kept = json.dumps(conn.execute("SELECT * FROM claims").fetchall())
    finally:
        conn.close()
    for claim in (before, after):
        assert codes.parse_short_code(claim["short_code"]) not in kept
        verdict, _ = store.redeem_offline(claim["short_code"].lower(), method=Method.TYPED)
        assert verdict.accepted and verdict.source == "short_code" and verdict.jti == claim["jti"], verdict
    store.close()
