"""A peer's records kept and applied (store/lan.py): only records that continue what this till holds of
that peer, signed by it; what they used refused here; printed uses counted once, whether the LAN or the
feed brings them first; nothing in the outbox. And the service between real stores in one process."""

from __future__ import annotations

import sqlite3
import time

import pytest

from lan_helpers import STORE, make_tills, personal, printed, set_lan_peers, signed_page, wait_for
from pos_app.core import till_log, tokens
from pos_app.lan.service import LanService
from pos_app.store import TillStore
from pos_app.store.lan import SELF, Lan


@pytest.fixture(scope="module")
def key():
    return tokens.generate_private_key()


@pytest.fixture
def pair(tmp_path, key):
    """Two tills of one store: (sender, receiver) stores, and the sender's roster entry."""
    paths = make_tills(tmp_path, key, 2)
    sender, receiver = TillStore(paths[0], asset_keys_dir=None), TillStore(paths[1], asset_keys_dir=None)
    peer = next(p for p in receiver.lan_config()["peers"] if p["device_id"] == sender.device_id)
    yield sender, receiver, peer
    sender.close()
    receiver.close()




def count(store: TillStore, sql: str) -> int:
    return store.conn.execute(sql).fetchone()[0]


def test_a_peers_personal_redemption_is_refused_here_naming_it(pair, key):
    sender, receiver, peer = pair
    token = personal(key, "jti-1")
    assert sender.redeem_offline(token, method="typed")[0].accepted
    applied = receiver.apply_lan_records(peer, *signed_page(sender))
    assert (applied.held, applied.stored, applied.problems) == (1, 1, ())
    verdict, _ = receiver.redeem_offline(token, method="typed")
    assert verdict.reason == "already_redeemed"
    assert (verdict.used.till, verdict.used.store_id) == ("Caja 1", STORE)
    assert count(receiver, "SELECT count(*) FROM used_tokens WHERE origin = 'lan'") == 1
    # Nothing heard goes into the outbox: the receiver's only entry is its own refusal.
    assert count(receiver, "SELECT count(*) FROM outbox") == 1
    # Sent again: nothing changes.
    assert receiver.apply_lan_records(peer, *signed_page(sender)).stored == 0


def test_refusals_and_voids_are_kept_and_change_nothing(pair, key):
    sender, receiver, peer = pair
    sender.redeem_offline("garbage", method="typed")
    receiver.apply_lan_records(peer, *signed_page(sender))
    assert count(receiver, "SELECT count(*) FROM lan_records") == 1
    assert count(receiver, "SELECT count(*) FROM used_tokens") == 0
    assert count(receiver, "SELECT count(*) FROM lan_printed") == 0


def test_printed_uses_count_across_tills_once_whoever_brings_them_first(pair, key):
    sender, receiver, peer = pair
    code = printed(key)
    day = receiver.context().day
    assert sender.redeem_offline(code, method="camera")[0].accepted
    receiver.apply_lan_records(peer, *signed_page(sender))
    assert receiver.printed_uses("v-print", STORE, day) == (1, 1)
    assert receiver.redeem_offline(code, method="camera")[0].accepted
    assert receiver.printed_uses("v-print", STORE, day) == (2, 2)
    assert receiver.redeem_offline(code, method="camera")[0].reason == "limit_reached"  # store_day_limit 2
    # The feed brings the sender's use (its key): counted by the feed now, not twice.
    first = sender.log_since(0, 1)[0]
    lan_key = till_log.parse_body(first["body"])["key"]
    event = {"seq": 7, "type": "redemption", "data": {"voucher_id": "v-print", "at": time.time(), "kind": "printed",
                                                      "store_id": STORE, "till": "Caja 1", "key": lan_key}}
    receiver.apply_feed([event], 7)
    assert receiver.printed_uses("v-print", STORE, day) == (2, 2)
    assert count(receiver, "SELECT counted_by_feed FROM lan_printed") == 1


def test_a_feed_that_came_first_leaves_the_lan_copy_counting_nothing(pair, key):
    sender, receiver, peer = pair
    assert sender.redeem_offline(printed(key), method="camera")[0].accepted
    lan_key = till_log.parse_body(sender.log_since(0, 1)[0]["body"])["key"]
    day = receiver.context().day
    receiver.apply_feed([{"seq": 3, "type": "redemption", "data": {
        "voucher_id": "v-print", "at": time.time(), "kind": "printed", "store_id": STORE, "key": lan_key}}], 3)
    receiver.apply_lan_records(peer, *signed_page(sender))
    assert receiver.printed_uses("v-print", STORE, day) == (1, 1)
    # Another store's feed event marks nothing here.
    receiver.apply_feed([{"seq": 4, "type": "redemption", "data": {
        "voucher_id": "v-print", "at": time.time(), "kind": "printed", "store_id": "elsewhere", "key": "k" * 20}}], 4)
    assert count(receiver, "SELECT count(*) FROM lan_printed") == 1


def test_records_that_do_not_continue_what_is_held_are_refused_whole(pair, key):
    sender, receiver, peer = pair
    for n in range(3):
        sender.redeem_offline(personal(key, f"jti-{n}"), method="typed")
    records, head = signed_page(sender)
    edited = [dict(r) for r in records]
    edited[1]["body"] = edited[1]["body"].replace("jti-1", "jti-9")
    assert receiver.apply_lan_records(peer, edited, head).problems[0].code == till_log.EDITED
    swapped = [records[0], records[2], records[1]]
    assert receiver.apply_lan_records(peer, swapped, head).problems
    forged = {**head, "sig": till_log.sign_head(till_log.new_private_key(), sender.device_id, head["seq"],
                                                 head["hash"])}
    assert receiver.apply_lan_records(peer, records, forged).problems[0].code == till_log.BAD_SIGNATURE
    other = {**peer, "public_key": till_log.public_key_of(till_log.new_private_key())}
    assert receiver.apply_lan_records(other, records, head).problems
    gap = receiver.apply_lan_records(peer, records[1:], head)
    assert gap.resend and gap.held == 0
    assert count(receiver, "SELECT count(*) FROM lan_records") == 0
    assert count(receiver, "SELECT count(*) FROM used_tokens") == 0
    # The whole, then a rewrite of its past or a head before what is held: refused, the copy kept.
    assert receiver.apply_lan_records(peer, records, head).stored == 3
    assert receiver.apply_lan_records(peer, edited, head).problems[0].code == till_log.EDITED
    _, early = signed_page(sender)
    early = {"seq": 1, "hash": records[0]["hash"],
             "sig": till_log.sign_head(sender.get("log_private_key"), sender.device_id, 1, records[0]["hash"])}
    assert receiver.apply_lan_records(peer, records[:1], early).problems[0].code == till_log.REWOUND
    assert count(receiver, "SELECT count(*) FROM lan_records") == 3


def test_a_tills_own_records_are_never_kept_as_a_peers(pair, key):
    """Its own push played back to it would count its printed uses twice (the feed clears one copy only)."""
    sender, _, _ = pair
    assert sender.redeem_offline(printed(key), method="camera")[0].accepted
    day = sender.context().day
    own = next(p for p in sender.lan_config()["peers"] if p["device_id"] == sender.device_id)
    applied = sender.apply_lan_records(own, *signed_page(sender))
    assert (applied.held, applied.stored, [p.code for p in applied.problems]) == (0, 0, [SELF])
    assert count(sender, "SELECT count(*) FROM lan_records") == count(sender, "SELECT count(*) FROM lan_printed") == 0
    assert sender.printed_uses("v-print", STORE, day) == (1, 1)


def test_lan_figures_name_the_peers_held(pair, key):
    sender, receiver, peer = pair
    sender.redeem_offline(personal(key, "jti-f"), method="typed")
    receiver.apply_lan_records(peer, *signed_page(sender))
    figures = receiver.lan_figures()
    assert figures["enabled"] is True and figures["peers"][0]["held_seq"] == 1
    assert figures["peers"][0]["name"] == "Caja 1"


# --- the service, between real stores in one process ----------------------------------------------


def test_three_services_share_at_once_and_a_till_away_catches_up(tmp_path, key):
    paths = make_tills(tmp_path, key, 3)
    ports = []
    for path in paths:  # each its own fixed port, learnt by listening once on a free one
        service = LanService(path)
        service.start()
        ports.append(service.wait_listening(10))
        service.stop()
    for path, port in zip(paths, ports):
        with TillStore(path, asset_keys_dir=None) as store:
            with store.transaction():
                store.write_setting("lan_port", port)
        set_lan_peers(path, [p for p in ports if p != port])
    services = [LanService(path, pull_interval_s=0.5) for path in paths]
    for service in services:
        service.start()
    stores = [TillStore(path, asset_keys_dir=None) for path in paths]
    try:
        assert all(service.wait_listening(10) for service in services)
        stores[0].redeem_offline(personal(key, "jti-a"), method="typed")
        started = time.monotonic()
        assert wait_for(lambda: stores[1].used("jti-a") and stores[2].used("jti-a"))
        assert time.monotonic() - started < 1.0
        services[2].stop()
        stores[0].redeem_offline(personal(key, "jti-b"), method="typed")
        assert wait_for(lambda: stores[1].used("jti-b"))
        assert stores[2].used("jti-b") is None
        services[2] = LanService(paths[2], pull_interval_s=0.5)
        services[2].start()
        assert wait_for(lambda: stores[2].used("jti-b"), timeout=10)
        assert stores[2].used("jti-b").till == "Caja 1"
    finally:
        for service in services:
            service.stop()
        for store in stores:
            store.close()


def test_a_till_listing_its_own_address_knows_it_asked_itself(tmp_path, key):
    path = make_tills(tmp_path, key, 1)[0]
    service = LanService(path)
    service.start()
    try:
        set_lan_peers(path, [service.wait_listening(10)])
        assert wait_for(lambda: [p.get("self") for p in service.status()["peers"]] == [True], timeout=10)
        assert service.status()["peers"][0]["error"] is None
    finally:
        service.stop()


def test_a_disabled_service_listens_on_nothing(tmp_path, key):
    path = make_tills(tmp_path, key, 1, settings={"lan_enabled": "0"})[0]
    service = LanService(path)
    service.start()
    assert service.wait_listening(5) is None
    service.stop()
    assert service.status()["state"] == "stopped"


# --- a link survives what fails under it ----------------------------------------------------------


@pytest.fixture
def puller(tmp_path, key):
    """Till A serving, till B pulling from it (no pushes, 0.2 s pulls): (A's path, B's path, A's port)."""
    paths = make_tills(tmp_path, key, 2)
    a = LanService(paths[0], push=False)
    a.start()
    port = a.wait_listening(10)
    set_lan_peers(paths[1], [port])
    yield paths[0], paths[1], port
    a.stop()


def holds_of(path, other) -> int:
    with TillStore(path, asset_keys_dir=None) as store, TillStore(other, asset_keys_dir=None) as peer:
        return store.lan_held(peer.device_id)[0]


@pytest.mark.allow_log_warnings(r"LAN: the link to the till at .* failed")
def test_a_link_goes_on_after_its_store_fails_once(puller, key, monkeypatch, caplog):
    path_a, path_b, _ = puller
    real, calls = Lan.apply_lan_records, []

    def locked_once(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise sqlite3.OperationalError("database is locked")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Lan, "apply_lan_records", locked_once)
    with TillStore(path_a, asset_keys_dir=None) as a:
        a.redeem_offline(personal(key, "jti-locked"), method="typed")
    b = LanService(path_b, pull_interval_s=0.2, push=False)
    b.start()
    try:
        assert wait_for(lambda: holds_of(path_b, path_a) == 1, timeout=10)
        [link] = b._links.values()
        assert link.alive and b.status()["peers"][0]["error"] is None
        assert [r.levelname for r in caplog.records if "failed" in r.getMessage()] == ["ERROR"]  # logged once
    finally:
        b.stop()


class KeysGoing(LanService):
    """A service whose keys are gone every other time a link looks (the backend took them, gave them back)."""

    looks = 0

    @property
    def keys(self):
        self.looks += 1
        return self._keys if self.looks % 2 else None

    @keys.setter
    def keys(self, value):
        self._keys = value


@pytest.mark.allow_log_warnings(r"LAN: the till at .* refused \(lan_not_configured\)")
def test_a_link_goes_on_when_its_keys_go_between_two_looks(puller, key):
    path_a, path_b, _ = puller
    with TillStore(path_a, asset_keys_dir=None) as a:
        a.redeem_offline(personal(key, "jti-keys"), method="typed")
    b = KeysGoing(path_b, pull_interval_s=0.2, push=False)
    b.start()
    try:
        assert wait_for(lambda: holds_of(path_b, path_a) == 1, timeout=10)
        assert all(link.alive for link in b._links.values())
    finally:
        b.stop()


def test_a_link_whose_thread_ended_is_replaced(puller):
    path_a, path_b, port = puller
    b = LanService(path_b, pull_interval_s=0.2, push=False)
    b.start()
    try:
        assert wait_for(lambda: b._links, timeout=10)
        [dead] = b._links.values()
        dead.stop()  # as if its thread had died
        assert not dead.alive and dead.status()["error"].startswith("the link stopped")
        assert wait_for(lambda: b._links[("127.0.0.1", port)] is not dead, timeout=10)
        assert b._links[("127.0.0.1", port)].alive
    finally:
        b.stop()
