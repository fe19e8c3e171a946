"""Enrollment codes not used yet: listed on the tills page, and cancelled before a till enrolls with one."""

from __future__ import annotations

import re

import pytest

from console_fixtures import HOSTILE_TEXTS, ConsoleClient, demo_staff, unchanged

pytestmark = pytest.mark.slow


def handles(page) -> list[str]:
    return re.findall(r'data-handle="([0-9a-f]{16})"', page.text)


@pytest.mark.allow_log_warnings("enrollment refused")  # the cancelled code, tried: a wrong code to the guard
def test_an_open_code_is_listed_and_cancelled_and_then_enrolls_nothing(api):
    console = ConsoleClient(api)
    console.sign_in_operator()
    shown = console.post("/console/tills/codes", {"store_id": api.store_id, "ttl_s": "86400"},
                         token_from="/console/tills")
    code = re.search(r'id="enrollment-code"[^>]*>([^<]+)<', shown.text).group(1).strip()
    listed = handles(console.get("/console/tills"))
    assert len(listed) == len(api.demo["enrollment_codes"]) + 1  # the demo's three, and this one
    newest = listed[0]
    cancelled = console.post(f"/console/tills/codes/{newest}/cancel", {}, token_from="/console/tills")
    assert cancelled.status_code == 303 and cancelled.headers["location"] == "/console/tills?ok=code_cancelled"
    assert newest not in handles(console.get("/console/tills"))
    refused = api.client.post("/devices/enroll", json={"code": code, "name": "Caja robada"})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "invalid_enrollment_code"
    assert api.rows("SELECT count(*) FROM devices WHERE name = 'Caja robada'")[0][0] == 0
    assert api.rows("SELECT count(*) FROM audit_log WHERE action = 'enrollment_code.cancel'")[0][0] == 1
    again = console.post(f"/console/tills/codes/{newest}/cancel", {}, token_from="/console/tills")
    assert again.status_code == 404
    console.close()


def test_another_stores_manager_and_another_retailer_cannot_cancel_a_code(console):
    api = console.api
    console.sign_in_operator()
    mine = handles(console.get("/console/tills"))[0]
    other = api.backend.create_retailer("Otra cadena")
    store = api.backend.create_store(other["id"], "Otra sucursal")
    api.backend.create_enrollment_code(store["id"])
    theirs = next(h for h in handles(console.get("/console/tills")) if h != mine and h not in
                  [c["handle"] for c in api.backend.open_enrollment_codes(api.retailer_id)])
    manager = demo_staff(api, "manager")
    ours = ConsoleClient(api)
    assert ours.sign_in_staff(manager["id"], manager["pin"]).status_code == 303
    assert theirs not in handles(ours.get("/console/tills"))  # a manager lists their store's codes only
    refused = unchanged(api, lambda: ours.post(f"/console/tills/codes/{theirs}/cancel", {},
                                               token_from="/console/tills"))
    assert refused.status_code == 404  # another retailer's code is not even named
    for text in (*HOSTILE_TEXTS.values(), "A" * 16, "0" * 15):
        if not text.strip() or not text.isprintable() or any(c in text for c in "/?#"):
            continue  # not a path's part at all (httpx refuses to send it)
        answer = ours.post(f"/console/tills/codes/{text}/cancel", {}, token_from="/console/tills")
        assert answer.status_code in (400, 404)
    assert ours.post(f"/console/tills/codes/{mine}/cancel", {}, token_from="/console/tills").status_code == 303
    ours.close()
