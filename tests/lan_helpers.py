"""Tills of one store set up by hand for the LAN tests: real store files, each with its own log key, the
store's LAN key and a roster naming them all, as the backend's catalog would give them (no backend: these
tests are about what tills say to each other)."""

from __future__ import annotations

import base64
import os
import time
from pathlib import Path

from pos_app.core import till_log, tokens
from pos_app.store import TillStore

RETAILER = "ret-lan"
STORE = "store-lan"
DAY = 86_400


def new_secret() -> str:
    return base64.b64encode(os.urandom(32)).decode("ascii")


def voucher(vid: str, kind: str, **limits) -> dict:
    now = int(time.time())
    return {"id": vid, "retailer_id": RETAILER, "kind": kind, "status": "published",
            "discount": {"kind": "percent", "value": 10, "currency": "PYG"}, "texts": {"es": {"title": vid}},
            "valid_from": now - 30 * DAY, "valid_until": now + 30 * DAY, "total_limit": limits.get("total"),
            "store_day_limit": limits.get("store_day"), "retailer_name": "Café LAN"}


def catalog(key, lan: dict | None, store_id: str = STORE) -> dict:
    return {"retailer": {"id": RETAILER, "name": "Café LAN"},
            "store": {"id": store_id, "name": store_id, "timezone": "America/Asuncion"},
            "keys": [{"kid": tokens.key_id(key.public_key()), "pem": tokens.public_pem(key.public_key())}],
            "vouchers": [voucher("v-app", "personal"), voucher("v-print", "printed", store_day=2, total=3)],
            "printed_codes": [{"code": "COFFEE10", "voucher_id": "v-print"}], "claims": [], "staff": [],
            "revoked": [], "server_time": time.time(), **({"lan": lan} if lan is not None else {})}


def personal(key, jti: str) -> str:
    now = int(time.time())
    return tokens.issue_personal(key, iss="pika", aud=RETAILER, sub="cust", vid="v-app", jti=jti, iat=now - 10,
                                 exp=now + 3600)


def printed(key) -> str:
    """The printed code COFFEE10 of v-print (store_day limit 2, total 3)."""
    now = int(time.time())
    return tokens.issue_static(key, iss="pika", aud=RETAILER, vid="v-print", code="COFFEE10", iat=now - 10,
                               exp=now + 86_400)


def signed_page(store: TillStore, after: int = 0) -> tuple[list[dict], dict]:
    """A store's own records after `after` and a head signed at the last one, as its LAN service sends them."""
    records = store.log_since(after, 200)
    seq, hash_ = (records[-1]["seq"], records[-1]["hash"]) if records else store.log_head()
    return records, {"seq": seq, "hash": hash_,
                     "sig": till_log.sign_head(store.get("log_private_key"), store.device_id, seq, hash_)}


def make_tills(root: Path, key, n: int, *, store_id: str = STORE, secret: str | None = None,
               kid: str = "lan_k1", settings: dict | None = None) -> list[Path]:
    """`n` enrolled tills of `store_id` (devices dev-<store>-1…), each knowing the others; their store paths."""
    secret = secret or new_secret()
    private = {f"dev-{store_id}-{i}": till_log.new_private_key() for i in range(1, n + 1)}
    lan = {"keys": [{"kid": kid, "secret": secret, "active": True}],
           "peers": [{"device_id": device, "name": f"Caja {device.rsplit('-', 1)[1]}",
                      "public_key": till_log.public_key_of(priv)} for device, priv in private.items()]}
    paths = []
    for device, priv in private.items():
        path = root / device / "till.sqlite3"
        with TillStore(path, asset_keys_dir=None) as store:
            store.save_enrollment({"device_id": device, "name": f"Caja {device.rsplit('-', 1)[1]}",
                                   "device_token": "t", "retailer_id": RETAILER, "store_id": store_id,
                                   "keys": []}, "http://127.0.0.1:9")
            with store.transaction():
                store.write_setting("log_private_key", priv)
                for name, value in {"lan_bind": "127.0.0.1", "lan_port": 0, "lan_discovery": "0",
                                    **(settings or {})}.items():
                    store.write_setting(name, value)
            store.reload_settings()
            store.apply_catalog(catalog(key, lan, store_id))
        paths.append(path)
    return paths


def set_lan_peers(path: Path, ports: list[int]) -> None:
    with TillStore(path, asset_keys_dir=None) as store:
        with store.transaction():
            store.write_setting("lan_peers", ", ".join(f"127.0.0.1:{port}" for port in ports))


def wait_for(check, timeout: float = 5.0, every: float = 0.01):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(every)
