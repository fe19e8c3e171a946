"""Calls that make every booklet endpoint succeed once and fail once (the OpenAPI test checks the answers)."""

from __future__ import annotations


def exercise_booklet_endpoints(api) -> None:
    c, admin = api.client, api.admin
    printed = api.demo_voucher("printed")["id"]
    edition = c.post("/booklets", headers=admin, json={
        "month": "2031-03", "title": "Prueba", "paper": "A5", "pages": None,
        "placements": [{"size": "half", "content": "voucher", "voucher_id": printed, "premium": True,
                        "price": 1000, "lock_page": 2, "lock_position": 0, "cover": None, "advertiser": None,
                        "texts": {"gn": {"title": "Kafe"}}}]})
    assert edition.status_code == 201, edition.text
    eid = edition.json()["id"]
    assert c.post("/booklets", headers=admin, json={"month": "2031-13"}).status_code == 400
    assert c.get("/booklets", headers=admin).status_code == 200
    assert c.get("/booklets").status_code == 401
    assert c.get(f"/booklets/{eid}", headers=admin).status_code == 200
    assert c.get("/booklets/bk_nope", headers=admin).status_code == 404
    placed = c.post(f"/booklets/{eid}/placements", headers=admin, json={
        "size": "single", "content": "ad", "advertiser": "Ñandutí", "texts": {"es": {"title": "Hola", "body": "x"}}})
    assert placed.status_code == 201, placed.text
    assert c.post(f"/booklets/{eid}/placements", headers=admin, json={"size": "single"}).status_code == 400
    pid = placed.json()["id"]
    assert c.post(f"/booklets/{eid}/placements/{pid}/lock", headers=admin,
                  json={"page": 3, "position": 7}).status_code == 200
    assert c.post(f"/booklets/{eid}/placements/{pid}/lock", headers=admin,
                  json={"page": 2, "position": 1}).status_code == 422  # onto the locked half
    assert c.get(f"/booklets/{eid}.pdf", headers=admin).status_code == 409  # not rendered yet
    assert c.get(f"/booklets/{eid}/billing.csv", headers=admin).status_code == 409
    assert c.post(f"/booklets/{eid}/render", headers=admin, json={}).status_code == 200
    assert c.post(f"/booklets/{eid}/render", headers=admin, json={"force": "yes"}).status_code == 400
    assert c.get(f"/booklets/{eid}.pdf", headers=admin).status_code == 200
    assert c.get(f"/booklets/{eid}/billing.csv", headers=admin).status_code == 200


# Moments the booklet is made at: ends of month and year, February (leap or not), each late in the
# evening in Asunción, when UTC is already in the next day (and, on the 30th or 31st, the next month).
DATES = ("2026-01-31", "2026-02-28", "2028-02-29", "2026-11-30", "2026-12-31")


def moment(day: str, hour: int = 23, minute: int = 30) -> float:
    """Epoch seconds of `day` at hour:minute in Asunción."""
    import datetime
    from zoneinfo import ZoneInfo

    when = datetime.datetime.fromisoformat(day).replace(hour=hour, minute=minute, tzinfo=ZoneInfo("America/Asuncion"))
    return when.timestamp()


def dated_api(path, at: float):
    """A backend folder whose demo data (and demo booklet) were made with the clock at `at`."""
    from api_fixtures import Api
    from server_stub.backend import Backend
    from server_stub.datadir import DataDir
    from server_stub.demo import add_demo_data

    admin_token = DataDir(path).init()["admin_token"]
    backend = Backend(path, clock=lambda: at)
    try:
        demo = add_demo_data(backend)
    finally:
        backend.close()
    return Api(path, admin_token, demo)
