"""`GET /reports/daily`: who may ask, and hostile query parameters answered with clear 400s, nothing written."""

from __future__ import annotations

import pytest

from api_fixtures import Api


def refused_untouched(api: Api, request, status: int, code: str) -> dict:
    """A request that must fail with this status and code, and write nothing."""
    before = api.snapshot()
    answer = request()
    assert answer.status_code == status, answer.text[:300]
    body = answer.json()
    assert body["error"]["code"] == code and body["error"]["message"], body
    assert api.snapshot() == before
    return body


def _staff(api: Api, role: str) -> dict:
    return next(s for s in api.demo["staff"] if s["role"] == role)


def _as(api: Api, till, role: str, pin: str | None = None) -> dict:
    member = _staff(api, role)
    return {**till.auth, "X-Pika-Staff": member["id"], "X-Pika-Pin": pin or member["pin"]}


def test_managers_and_admins_may_cashiers_may_not(api):
    till = api.enroll()
    get = lambda headers, **params: api.client.get("/reports/daily", headers=headers,  # noqa: E731
                                                   params={"date": "2025-03-14", **params})
    assert get(api.admin, store=api.store_id).status_code == 200
    for role in ("manager", "admin"):  # staff default to their till's store
        answer = get(_as(api, till, role))
        assert answer.status_code == 200 and answer.json()["scope"]["store_id"] == api.store_id
    refused_untouched(api, lambda: get(_as(api, till, "cashier")), 403, "forbidden")
    refused_untouched(api, lambda: get(_as(api, till, "manager", pin="0000")), 401, "unauthorized")
    refused_untouched(api, lambda: get(till.auth), 401, "unauthorized")  # a device token alone
    refused_untouched(api, lambda: get({}), 401, "unauthorized")
    refused_untouched(api, lambda: get(api.admin), 400, "missing_field")  # the admin names the store


def test_staff_of_one_store_see_only_it(api):
    till = api.enroll()
    other = api.ok(api.client.post("/stores", headers=api.admin,
                                   json={"retailer_id": api.retailer_id, "name": "Sucursal Encarnación"}), 201)
    get = lambda: api.client.get("/reports/daily", headers=_as(api, till, "manager"),  # noqa: E731
                                 params={"date": "2025-03-14", "store": other["id"]})
    refused_untouched(api, get, 403, "forbidden")
    # Another retailer's store is as unknown to them as a store that does not exist.
    retailer = api.ok(api.client.post("/retailers", headers=api.admin, json={"name": "Otra"}), 201)
    foreign = api.ok(api.client.post("/stores", headers=api.admin, json={"retailer_id": retailer["id"], "name": "X"}),
                     201)
    body = refused_untouched(api, lambda: api.client.get("/reports/daily", headers=_as(api, till, "manager"),
                                                         params={"date": "2025-03-14", "store": foreign["id"]}),
                             400, "invalid_value")
    assert body["error"]["message"] == "no such store"
    # The admin sees any store.
    assert api.client.get("/reports/daily", headers=api.admin,
                          params={"date": "2025-03-14", "store": foreign["id"]}).status_code == 200


@pytest.mark.parametrize("params, code", [
    ({}, "missing_field"),
    ({"date": ""}, "invalid_value"),
    ({"date": "2025-02-30"}, "invalid_value"),
    ({"date": "2025-3-14"}, "invalid_value"),
    ({"date": "14/03/2025"}, "invalid_value"),
    ({"date": "２０２５-03-14"}, "invalid_value"),  # full-width digits
    ({"date": "2025-03-14T00:00"}, "invalid_value"),
    ({"date": "../../etc/passwd"}, "invalid_value"),
    ({"date": "9" * 10_000}, "invalid_value"),
    ({"date": "2025-03-14", "to": "2025-03-13"}, "invalid_value"),
    ({"date": "2025-03-14", "to": "2025-06-14"}, "invalid_value"),  # 93 days
    ({"date": "0001-01-01", "to": "9999-12-31"}, "invalid_value"),
    ({"date": "2025-03-14", "format": "xml"}, "invalid_value"),
    ({"date": "2025-03-14", "format": "PDF"}, "invalid_value"),
    ({"date": "2025-03-14", "format": ""}, "invalid_value"),
    ({"date": "2025-03-14", "lang": "fr"}, "invalid_value"),
    ({"date": "2025-03-14", "store": "nope1234"}, "invalid_value"),
    ({"date": "2025-03-14", "store": "a b"}, "invalid_value"),
    ({"date": "2025-03-14", "store": "x" * 65}, "invalid_value"),
    ({"date": "2025-03-14", "limit": "10"}, "unknown_field"),
])
def test_hostile_query_parameters_are_clear_400s(api, params, code):
    store = {} if "store" in params else {"store": api.store_id}
    body = refused_untouched(api, lambda: api.client.get("/reports/daily", headers=api.admin,
                                                         params={**store, **params}), 400, code)
    assert len(body["error"]["message"]) < 200  # said plainly, without echoing a huge input


def test_the_longest_range_is_fine(api):
    answer = api.client.get("/reports/daily", headers=api.admin,
                            params={"date": "2025-01-01", "to": "2025-04-02", "store": api.store_id})
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["by_day"]) == 92


def test_csv_is_text_csv_with_a_header(api):
    answer = api.client.get("/reports/daily", headers=api.admin,
                            params={"date": "2025-03-14", "store": api.store_id, "format": "csv"})
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    assert answer.content == b"date,time,utc,till,staff_id,staff,voucher_id,voucher,kind,code,method,decided,status," \
                             b"reason,discount,currency,key,over_limit,dispute,void_proof\r\n"
