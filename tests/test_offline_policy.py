"""The retailer's offline policy at the till: deciding offline, a personal code is refused as
`offline_too_long` once the till has not heard from the backend for longer than the catalog's
`policy.offline_days`; printed codes still pass; any answer of the backend starts the count again. The till's
clock is moved as the other tests move it (the `clock` and `now` the till's calls take), over the real
backend (both engines) and real stores; the reason's words on the screen's panel, the report and its PDF."""

from __future__ import annotations

import subprocess
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import httpx
import pytest

from pos_app.core import wire
from pos_app.core.domain import Method, Reason, Verdict
from pos_app.pdf.day_report import render
from pos_app.store import TillStore, standing
from pos_app.store.report import day_report
from pos_app.sync.client import BackendClient
from pos_app.sync.redeem import redeem
from pos_app.sync.round import sync_once
from pos_app.words import reasons
from pos_app.words.i18n import using
from server_stub.app import App
from server_stub.backend import Backend
from server_stub.datadir import DataDir
from server_stub.demo import add_demo_data

DAY = 86_400


@pytest.fixture
def world(tmp_path, backend_database):
    DataDir(tmp_path / "backend").init(backend_database)
    backend = Backend(tmp_path / "backend")
    info = add_demo_data(backend)
    transport = httpx.WSGITransport(app=App(backend))
    with BackendClient("http://t", transport=transport) as anonymous:
        answer = anonymous.enroll(info["enrollment_codes"][0], "Caja 1")
    store = TillStore(tmp_path / "till.sqlite3")
    store.save_enrollment(answer, "http://t")
    client = BackendClient("http://t", answer["device_token"], transport=transport)
    yield backend, info, store, client
    client.close()
    store.close()
    backend.close()


def claim(backend, info, n=0) -> str:
    voucher = [v for v in info["vouchers"] if v["kind"] == "personal"][n]["id"]
    return backend.create_claim(voucher, f"customer-{time.time_ns()}")["token"]


def printed(info) -> str:
    return next(v for v in info["vouchers"] if v["kind"] == "printed")["code"]


def test_past_the_policy_personal_codes_are_refused_offline_and_printed_ones_pass(world):
    backend, info, store, client = world
    backend.retailer_settings(info["retailer_id"], offline_days=2)
    heard = time.time()
    assert sync_once(store, client, clock=lambda: heard).catalog
    assert store.stored(standing.OFFLINE_DAYS_KEY)[standing.OFFLINE_DAYS_KEY] == 2
    # A day and a half on (within the policy): decided here as ever.
    first = claim(backend, info)
    soon = redeem(store, first, method=Method.CAMERA, clock=lambda: heard + 1.5 * DAY)
    assert soon.verdict.accepted and soon.decided == "offline"
    # Three days on, still unheard: a personal code needs the backend.
    later = heard + 3 * DAY
    refused = redeem(store, claim(backend, info, 1), method=Method.CAMERA, clock=lambda: later)
    assert not refused.verdict.accepted and refused.verdict.reason == Reason.OFFLINE_TOO_LONG
    assert refused.verdict.kind == "personal" and "3 days" in refused.verdict.message
    with using("en"):
        assert "3 days" in reasons.advice(refused.verdict) and reasons.severity(refused.verdict) == "refused"
    assert redeem(store, printed(info), method=Method.PRINTED, clock=lambda: later).verdict.accepted
    # A code already used is still said as such: the days are no excuse to hide it.
    used = redeem(store, first, method=Method.CAMERA, clock=lambda: later)
    assert used.verdict.reason == Reason.ALREADY_REDEEMED


def test_any_answer_of_the_backend_starts_the_count_again(world):
    backend, info, store, client = world
    backend.retailer_settings(info["retailer_id"], offline_days=1)
    start = time.time()
    sync_once(store, client, clock=lambda: start)
    two_days = start + 2 * DAY
    assert standing.days_unheard(store, two_days) == 2
    # Online at that moment: the backend decides (it keeps no such rule), and the till has heard it.
    online = redeem(store, claim(backend, info), method=Method.CAMERA, client=client, clock=lambda: two_days)
    assert online.decided == "online" and online.verdict.accepted
    assert standing.days_unheard(store, two_days) == 0
    offline = redeem(store, claim(backend, info, 1), method=Method.CAMERA, clock=lambda: two_days + 60)
    assert offline.verdict.accepted
    # A sync round is heard too; a round that reached nobody is not.
    with BackendClient("http://127.0.0.1:9", "x", timeout=0.5) as dead:
        assert sync_once(store, dead, clock=lambda: start + 5 * DAY).error
    assert standing.days_unheard(store, start + 5 * DAY) == 3  # heard last at two days
    sync_once(store, client, clock=lambda: start + 5 * DAY)
    assert standing.days_unheard(store, start + 5 * DAY) == 0


def test_the_refusal_syncs_and_the_backend_keeps_the_tills_word(world):
    backend, info, store, client = world
    backend.retailer_settings(info["retailer_id"], offline_days=1)
    start = time.time()
    sync_once(store, client, clock=lambda: start)
    redeem(store, claim(backend, info), method=Method.CAMERA, clock=lambda: start + 2 * DAY)
    summary = sync_once(store, client)
    assert summary.recorded == 1 and summary.parked == 0
    # The customer got nothing: the backend, which would have accepted it, says so beside the till's word.
    row = store.attempts()[-1]
    assert row["reason"] == Reason.OFFLINE_TOO_LONG and row["dispute"] == "till_refused"


def test_the_default_is_a_week_and_an_older_store_counts_from_its_last_sync(tmp_path):
    with TillStore(tmp_path / "till.sqlite3") as store:
        now = time.time()
        assert standing.days_unheard(store, now) == 0  # never heard: nothing to count from
        store.set("last_sync", now - 8 * DAY)  # a store from before this rule
        assert standing.days_unheard(store, now) == 8
        store.set(standing.LAST_HEARD_KEY, now - 6 * DAY)
        assert standing.days_unheard(store, now) == 0
        assert standing.days_unheard(store, now + 1.5 * DAY) == 7


@pytest.mark.parametrize("policy, days", [(None, 7), ({}, 7), ({"offline_days": 1}, 1), ({"offline_days": 90}, 90)])
def test_the_catalogs_policy_is_read(policy, days):
    catalog = {"retailer": {"id": "r"}, "store": {"id": "s"}}
    if policy is not None:
        catalog["policy"] = policy
    assert wire.parse_catalog(catalog).offline_days == days


@pytest.mark.parametrize("policy", [[], "7", {"offline_days": 0}, {"offline_days": 91}, {"offline_days": "7"},
                                    {"offline_days": True}, {"offline_days": 7.5}, {"offline_days": None}])
def test_a_malformed_policy_is_a_malformed_catalog(policy):
    with pytest.raises(ValueError, match="policy"):
        wire.parse_catalog({"retailer": {"id": "r"}, "store": {"id": "s"}, "policy": policy})


def test_every_reason_has_its_words():
    for reason in Reason.ALL:
        assert reason in reasons.HEADLINES and reason in reasons.ADVICE
    verdict = Verdict(accepted=False, reason=Reason.OFFLINE_TOO_LONG, kind="personal",
                      message="This till has not reached the backend for 12 days: personal codes need it")
    with using("en"):
        assert reasons.headline(verdict.reason) == "Offline for too long"
        assert "12 days" in reasons.advice(verdict)


def test_the_report_and_its_pdf_name_the_reason(world, tmp_path):
    backend, info, store, client = world
    backend.retailer_settings(info["retailer_id"], offline_days=1)
    start = time.time()
    sync_once(store, client, clock=lambda: start)
    redeem(store, claim(backend, info), method=Method.CAMERA, clock=lambda: start + 2 * DAY)
    day = datetime.fromtimestamp(start + 2 * DAY, ZoneInfo(store.store_timezone)).date()
    data = day_report(store, day, day, language="en")
    assert data["refused"]["by_reason"] == {Reason.OFFLINE_TOO_LONG: 1}
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(render(data, language="en"))
    text = subprocess.run(["pdftotext", "-enc", "UTF-8", str(pdf), "-"], check=True, capture_output=True,
                          text=True, timeout=60).stdout
    assert "Offline for too long" in text
