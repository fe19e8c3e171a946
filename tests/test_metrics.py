"""/metrics: Prometheus's text, for an admin token of scope metrics; counts by route template (never an id),
redemptions by outcome and reason, sync entries, 429s, storage_full refusals, the log's head — in one
process (the embedded server) and added up over `serve`'s two granian workers."""

from __future__ import annotations

import json
import os
import re
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from api_fixtures import bearer, new_key
from server_stub.operations import credentials

ROOT = Path(__file__).resolve().parents[1]


def scrape(api, headers=None) -> str:
    response = api.client.get("/metrics", headers=headers or api.admin)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


def value(text: str, name: str, **labels) -> float:
    """The sum of `name`'s samples whose labels include `labels` (0 when none)."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def test_only_a_token_of_scope_metrics_or_all_reads_them(api):
    assert api.client.get("/metrics").status_code == 401
    claims = credentials.create_token(api.backend.ctx, "claims", "customer app")["token"]
    assert api.client.get("/metrics", headers=bearer(claims)).status_code == 403
    token = credentials.create_token(api.backend.ctx, "metrics", "prometheus")["token"]
    assert "pika_requests_total" in scrape(api, bearer(token))
    assert api.client.post("/retailers", headers=bearer(token), json={"name": "x"}).status_code == 403


def test_requests_are_counted_by_route_template_and_status_never_by_id(api):
    before = scrape(api)
    route = "/api/v1/vouchers/{voucher_id}"
    ids = [f"nope{i:04d}" for i in range(5)]
    for voucher_id in ids:
        assert api.client.get(f"/vouchers/{voucher_id}", headers=api.admin).status_code == 404
    api.client.get("/nowhere/at/all")
    api.client.request("BREW", "/health")
    after = scrape(api)
    assert value(after, "pika_requests_total", route=route, status="404") - \
        value(before, "pika_requests_total", route=route, status="404") == 5
    assert value(after, "pika_request_seconds_count", route=route, method="GET") - \
        value(before, "pika_request_seconds_count", route=route, method="GET") == 5
    assert value(after, "pika_requests_total", route="unmatched") > value(before, "pika_requests_total",
                                                                          route="unmatched")
    assert value(after, "pika_requests_total", method="other") >= 1  # BREW is no label of its own
    assert not any(voucher_id in after for voucher_id in ids) and "/nowhere" not in after and "BREW" not in after


def test_redemptions_by_outcome_and_reason_sync_entries_and_the_head(api):
    till = api.enroll()
    before = scrape(api)
    assert api.redeem(till, api.claim()["token"]).status_code == 201
    assert api.redeem(till, "K7QF-3M2X-T", method="typed").status_code == 422  # nobody's code
    entries = [{"key": new_key(), "at": time.time() - 5, "accepted": False, "reason": "expired", "method": "typed",
                "decided": "offline"},
               {"key": new_key(), "at": time.time() - 4, "accepted": False, "reason": "<script>", "method": "typed",
                "decided": "offline"}]
    assert api.client.post("/sync", headers=till.auth, json={"entries": entries}).status_code == 200
    assert api.client.post("/sync", headers=till.auth, json={"entries": entries[:1]}).status_code == 200
    after = scrape(api)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)
    assert delta("pika_redemptions_total", decided="online", outcome="accepted") == 1
    refused = {s.labels["reason"] for f in text_string_to_metric_families(after) for s in f.samples
               if s.name == "pika_redemptions_total" and s.labels["decided"] == "online"
               and s.labels["outcome"] == "refused"
               and delta("pika_redemptions_total", **s.labels) > 0}  # this test's: other tests count too
    assert len(refused) == 1 and refused <= {"malformed", "mistyped", "unknown_code", "bad_signature"}
    assert delta("pika_redemptions_total", decided="synced", outcome="refused", reason="expired") == 1
    assert delta("pika_redemptions_total", decided="synced", outcome="refused", reason="other") == 1  # as bounded
    assert delta("pika_sync_entries_total", result="recorded") == 2
    assert delta("pika_sync_entries_total", result="duplicate") == 1
    assert value(after, "pika_events_head") == api.rows("SELECT max(seq) FROM events")[0][0]


@pytest.mark.allow_log_warnings(r"^the disk is full", r"^enrollment refused from ")
def test_too_many_attempts_and_storage_full_are_counted(api):
    if api.database is not None:
        pytest.skip("a full disk over PostgreSQL needs root and a tablespace: tests/test_storage_full.py")
    before = scrape(api)
    conn = api.backend.writer._conn
    conn.execute(f"PRAGMA max_page_count = {conn.execute('PRAGMA page_count').fetchone()[0]}")
    try:
        refused = 0
        for _ in range(300):
            response = api.client.post("/retailers", headers=api.admin, json={"name": "r" * 200})
            if response.status_code == 503:
                refused += 1
                break
    finally:
        conn.execute("PRAGMA max_page_count = 1073741823")
    assert refused
    statuses = [api.client.post("/devices/enroll", json={"code": "WWMM-F6WZ-X", "name": "x"}).status_code
                for _ in range(12)]  # wrong enrollment codes from one address: the guard's 429s come
    after = scrape(api)
    assert value(after, "pika_storage_full_total", route="/api/v1/retailers") - \
        value(before, "pika_storage_full_total", route="/api/v1/retailers") == 1
    assert value(after, "pika_rate_limited_total") - value(before, "pika_rate_limited_total") == statuses.count(429) > 0


# --- `serve` with two workers: one registry over both ---------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(*argv: str) -> dict:
    done = subprocess.run([sys.executable, "-m", "server_stub", *argv], cwd=ROOT, capture_output=True, text=True,
                          check=True)
    return json.loads(done.stdout)


@pytest.mark.allow_log_warnings()
def test_serve_adds_up_both_workers_counts(tmp_path):
    data = tmp_path / "backend"
    admin = run("init", "--data", str(data))["admin_token"]
    token = run("token", "create", "--scope", "metrics", "--name", "prometheus", "--data", str(data))["token"]
    stale = data / "metrics"
    stale.mkdir(mode=0o755)
    (stale / "counter_999999.db").write_bytes(b"\0" * 16)  # a previous run's: it must not add up
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "server_stub", "serve", "--data", str(data), "--port", str(port),
                             "--workers", "2", "--threads", "2"], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}/api/v1"
    try:
        deadline = time.time() + 30
        while True:
            try:
                httpx.get(url + "/health", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                assert proc.poll() is None, proc.stderr.read().decode()
                assert time.time() < deadline, "serve did not come up"
                time.sleep(0.1)
        folder = data / "metrics"
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        assert not (folder / "counter_999999.db").exists()
        sent = 0
        pids: set[str] = set()
        while len(pids) < 2 or sent < 40:  # a new connection each: granian hands them to either worker
            assert sent < 2000, f"one worker answered everything: {pids}"
            with httpx.Client() as client:
                assert client.get(url + "/health/ready").status_code == 200
            sent += 1
            pids = {name.rsplit("_", 1)[1][:-3] for name in os.listdir(folder) if name.startswith("counter_")}
        text = httpx.get(url + "/metrics", headers=bearer(token)).text
        assert value(text, "pika_requests_total", route="/api/v1/health/ready", status="200") == sent
        assert value(text, "pika_request_seconds_count", route="/api/v1/health/ready") == sent
        assert httpx.get(url + "/metrics").status_code == 401
        assert httpx.get(url + "/metrics", headers=bearer(admin)).status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        proc.stderr.close()


def test_a_dead_workers_live_gauge_goes_at_the_next_scrape_and_its_counts_stay(tmp_path):
    """granian replaces a worker without telling anyone: what it counted stays in the totals, its head gauge
    is dropped (mark_process_dead) when a scrape finds its process gone."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    worker = ("from server_stub.metrics import metrics; m = metrics(); m.exposition(7); "
              "m.answered('/api/v1/health', 'GET', 200, 0.001, [b'{}'])")
    done = subprocess.run([sys.executable, "-c", worker + "; import os; print(os.getpid())"], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=True)
    dead = done.stdout.strip()
    assert (tmp_path / f"gauge_livemostrecent_{dead}.db").exists()
    scraper = ("import sys; from server_stub.metrics import metrics; "
               "sys.stdout.write(metrics().exposition(None)[0].decode())")
    text = subprocess.run([sys.executable, "-c", scraper], cwd=ROOT, env=env, capture_output=True, text=True,
                          check=True).stdout
    assert not (tmp_path / f"gauge_livemostrecent_{dead}.db").exists()
    assert value(text, "pika_requests_total", route="/api/v1/health") == 1


def test_the_shop_pages_redemptions_count_with_the_tills_and_its_pages_by_route(api):
    """A web till's redemption is a redemption: counted as a till's online one; the console's pages by route."""
    from console_fixtures import ConsoleClient, demo_staff

    before = scrape(api)
    shop = ConsoleClient(api)
    manager, cashier = demo_staff(api, "manager"), demo_staff(api, "cashier")
    assert shop.sign_in_staff(manager["id"], manager["pin"]).status_code == 303
    assert shop.post("/console/tills/web", {"store_id": api.store_id, "name": "Web 1", "how": "here"}).status_code \
        == 303
    assert shop.post("/console/shop/sign-in", {"staff_id": cashier["id"], "pin": cashier["pin"]},
                     token_from="/console/shop").status_code == 303
    form = shop.token("/console/shop")
    key = re.search(r'name="key" value="([^"]+)"', shop.last.text).group(1)
    answer = shop.post("/console/shop/redeem", {"code": api.printed_code, "method": "typed", "key": key}, token=form)
    assert answer.status_code == 200
    shop.close()
    after = scrape(api)
    assert value(after, "pika_redemptions_total", decided="online", outcome="accepted") - \
        value(before, "pika_redemptions_total", decided="online", outcome="accepted") == 1
    assert value(after, "pika_requests_total", route="/console/shop/redeem") - \
        value(before, "pika_requests_total", route="/console/shop/redeem") == 1
