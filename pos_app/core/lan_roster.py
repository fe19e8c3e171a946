"""The `lan` object of the catalog and the enrollment answer: the store's LAN keys and its roster of tills.

A store's tills authenticate each other on the shop's LAN with a secret the
backend hands them (the active key signs, a retired one still verifies until
it expires) and with each till's own log key (its public half in the roster).
Both sides read it through here: the till parses what it is given before it
keeps it, and the backend checks what it is about to send with the same rules
(a roster entry the till would refuse must never cost a store its catalog).

    {"keys": [{"kid", "secret", "active"}], "peers": [{"device_id", "name", "public_key"}]}

A parse error never quotes a secret: it names the field, not its value.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any, Mapping

from .till_log import parse_public_key

MAX_LAN_KEYS = 8  # the active key and the retired ones still in their grace
MAX_PEERS = 256  # tills of one store in the roster
SECRET_BYTES = 32
NAME_MAX = 200  # a till's name, as the backend bounds it
_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def parse_lan(lan: Any, where: str) -> dict | None:
    """The checked `lan` object (plain dicts and lists, ready to keep as JSON), or None when there is none
    (an older backend, a web till); ValueError if it is malformed or out of bounds."""
    if lan is None:
        return None
    where = f"{where} lan"
    lan = _mapping(lan, where)
    keys, peers = lan.get("keys"), lan.get("peers", [])
    if not isinstance(keys, list) or not 1 <= len(keys) <= MAX_LAN_KEYS:
        raise ValueError(f"{where}: keys must be a list of 1 to {MAX_LAN_KEYS} keys")
    if not isinstance(peers, list) or len(peers) > MAX_PEERS:
        raise ValueError(f"{where}: peers must be a list of at most {MAX_PEERS} tills")
    parsed_keys = [parse_key(key, where) for key in keys]
    if len({key["kid"] for key in parsed_keys}) != len(parsed_keys):
        raise ValueError(f"{where}: a kid is named twice")
    if sum(key["active"] for key in parsed_keys) != 1:
        raise ValueError(f"{where}: exactly one key is active")
    parsed_peers = [parse_peer(peer, where) for peer in peers]
    if len({peer["device_id"] for peer in parsed_peers}) != len(parsed_peers):
        raise ValueError(f"{where}: a device is named twice in peers")
    return {"keys": parsed_keys, "peers": parsed_peers}


def parse_key(key: Any, where: str) -> dict:
    """One store key: its id, its 32-byte secret (base64) and whether it is the one that signs now."""
    key = _mapping(key, f"{where} key")
    kid, secret, active = key.get("kid"), key.get("secret"), key.get("active")
    if not isinstance(kid, str) or not _ID.fullmatch(kid):
        raise ValueError(f"{where} key: kid must be 1 to 64 letters, digits, '_', '.' or '-'")
    try:
        fits = isinstance(secret, str) and len(secret) == 44 and len(secret_bytes(secret)) == SECRET_BYTES
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"{where} key {kid}: secret must be {SECRET_BYTES} bytes in base64")
    if not isinstance(active, bool):
        raise ValueError(f"{where} key {kid}: active must be true or false")
    return {"kid": kid, "secret": secret, "active": active}


def parse_peer(peer: Any, where: str) -> dict:
    """One till of the roster: its device id, its name (what a cashier is told) and its log's public key."""
    peer = _mapping(peer, f"{where} peer")
    device_id, name, public_key = peer.get("device_id"), peer.get("name"), peer.get("public_key")
    if not isinstance(device_id, str) or not _ID.fullmatch(device_id):
        raise ValueError(f"{where} peer: device_id must be 1 to 64 letters, digits, '_', '.' or '-'")
    if not isinstance(name, str) or not 1 <= len(name) <= NAME_MAX or not _storable(name):
        raise ValueError(f"{where} peer {device_id}: name must be a text of 1 to {NAME_MAX} characters, "
                         "no NUL or lone surrogate")
    try:
        parse_public_key(public_key)
    except ValueError as exc:
        raise ValueError(f"{where} peer {device_id}: {exc}") from exc
    return {"device_id": device_id, "name": name, "public_key": public_key}


def secret_bytes(secret: str) -> bytes:
    """A key's secret as bytes; ValueError if it is not base64 (never quoting it)."""
    try:
        return base64.b64decode(secret.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise ValueError("a LAN key's secret is not base64") from None


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{where}: expected an object")
    return value


def _storable(value: str) -> bool:
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
