"""The findings page: each finding in words with its till's and store's names, scoped to who looks (another
retailer's, or another store's for a manager, is not found, to open or to resolve), resolved with a note
(audited, gone from the open list), hostile notes and queries refused beside the field with nothing written,
a replayed form refused, "Check now" running reconciliation, and the page at a phone's and a desktop's width.

Findings are made with findings.raise_finding through the backend's own storage (a real write), or by the
drift itself (a till's report of a stuck outbox) for the check's button.
"""

from __future__ import annotations

import time

import pytest

from console_fixtures import (DESKTOP, HOSTILE_TEXTS, PHONE, SHOTS_ROOT, ConsoleClient, assert_escaped, demo_staff,
                              sign_in_operator_in, sign_in_staff_in, unchanged)
from console_people_helpers import ADMIN_PIN, other_chain, second_store, signed_in
from server_stub.console import finding_words
from server_stub.operations import findings

pytestmark = pytest.mark.slow
SHOTS = SHOTS_ROOT / "findings"
DAY = 86400.0
KEY = "a" * 64  # a redemption's key as the log names it: 64 hex characters with no place to break


def raise_one(api, code: str, subject: str, detail: dict, *, retailer_id: str | None = None,
              store_id: str | None = None, device_id: str | None = None, at: float | None = None) -> int:
    return api.backend.ctx.storage.submit(lambda db: findings.raise_finding(
        db, code=code, subject=subject, detail=detail, now=at or time.time(),
        retailer_id=retailer_id or api.retailer_id, store_id=store_id, device_id=device_id))


def till_finding(api, till, code: str = "outbox_stuck", **detail) -> int:
    base = {"device_id": till.id, "till": till.name, "store_id": till.store_id, "outbox": 3,
            "oldest_at": time.time() - 2 * DAY, "evidence": 1}
    return raise_one(api, code, till.id, {**base, **detail}, store_id=till.store_id, device_id=till.id)


def finding_row(api, finding_id: int) -> tuple:
    return api.rows("SELECT resolved_at, resolved_by, resolution, seen_at FROM findings WHERE id = ?",
                    (finding_id,))[0]


def audits(api) -> list[tuple]:
    return api.rows("SELECT actor_kind, actor, retailer_id, target, detail FROM audit_log "
                    "WHERE action = 'finding.resolve' ORDER BY id")


def ids_listed(text: str) -> list[int]:
    import re
    return [int(x) for x in re.findall(r'<li class="card finding [a-z]+" data-id="(\d+)"', text)]


# One finding of every code, with the detail its check keeps: each must read as its own sentence.
def every_code(api, till) -> dict[str, int]:
    store, voucher = till.store_id, api.demo_voucher("printed")["id"]
    named = [{"seq": 7, "kind": "attempt", "key": KEY}, {"seq": 8, "kind": "void", "key": "b" * 64}]
    details = {
        "log_gap": {"seqs": [4, 5, 6], "message": "records 4 to 6 are missing"},
        "log_edited": {"seqs": [9], "keys": [KEY], "message": "record 9 does not follow"},
        "log_reordered": {"seqs": [3]}, "log_rewound": {"seqs": [10, 11], "records": named},
        "log_bad_signature": {"seqs": [12]}, "log_malformed": {"seqs": []},
        "log_key_changed": {"registered": "A" * 44, "offered": "B" * 44},
        "log_mismatch": {"seqs": [7], "keys": [KEY], "fields": ["status", "jti"]},
        "log_row_missing": {"records": named}, "log_row_changed": {"records": named[:1]},
        "log_chain_missing": {"seqs": [20, 21]},
        "printed_store_day_over": {"voucher_id": voucher, "store_id": store, "day": "2025-06-01", "uses": 7,
                                   "limit": 5},
        "printed_total_over": {"voucher_id": voucher, "uses": 12, "limit": 10, "by_store": {store: 12}},
        "outbox_stuck": {"outbox": 3, "oldest_at": time.time() - 2 * DAY, "reported_at": time.time()},
        "parked_old": {"parked": 2, "oldest_at": time.time() - 3 * DAY},
        "log_behind": {"claimed_seq": 40, "verified_seq": 30, "missing": 10, "claimed_at": time.time() - 7200},
        "log_unsynced": {"records": 2, "at_least": False, "named": named},
        "till_silent": {"last_seen_at": time.time() - 3 * DAY, "silent_hours": 24},
        "dispute_open": {"day": "2025-06-02", "disputes": 2, "by_kind": {"verdict": 2}, "keys": [KEY, "c" * 64]},
    }
    assert set(details) == set(finding_words.CODE_NAMES)
    made = {}
    for code, detail in details.items():
        about_till = not code.startswith("printed_")
        made[code] = raise_one(api, code, f"{till.id}/{code}", {**detail, "evidence": 1},
                               store_id=None if code == "printed_total_over" else store,
                               device_id=till.id if about_till else None)
    return made


def test_every_code_reads_as_a_sentence_naming_the_till_and_its_detail(console):
    api = console.api
    till = api.enroll("Caja Norte")
    made = every_code(api, till)
    console.sign_in_operator()
    page = console.get("/console/findings?state=all")
    assert page.status_code == 200
    assert ids_listed(page.text) == sorted(made.values(), reverse=True)  # newest first
    assert "Something was found" not in page.text and "Se encontró algo" not in page.text
    assert till.id not in page.text  # named, not by id
    for code, finding_id in made.items():
        one = console.get(f"/console/findings/{finding_id}")
        assert one.status_code == 200, code
        sentence = one.text[one.text.find('id="finding-sentence"'):][:400]
        if not code.startswith("printed_"):
            assert "Caja Norte" in sentence, code
    edited = console.get(f"/console/findings/{made['log_edited']}").text
    assert KEY in edited and 'id="finding-tamper"' in edited  # the record named, and what it is evidence of
    gap = console.get(f"/console/findings/{made['log_gap']}").text
    assert "4–6" in gap  # the missing records as a range of their sequence numbers
    rewound = console.get(f"/console/findings/{made['log_rewound']}").text
    assert 'id="finding-records"' in rewound and "b" * 64 in rewound
    assert 'id="finding-tamper"' not in console.get(f"/console/findings/{made['outbox_stuck']}").text


def test_each_person_sees_their_scope_and_another_s_finding_is_not_found(console):
    api = console.api
    mine = api.enroll("Caja Uno")
    two = second_store(api)
    code = api.backend.create_enrollment_code(two["store"]["id"])["code"]
    theirs_till = api.backend.enroll(code, "Caja Dos")
    other = other_chain(api)
    ours = till_finding(api, mine)
    store_two = raise_one(api, "till_silent", theirs_till["device_id"], {"last_seen_at": time.time() - 3 * DAY},
                          store_id=two["store"]["id"], device_id=theirs_till["device_id"])
    everywhere = raise_one(api, "printed_total_over", "v1", {"voucher_id": "v1", "uses": 3, "limit": 2})
    foreign = raise_one(api, "outbox_stuck", "dev_foreign", {"outbox": 1}, retailer_id=other["retailer"]["id"],
                        store_id=other["store"]["id"], device_id="dev_foreign")

    console.sign_in_operator()
    assert set(ids_listed(console.get("/console/findings").text)) == {ours, store_two, everywhere, foreign}
    assert "Otra Cadena" in console.last.text  # the operator sees whose each finding is

    admin = signed_in(api, demo_staff(api, "admin")["id"], demo_staff(api, "admin")["pin"])
    assert set(ids_listed(admin.get("/console/findings").text)) == {ours, store_two, everywhere}
    assert admin.get(f"/console/findings/{foreign}").status_code == 404
    assert set(ids_listed(admin.get(f"/console/findings?store={two['store']['id']}").text)) == {store_two}

    manager = signed_in(api, demo_staff(api, "manager")["id"], demo_staff(api, "manager")["pin"])
    assert ids_listed(manager.get("/console/findings").text) == [ours]
    for hidden in (store_two, everywhere, foreign):
        assert manager.get(f"/console/findings/{hidden}").status_code == 404, hidden
        refused = unchanged(api, lambda: manager.post(f"/console/findings/{hidden}/resolve", {"note": "visto"},
                                                      token_from="/console/findings"))
        assert refused.status_code == 404, hidden
    assert manager.get(f"/console/findings?store={two['store']['id']}").status_code == 400  # not one of theirs

    stranger = signed_in(api, other["admin"]["id"], ADMIN_PIN)
    assert ids_listed(stranger.get("/console/findings").text) == [foreign]
    for hidden in (ours, store_two, everywhere):
        assert stranger.get(f"/console/findings/{hidden}").status_code == 404
        refused = stranger.post(f"/console/findings/{hidden}/resolve", {"note": "no es mío"},
                                token_from="/console/findings")
        assert refused.status_code == 404 and "not_found" in refused.text
        assert finding_row(api, hidden)[0] is None
    assert audits(api) == []
    for client in (admin, manager, stranger):
        client.close()


def test_a_manager_resolves_their_till_s_care_but_not_evidence_of_tampering(console):
    api = console.api
    till = api.enroll("Caja Gerente")
    stuck = till_finding(api, till)
    edited = till_finding(api, till, "log_edited", seqs=[3], keys=[KEY])
    manager = signed_in(api, demo_staff(api, "manager")["id"], demo_staff(api, "manager")["pin"])
    assert 'id="check-now"' not in manager.get("/console/findings").text
    refused = unchanged(api, lambda: manager.post("/console/findings/check", {}, token_from="/console/findings"))
    assert refused.status_code == 403
    page = manager.get(f"/console/findings/{edited}").text
    assert 'id="resolve-finding"' not in page and 'id="resolve-not-yours"' in page
    refused = manager.post(f"/console/findings/{edited}/resolve", {"note": "lo borré yo"},
                           token_from=f"/console/findings/{stuck}")
    assert refused.status_code == 403 and finding_row(api, edited)[0] is None
    done = manager.post(f"/console/findings/{stuck}/resolve", {"note": "Caja reiniciada, envía otra vez"})
    assert done.status_code == 303 and done.headers["location"] == "/console/findings?ok=resolved"
    assert finding_row(api, stuck)[2] == "Caja reiniciada, envía otra vez"
    manager.close()


def test_resolving_with_a_note_in_a_real_browser_closes_it_audited(live_console, browser_page):
    url, api = live_console
    till = api.enroll("Caja Centro")
    stuck = till_finding(api, till)
    edited = till_finding(api, till, "log_edited", seqs=list(range(1, 60)), keys=[KEY, "d" * 64],
                          message="record 1 does not follow from the record before it " + "x" * 80)
    page = browser_page
    sign_in_operator_in(page, url, api.admin_token)
    page.click("nav a[href='/console/findings']")
    assert page.locator("#findings li.finding").count() == 2
    assert page.locator(f"#findings li[data-id='{edited}']").is_visible()
    SHOTS.mkdir(parents=True, exist_ok=True)
    for size in (PHONE, DESKTOP):
        for path in ("/console/findings", f"/console/findings/{edited}"):
            page.set_viewport_size(size)
            page.goto(url + path)
            assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), (path, size)
            name = "list" if path.endswith("findings") else "one"
            page.screenshot(path=str(SHOTS / f"{name}-{size['width']}.png"), full_page=True)
    page.goto(f"{url}/console/findings")
    page.click(f"#findings li[data-id='{stuck}'] .finding-sentence a")
    assert "Caja Centro" in page.inner_text("#finding-sentence")
    page.fill("#resolve-finding [name=note]", "Se reinició la caja; envió todo")
    page.click("#resolve-finding button[type=submit]")
    page.wait_for_url(f"{url}/console/findings?ok=resolved")
    assert page.locator(".notice.good").count() == 1
    assert [int(x) for x in page.locator("#findings li.finding").evaluate_all(
        "items => items.map(i => i.dataset.id)")] == [edited]  # gone from the open list
    resolved_at, resolved_by, note, _ = finding_row(api, stuck)
    assert resolved_at is not None and note == "Se reinició la caja; envió todo"
    [(kind, actor, retailer, target, detail)] = audits(api)
    assert (kind, retailer, target) == ("admin", api.retailer_id, str(stuck)) and "envió todo" in detail
    page.select_option("#f-state", "resolved")
    page.click("#findings-filters button[type=submit]")
    assert page.locator("#findings li.finding").count() == 1
    page.click(f"#findings li[data-id='{stuck}'] .finding-sentence a")
    assert page.inner_text("#finding-note") == "Se reinició la caja; envió todo"
    assert page.locator("#resolve-finding").count() == 0


def test_a_manager_s_page_in_a_browser_at_a_phone_s_width(live_console, chromium):
    url, api = live_console
    till = api.enroll("Caja Teléfono")
    till_finding(api, till, "till_silent", last_seen_at=time.time() - 3 * DAY)
    context = chromium.new_context(viewport=PHONE, locale="es-PY")
    page = context.new_page()
    manager = demo_staff(api, "manager")
    sign_in_staff_in(page, url, manager["id"], manager["pin"])
    page.wait_for_url(f"{url}/console/")
    assert page.locator("a.card[href='/console/findings']").count() == 1  # linked from home
    page.click("a.card[href='/console/findings']")
    assert "Caja Teléfono" in page.inner_text("#findings")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert page.locator("#check-now").count() == 0
    context.close()


@pytest.mark.parametrize("name", sorted(HOSTILE_TEXTS) + ["just_over", "line_separator", "newline"])
def test_a_hostile_note_is_said_beside_the_field_and_nothing_is_written(console, name):
    api = console.api
    till = api.enroll("Caja H")
    stuck = till_finding(api, till)
    console.sign_in_operator()
    text = {"just_over": "x" * (findings.NOTE_CHARS + 1), "line_separator": "visto\u2028hoy",
            "newline": "visto\nhoy"}.get(name, HOSTILE_TEXTS.get(name))
    before = finding_row(api, stuck)
    refused = unchanged(api, lambda: console.post(f"/console/findings/{stuck}/resolve", {"note": text}))
    assert refused.status_code == 400 and 'id="note-error"' in refused.text, name
    assert_escaped(refused)
    assert finding_row(api, stuck) == before and audits(api) == []


def test_a_replayed_form_is_refused_and_a_second_resolve_said_so(console):
    api = console.api
    till = api.enroll("Caja R")
    stuck = till_finding(api, till)
    console.sign_in_operator()
    token = console.token(f"/console/findings/{stuck}")
    assert console.post(f"/console/findings/{stuck}/resolve", {"note": "hecho"}, token=token).status_code == 303
    replayed = console.post(f"/console/findings/{stuck}/resolve", {"note": "otra vez"}, token=token)
    assert replayed.status_code == 400 and "csrf_replayed" in replayed.text
    missing = console.http.post(f"/console/findings/{stuck}/resolve", data={"note": "sin token"})
    assert missing.status_code == 400 and "csrf_missing" in missing.text
    # an open page's form sent after someone else resolved it: said, nothing changed
    again = console.post(f"/console/findings/{stuck}/resolve", {"note": "tarde"},
                         token_from="/console/findings")
    assert again.status_code in (400, 409) and finding_row(api, stuck)[2] == "hecho"
    assert len(audits(api)) == 1


def test_a_resolve_after_someone_else_s_says_already_resolved(console):
    api = console.api
    till = api.enroll("Caja Dos Veces")
    stuck = till_finding(api, till)
    console.sign_in_operator()
    other = ConsoleClient(api)
    other.sign_in_operator()
    token = console.token(f"/console/findings/{stuck}")  # the page open before the other one resolves it
    assert other.post(f"/console/findings/{stuck}/resolve", {"note": "primero"}).status_code == 303
    late = console.post(f"/console/findings/{stuck}/resolve", {"note": "segundo"}, token=token)
    assert late.status_code == 409 and 'data-code="already_resolved"' in late.text
    assert finding_row(api, stuck)[2] == "primero" and len(audits(api)) == 1
    other.close()


@pytest.mark.parametrize("query", ["state=abierto", "code=OUTBOX", "code=%3Cscript%3Ealert(1)%3C/script%3E",
                                   "page=0", "page=abc", "page=99999999999", "store=sto_nope",
                                   "state=open%00", "code=outbox_stuck%E2%80%AE"])
def test_a_wrong_filter_is_said_beside_it(console, query):
    console.sign_in_operator()
    page = console.get(f"/console/findings?{query}")
    assert page.status_code == 400 and "field-error" in page.text, query
    assert_escaped(page)


def test_ids_that_are_no_finding_are_not_found(console):
    api = console.api
    console.sign_in_operator()
    for raw in ("abc", "0", "-1", "1e3", "99999999999999999999", "%D9%A3", "1%00", "999999"):
        assert console.get(f"/console/findings/{raw}").status_code == 404, raw
        refused = unchanged(api, lambda: console.post(f"/console/findings/{raw}/resolve", {"note": "x"},
                                                      token_from="/console/findings"))
        assert refused.status_code == 404, raw


def test_signed_out_and_a_cashier_reach_no_findings(console):
    api = console.api
    till = api.enroll("Caja S")
    stuck = till_finding(api, till)
    for path in ("/console/findings", f"/console/findings/{stuck}"):
        response = console.get(path)
        assert response.status_code == 303 and response.headers["location"].startswith("/console/sign-in")
    posted = console.http.post(f"/console/findings/{stuck}/resolve", data={"note": "x"})
    assert posted.status_code == 303 and finding_row(api, stuck)[0] is None
    cashier = demo_staff(api, "cashier")
    assert ConsoleClient(api).sign_in_staff(cashier["id"], cashier["pin"]).status_code == 403


def test_check_now_runs_reconciliation_over_the_person_s_retailer(console):
    api = console.api
    till = api.enroll("Caja Atascada")
    api.ok(api.client.post("/sync", headers=till.auth, json={"entries": [], "till": {
        "outbox": 3, "outbox_oldest_at": time.time() - 2 * DAY}}))
    other = other_chain(api)
    stranger = signed_in(api, other["admin"]["id"], ADMIN_PIN)
    ran = stranger.post("/console/findings/check", {})
    assert ran.status_code == 303 and ran.headers["location"] == "/console/findings?ok=checked"
    assert api.rows("SELECT count(*) FROM findings")[0][0] == 0  # their run is over their retailer only
    assert 'id="last-run"' in stranger.get("/console/findings").text
    stranger.close()
    # another retailer's check is not ours: our admin is told of no check yet, then of the operator's
    boss = demo_staff(api, "admin")
    ours = signed_in(api, boss["id"], boss["pin"])
    assert '<p class="hint" id="last-run">' in ours.get("/console/findings").text  # "no check has run yet"

    console.sign_in_operator()
    assert console.post("/console/findings/check", {}).status_code == 303
    listed = console.get("/console/findings?ok=checked")
    assert "Caja Atascada" in listed.text and 'data-code="outbox_stuck"' in listed.text
    assert 'id="last-run"' in listed.text and 'id="check-now"' in listed.text
    told = ours.get("/console/findings").text
    assert '<p id="last-run">' in told and '<p class="hint" id="last-run">' not in told
    ours.close()
    # the same drift checked again is seen again, not a second finding
    assert console.post("/console/findings/check", {}).status_code == 303
    assert api.rows("SELECT count(*) FROM findings WHERE code = 'outbox_stuck'")[0][0] == 1
