"""The booklet's API, client, command line and schedule against the real backend."""

from __future__ import annotations

import datetime
import multiprocessing
import subprocess
import sys

import pytest

from pos_app.sync.client import BackendClient, Refused
from server_stub.booklet import schedule
from server_stub.booklet.editions import Booklets
from api_fixtures import BASE_URL


def _staff(api, role):
    return next(s for s in api.demo["staff"] if s["role"] == role)


def _client(api, till):
    import httpx
    return BackendClient(BASE_URL, till.token, transport=httpx.WSGITransport(app=api.app))


def test_a_till_admin_lists_and_prints_finished_editions_only(api):
    till = api.enroll()
    admin, cashier = _staff(api, "admin"), _staff(api, "cashier")
    draft = api.demo["booklet"]["edition_id"]
    with _client(api, till) as client:
        assert client.booklets(admin["id"], admin["pin"]) == []  # the demo edition is a draft: not theirs to see
        with pytest.raises(Refused) as caught:
            client.booklet_pdf(draft, admin["id"], admin["pin"])
        assert caught.value.status == 404
        api.ok(api.client.post(f"/booklets/{draft}/render", headers=api.admin, json={}))  # the operator renders
        assert [e["id"] for e in client.booklets(admin["id"], admin["pin"])] == [draft]
        assert client.booklet_pdf(draft, admin["id"], admin["pin"]).startswith(b"%PDF-")
        for staff_id, pin, status in ((cashier["id"], cashier["pin"], 403), (admin["id"], "000000", 401),
                                      ("stf_nobody", "123456", 401), (admin["id"], "x" * 5000, 401)):
            with pytest.raises(Refused) as caught:
                client.booklets(staff_id, pin)
            assert caught.value.status == status
    # a device token without staff headers is not an admin
    assert api.client.get("/booklets", headers=till.auth).status_code == 401


def test_the_booklet_is_the_platform_operators_not_a_retailers_admin(api):
    """Finding 5: a retailer's admin staff read the billing CSV, forced a re-render, built an edition from
    another retailer's voucher. Now each of those is 403 forbidden, and nothing is written."""
    till = api.enroll()
    admin = _staff(api, "admin")
    eid = api.demo["booklet"]["edition_id"]
    api.ok(api.client.post(f"/booklets/{eid}/render", headers=api.admin, json={}))
    staff = {**till.auth, "X-Pika-Staff": admin["id"], "X-Pika-Pin": admin["pin"]}
    printed = api.demo_voucher("printed")["id"]
    placement = {"size": "single", "content": "voucher", "voucher_id": printed}
    before = api.snapshot()
    for method, path, body in (
            ("GET", f"/booklets/{eid}/billing.csv", None),
            ("POST", f"/booklets/{eid}/render", {"force": True}),
            ("POST", "/booklets", {"month": "2031-06", "placements": [placement]}),
            ("POST", f"/booklets/{eid}/placements", placement),
            ("POST", f"/booklets/{eid}/placements/pl_x/lock", {"page": 2, "position": 0}),
            ("GET", f"/booklets/{eid}", None)):
        response = api.client.request(method, path, headers=staff, json=body)
        assert response.status_code == 403, (path, response.text)
        assert response.json()["error"]["code"] == "forbidden"
        assert "advertiser" not in response.text and "price" not in response.text
    assert api.snapshot() == before
    # the operator still does all of it
    assert api.client.get(f"/booklets/{eid}/billing.csv", headers=api.admin).status_code == 200
    made = api.ok(api.client.post("/booklets", headers=api.admin, json={"month": "2031-06"}), 201)
    assert made["status"] == "draft"


def test_hostile_bodies_are_refused_and_nothing_is_written(api):
    c, admin = api.client, api.admin
    printed = api.demo_voucher("printed")["id"]
    personal = api.demo_voucher("personal")["id"]
    before = api.snapshot()
    base = {"month": "2031-07"}
    for body, status, code in [
        ([], 400, "wrong_type"), ({"month": 202107}, 400, "wrong_type"), ({**base, "extra": 1}, 400, "unknown_field"),
        ({"month": "2031-7"}, 400, "invalid_value"), ({"month": "1999-01"}, 400, "invalid_value"),
        ({**base, "paper": "A4"}, 400, "invalid_value"), ({**base, "pages": 1}, 400, "invalid_value"),
        ({**base, "pages": 2**60}, 400, "invalid_value"), ({**base, "title": "x" * 121}, 400, "invalid_value"),
        ({**base, "placements": [{"size": "double", "content": "ad"}]}, 400, "invalid_value"),
        ({**base, "placements": ["x"]}, 400, "wrong_type"),
        ({**base, "placements": [{"size": "single", "content": "voucher", "voucher_id": personal}]}, 400,
         "invalid_value"),
        ({**base, "placements": [{"size": "single", "content": "voucher", "voucher_id": "vch_none"}]}, 404,
         "not_found"),
        ({**base, "placements": [{"size": "single", "content": "image", "advertiser": "A",
                                  "image_base64": "bm90IGFuIGltYWdl"}]}, 400, "invalid_value"),
        ({**base, "placements": [{"size": "half", "content": "voucher", "voucher_id": printed, "lock_page": 3,
                                  "lock_position": 1}]}, 422, "illegal_position"),
        ({**base, "placements": [{"size": "single", "content": "voucher", "voucher_id": printed, "lock_page": 3,
                                  "lock_position": 99}]}, 422, "lock_out_of_range"),
        ({**base, "pages": 4, "placements": [{"size": "full", "content": "voucher", "voucher_id": printed}] * 3},
         422, "too_many_full_pages"),
        ({**base, "placements": [{"size": "single", "content": "voucher", "voucher_id": printed, "lock_page": 3,
                                  "lock_position": 0}] * 2}, 422, "lock_overlap"),
        ({**base, "placements": [{"size": "single", "content": "voucher", "voucher_id": printed,
                                  "price": -1}]}, 400, "invalid_value"),
        ({**base, "placements": [{"size": "single", "content": "ad", "advertiser": "A",
                                  "texts": {"xx": {"title": "t"}}}]}, 400, "invalid_value"),
    ]:
        response = c.post("/booklets", headers=admin, json=body)
        assert response.status_code == status and response.json()["error"]["code"] == code, (body, response.text)
    assert c.post("/booklets", headers=admin, content=b"{" * 100).status_code == 400
    assert api.snapshot() == before, "nothing half-written"


def test_render_is_a_guarded_transition(api):
    eid = api.demo["booklet"]["edition_id"]
    assert api.client.post(f"/booklets/{eid}/render", headers=api.admin, json={}).status_code == 200
    again = api.client.post(f"/booklets/{eid}/render", headers=api.admin, json={})
    assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"
    assert api.client.post(f"/booklets/{eid}/placements", headers=api.admin,
                           json={"size": "single", "content": "ad", "advertiser": "A",
                                 "texts": {"es": {"title": "t"}}}).status_code == 409
    forced = api.ok(api.client.post(f"/booklets/{eid}/render", headers=api.admin, json={"force": True}))
    assert forced["render_count"] == 2
    csv_text = api.client.get(f"/booklets/{eid}/billing.csv", headers=api.admin).text
    lines = csv_text.strip().splitlines()
    assert lines[0].startswith("edition_id,month,page,position,size,spaces,tier,tier_label,premium")
    assert sum(int(line.split(",")[5]) for line in lines[1:]) == 8 * forced["layout"]["pages"]
    assert "Back Cover – Full Page – Tier 1" in csv_text


def _scheduled_run(path, now, queue):
    queue.put(schedule.run_once(str(path), now))


def test_the_schedule_renders_the_coming_month_once_across_processes(api):
    now = datetime.datetime(2031, 8, 1, 6, 0, tzinfo=datetime.timezone.utc)
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_scheduled_run, args=(api.path, now, queue)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    outcomes = sorted(queue.get(timeout=5) for _ in procs)
    assert outcomes == [("2031-09", "rendered"), ("2031-09", "skipped")]
    assert schedule.run_once(str(api.path), now) == ("2031-09", "skipped")
    rows = api.rows("SELECT status, render_count FROM booklet_editions WHERE origin = 'schedule'")
    assert rows == [("done", 1)]
    assert schedule.coming_month(datetime.datetime(2031, 12, 1), 1) == "2032-01"


def test_the_scheduler_job_is_set_for_the_first(api):
    scheduler = schedule.start(str(api.path), {"booklet": {"hour": 5}})
    try:
        job = scheduler.get_job("booklet-monthly")
        assert job.next_run_time.day == 1 and job.next_run_time.hour == 5
    finally:
        scheduler.shutdown(wait=False)
    assert schedule.start(str(api.path), {"booklet": {"schedule": False}}) is None


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "server_stub", "booklet", *args], capture_output=True,
                          text=True, timeout=120)


def test_command_line_render_billing_and_bad_arguments(api, tmp_path):
    api.backend.close()  # the command is its own process: leave the database to it
    out = tmp_path / "may.pdf"
    done = _cli("render", "--data", str(api.path), "--month", "2031-05", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert out.read_bytes().startswith(b"%PDF-")
    listed = _cli("list", "--data", str(api.path))
    edition = next(e for e in __import__("json").loads(listed.stdout)["editions"] if e["month"] == "2031-05")
    billing = _cli("billing", "--data", str(api.path), "--edition", edition["id"])
    assert billing.returncode == 0 and billing.stdout.startswith("edition_id,")
    for args in (["render", "--data", str(api.path), "--month", "2031-13", "--out", str(tmp_path / "x.pdf")],
                 ["render", "--data", str(api.path), "--month", "05-2031", "--out", str(tmp_path / "x.pdf")],
                 ["render", "--data", str(api.path), "--month", "2031-05", "--out", str(tmp_path / "no" / "x.pdf")],
                 ["render", "--data", str(api.path), "--month", "2031-05", "--out", str(tmp_path)],
                 ["render", "--data", str(tmp_path / "nothing"), "--month", "2031-05", "--out", str(tmp_path / "x.pdf")],
                 ["billing", "--data", str(api.path), "--edition", "bk_nope"]):
        result = _cli(*args)
        assert result.returncode != 0 and "error" in result.stderr, (args, result.stderr)
    assert not (tmp_path / "x.pdf").exists()
    assert not list(tmp_path.glob(".*.part"))


def test_booklets_alone_render_without_placements(api):
    booklets = Booklets(api.backend)
    made = booklets.create({"month": "2032-01", "title": "", "paper": "A5", "pages": None, "placements": []})
    assert made["title"] == "Cupones de enero de 2032"
    assert booklets.render(made["id"])["layout"]["pages"] == 3


def _month_start(month: str) -> float:
    from zoneinfo import ZoneInfo
    return datetime.datetime.fromisoformat(f"{month}-01").replace(tzinfo=ZoneInfo("America/Asuncion")).timestamp()


@pytest.mark.parametrize("month", ["2030-02", "2030-12", "2032-02"])
def test_an_edition_places_only_vouchers_valid_in_its_month_and_prints_a_late_start(api, month, tmp_path):
    import subprocess
    start = int(_month_start(month))
    expired = api.voucher("printed", valid_until=start)  # its last instant is the month before
    api.backend.create_printed_code(expired["id"], "VIEJO1")
    refused = api.client.post("/booklets", headers=api.admin, json={
        "month": month, "placements": [{"size": "single", "content": "voucher", "voucher_id": expired["id"]}]})
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "outside_month", refused.text
    late = api.voucher("printed", valid_from=start + 14 * 86400 + 3600, valid_until=start + 40 * 86400)  # the 15th, 01:00
    api.backend.create_printed_code(late["id"], "TARDE1")
    made = api.ok(api.client.post("/booklets", headers=api.admin, json={
        "month": month, "placements": [{"size": "single", "content": "voucher", "voucher_id": late["id"]}]}), 201)
    api.ok(api.client.post(f"/booklets/{made['id']}/render", headers=api.admin, json={}))
    pdf = tmp_path / "late.pdf"
    pdf.write_bytes(api.client.get(f"/booklets/{made['id']}.pdf", headers=api.admin).content)
    text = " ".join(subprocess.run(["pdftotext", "-enc", "UTF-8", str(pdf), "-"], capture_output=True, text=True,
                                   check=True).stdout.split())
    day = f"15/{month[5:]}/{month[:4]}"
    assert f"Válido del {day} al" in text and f"Oiko {day} guive" in text
