"""Tenants sealed: retailer A's till and staff run the whole API against retailer B's things, and learn and
touch nothing of B (issue 14, findings 2 and 5; "Tenants sealed"); scoped admin tokens.

Retailer A is the demo's; retailer B is made here with a store, a till, staff, a personal voucher with
claims and a printed voucher with limits and a code, and one redemption of its own. A's till and its
manager and admin then call every endpoint a till or its staff may call, naming B's voucher ids, short
codes, printed code, token ids, staff ids and redemption key. Afterwards:

- no answer A received holds anything of B that A did not send itself (ids, names, codes, titles);
- every row of B, in every table, is as it was; nothing A sent was counted as B's;
- B's till still redeems every claim, and its printed code up to the full limit, and not one more.
"""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
from zoneinfo import ZoneInfo

import pytest

from api_fixtures import Till, bearer, new_key

B_LIMIT = 3  # B's printed voucher: three uses a day at its store, three in all
B_CODE = "BETA30"


class RetailerB:
    """Everything of retailer B, made through the API with the operator's token."""

    def __init__(self, api):
        self.api = api
        c, admin = api.client, api.admin
        self.retailer = api.ok(c.post("/retailers", headers=admin, json={"name": "Cadena Beta Secreta"}), 201)
        rid = self.retailer["id"]
        self.store = api.ok(c.post("/stores", headers=admin, json={"retailer_id": rid, "name": "Sucursal Beta"}),
                            201)
        self.staff = [api.ok(c.post("/staff", headers=admin, json={
            "retailer_id": rid, "store_id": self.store["id"], "name": name, "role": role, "pin": pin}), 201)
            for name, role, pin in (("Beatriz Beta", "manager", "864209"), ("Basilio Beta", "cashier", "9753"),
                                    ("Bárbara Beta", "admin", "975310"))]
        self.pins = {"manager": "864209", "cashier": "9753", "admin": "975310"}
        self.personal = self._voucher("personal", "Beta exclusivo personal")
        self.printed = self._voucher("printed", "Beta impreso secreto", total_limit=B_LIMIT, store_day_limit=B_LIMIT)
        self.static = api.ok(c.post("/printed-codes", headers=admin,
                                    json={"voucher_id": self.printed["id"], "code": B_CODE}), 201)
        # The customer app's token makes B's claims: a claims-scoped token is enough for that.
        claims_token = make_token(api, "claims", "app de clientes")
        self.claims = [api.ok(c.post("/claims", headers=bearer(claims_token), json={
            "voucher_id": self.personal["id"], "customer_id": f"beta-cliente-{n}"}), 201) for n in range(4)]
        code = api.ok(c.post("/enrollment-codes", headers=admin, json={"store_id": self.store["id"]}), 201)["code"]
        body = api.ok(c.post("/devices/enroll", json={"code": code, "name": "Caja Beta"}), 201)
        self.till = Till(body["device_id"], body["device_token"], "Caja Beta", body["store_id"])
        # One redemption of B's own: its key is what A will try to look up, void and take over.
        self.key = new_key()
        assert api.redeem(self.till, self.claims[0]["token"], key=self.key).status_code == 201

    def _voucher(self, kind, title, **extra):
        api = self.api
        voucher = api.ok(api.client.post("/vouchers", headers=api.admin, json={
            "retailer_id": self.retailer["id"], "kind": kind, "texts": {"es": {"title": title}},
            "discount": {"kind": "percent", "value": 15}, **extra}), 201)
        return api.ok(api.client.post(f"/vouchers/{voucher['id']}/publish", headers=api.admin))

    def secrets(self) -> set[str]:
        """What of B no answer to A may hold unless A sent it: B's names, ids, codes and texts."""
        out = {self.retailer["id"], self.retailer["name"], self.store["id"], self.store["name"],
               self.personal["id"], self.printed["id"], "Beta exclusivo personal", "Beta impreso secreto",
               B_CODE, self.till.id, self.till.name, self.key}
        for member in self.staff:
            out |= {member["id"], member["name"]}
        for claim in self.claims:
            out |= {claim["jti"], claim["short_code"], f"beta-cliente-{self.claims.index(claim)}"}
        return out

    def rows(self) -> dict[str, list[str]]:
        """Every row of B, in every table that holds B's things."""
        rid = self.retailer["id"]
        out = {}
        for table, columns in self.api.tables().items():
            if table == "retailers":
                where, params = "id = ?", (rid,)
            elif "retailer_id" in columns:
                where, params = "retailer_id = ?", (rid,)
            elif "staff_id" in columns and "device_id" in columns:  # pin_failures: B's staff, or B's till
                staff = [m["id"] for m in self.staff]
                where = f"staff_id IN ({','.join('?' * len(staff))}) OR device_id = ?"
                params = (*staff, self.till.id)
            elif "voucher_id" in columns:  # booklet placements
                where, params = "voucher_id IN (?, ?)", (self.personal["id"], self.printed["id"])
            else:
                continue
            out[table] = sorted(map(repr, self.api.rows(f"SELECT * FROM {table} WHERE {where}", params)))
        return out


def make_token(api, scope: str, name: str) -> str:
    """A scoped admin token, made by the operator's command against the api's folder."""
    from server_stub.operations import credentials
    return credentials.create_token(api.backend.ctx, scope, name)["token"]


class Seen:
    """Every answer A received, with all A had sent by then: an echo of what A already held is no leak
    (its own attempts naming B's voucher, read back in its own report), anything else of B is."""

    def __init__(self, api):
        self.api = api
        self.sent = ""
        self.answers: list[tuple[str, str, str]] = []

    def __call__(self, method: str, path: str, headers: dict, *, json_body=None, params=None):
        self.sent += f" {path} {json.dumps(json_body, ensure_ascii=False)} {json.dumps(params or {})}"
        self.sent += " ".join(_token_payloads(json_body))  # a token's claims are readable to whoever holds it
        response = self.api.client.request(method, path, headers=headers, json=json_body, params=params)
        assert response.status_code < 500, (method, path, response.text)
        self.answers.append((f"{method} {path}", self.sent, response.text))
        return response

    def leaks(self, secrets: set[str]) -> list[str]:
        found = []
        for where, sent, text in self.answers:
            decoded = _decoded(text)
            for secret in secrets:
                if secret in decoded and secret not in sent:
                    found.append(f"{where}: {secret!r}")
        return found


def _token_payloads(body) -> list[str]:
    """The decoded middle part of every signed token in a request body."""
    import base64

    texts = json.dumps(body).replace('"', " ").split()
    out = []
    for text in texts:
        parts = text.strip(",:[]{}").split(".")
        if len(parts) == 3 and len(parts[1]) > 8:
            try:
                out.append(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)).decode())
            except ValueError:
                pass
    return out


def _decoded(text: str) -> str:
    """An answer's text with JSON's escapes undone, so 'Bárbara' is found however it was written."""
    try:
        return json.dumps(json.loads(text), ensure_ascii=False)
    except ValueError:
        return text


def _staff_headers(till, member) -> dict:
    return {**till.auth, "X-Pika-Staff": member["id"], "X-Pika-Pin": member["pin"]}


@pytest.fixture
def two(api):
    return RetailerB(api)


def test_retailer_a_learns_and_touches_nothing_of_retailer_b(api, two):
    b = two
    a_till = api.enroll("Caja Alfa")
    a_manager = next(s for s in api.demo["staff"] if s["role"] == "manager")
    a_admin = next(s for s in api.demo["staff"] if s["role"] == "admin")
    manager, admin = _staff_headers(a_till, a_manager), _staff_headers(a_till, a_admin)
    before = b.rows()
    seen = Seen(api)
    now = api.backend.clock()

    # The catalog and the feed: A's till is given only A's things.
    seen("GET", "/catalog", a_till.auth)
    seen("GET", "/feed", a_till.auth, params={"after": "0"})

    # Online: B's claim tokens, short codes, printed code and static token, every method.
    b_inputs = [b.claims[1]["token"], b.claims[2]["short_code"], B_CODE, B_CODE.lower(), b.static["token"]]
    for text in b_inputs:
        for method in ("camera", "typed", "printed"):
            answer = seen("POST", "/redemptions", {**a_till.auth, "Idempotency-Key": new_key()},
                          json_body={"input": text, "method": method, "staff_id": a_manager["id"]})
            assert answer.status_code in (409, 422), (text, method, answer.text)
            assert answer.json()["verdict"]["accepted"] is False
    # B's redemption key, used as A's own idempotency key, looked up, voided.
    seen("POST", "/redemptions", {**a_till.auth, "Idempotency-Key": b.key},
         json_body={"input": api.printed_code, "method": "printed"})
    seen("GET", f"/redemptions/{b.key}", a_till.auth)
    assert seen("POST", f"/redemptions/{b.key}/void", manager, json_body={"reason": "de otra cadena"}).status_code \
        in (403, 404, 409)

    # Offline: entries that claim B's vouchers, token ids and codes were accepted here; a void of B's key.
    entries = []
    for n, (voucher, jti, code, kind, text) in enumerate((
            (b.personal["id"], b.claims[1]["jti"], None, "personal", b.claims[1]["token"]),
            (b.personal["id"], b.claims[2]["jti"], None, "personal", b.claims[2]["short_code"]),
            (b.personal["id"], b.claims[3]["jti"], None, "personal", None),
            (b.printed["id"], None, B_CODE, "printed", B_CODE),
            (b.printed["id"], None, B_CODE, "printed", b.static["token"]),
            (b.printed["id"], None, B_CODE, "printed", None))):
        entry = {"key": new_key(), "at": now - 60 + n, "accepted": True, "reason": None, "kind": kind,
                 "voucher_id": voucher, "jti": jti, "code": code, "method": "camera",
                 "staff_id": a_manager["id"], "decided": "offline"}
        if text is not None:
            entry["input"] = text
        entries.append(entry)
    entries.append({"key": b.key, "at": now - 30, "accepted": True, "reason": None, "kind": "personal",
                    "voucher_id": b.personal["id"], "jti": b.claims[0]["jti"], "code": None, "method": "camera",
                    "staff_id": a_manager["id"], "decided": "offline", "input": b.claims[0]["token"]})
    entries.append({"type": "void", "key": new_key(), "at": now - 10, "redemption_key": b.key,
                    "void_reason": "de otra cadena", "staff_id": a_manager["id"]})
    synced = seen("POST", "/sync", a_till.auth, json_body={"entries": entries})
    assert synced.status_code == 200, synced.text
    for result in synced.json()["results"]:
        assert result["status"] != "recorded" or result["key"] != b.key

    # B's staff at A's till, and A's staff asking for B's stores, retailer and reports.
    b_manager = {**b.staff[0], "pin": b.pins["manager"]}
    for path, params in (("/reports/daily", {"date": _today(), "store": b.store["id"]}),
                         ("/reports/daily", {"date": _today(), "retailer": b.retailer["id"]}),
                         ("/reports/daily", {"date": _today(), "store": b.store["id"], "format": "csv"}),
                         ("/reports/daily", {"date": _today(), "retailer": b.retailer["id"], "format": "csv"})):
        for headers in (manager, admin):
            assert seen("GET", path, headers, params=params).status_code in (400, 403, 404)
    assert seen("GET", "/reports/daily", _staff_headers(a_till, b_manager),
                params={"date": _today()}).status_code == 401
    for path in ("/staff/me", "/pin-lockouts"):
        seen("GET", path, _staff_headers(a_till, b_manager))
        seen("GET", path, admin)
    # A's own report counts none of what A sent as B's (and names none of it).
    own = seen("GET", "/reports/daily", admin, params={"date": _today(), "store": api.store_id})
    assert own.status_code == 200, own.text

    # The booklet: A's admin may not place B's voucher, nor read the billing of anyone's.
    placement = {"size": "single", "content": "voucher", "voucher_id": b.printed["id"]}
    assert seen("POST", "/booklets", admin, json_body={"month": "2031-06", "placements": [placement]}).status_code \
        == 403
    seen("GET", "/booklets", admin)
    eid = api.demo["booklet"]["edition_id"]
    assert seen("POST", f"/booklets/{eid}/placements", admin, json_body=placement).status_code == 403
    assert seen("GET", f"/booklets/{eid}/billing.csv", admin).status_code == 403
    # Admin endpoints with A's device token, staff or no: none of them.
    for method, path, body in (("GET", "/vouchers", None), ("GET", f"/vouchers/{b.printed['id']}", None),
                               ("GET", "/printed-codes", None), ("GET", "/stores", None),
                               ("POST", "/claims", {"voucher_id": b.personal["id"], "customer_id": "x"}),
                               ("POST", f"/claims/{b.claims[3]['jti']}/revoke", None)):
        for headers in (a_till.auth, admin):
            assert seen(method, path, headers, json_body=body).status_code in (401, 403)

    assert seen.leaks(b.secrets()) == []
    assert b.rows() == before, "nothing of B changed"
    a_accepted = api.rows("SELECT count(*) FROM attempts WHERE retailer_id = ? AND status = 'accepted' AND "
                          "(voucher_id IN (?, ?) OR jti IN (SELECT jti FROM claims WHERE retailer_id = ?))",
                          (api.retailer_id, b.personal["id"], b.printed["id"], b.retailer["id"]))
    assert a_accepted == [(0,)], "nothing A sent was counted as a use of B's vouchers"

    # B's till still redeems every claim left and its printed code up to the full limit, and no more.
    for claim in b.claims[1:]:
        assert api.redeem(b.till, claim["token"]).status_code == 201
    for _ in range(B_LIMIT):
        assert api.redeem(b.till, B_CODE, method="printed").status_code == 201
    over = api.redeem(b.till, B_CODE, method="printed")
    assert over.status_code == 422 and over.json()["error"]["code"] == "limit_reached"
    feed = api.ok(api.client.get("/feed", headers=b.till.auth, params={"after": "0"}))
    assert api.ok(api.client.get("/catalog", headers=b.till.auth))["retailer"]["id"] == b.retailer["id"]
    assert all(event.get("data", {}).get("till") in (None, "Caja Beta") for event in feed["events"]
               if event["type"] == "redemption")


def _today() -> str:
    return datetime.datetime.now(ZoneInfo("America/Asuncion")).date().isoformat()


# --- scoped admin tokens ------------------------------------------------------------------------


def test_a_claims_token_makes_and_revokes_claims_and_nothing_else(api):
    token = bearer(make_token(api, "claims", "customer app"))
    personal = api.demo_voucher("personal")["id"]
    claim = api.ok(api.client.post("/claims", headers=token, json={"voucher_id": personal, "customer_id": "c-9"}),
                   201)
    assert api.ok(api.client.post(f"/claims/{claim['jti']}/revoke", headers=token))
    before = api.snapshot()
    eid = api.demo["booklet"]["edition_id"]
    for method, path, body in (
            ("POST", "/retailers", {"name": "X"}), ("GET", "/retailers", None), ("GET", "/stores", None),
            ("POST", "/vouchers", {"retailer_id": api.retailer_id, "kind": "personal", "texts": {"es": {"title": "t"}},
                                   "discount": {"kind": "percent", "value": 5}}),
            ("GET", "/vouchers", None), ("POST", f"/vouchers/{personal}/revoke", None),
            ("POST", "/staff", {"retailer_id": api.retailer_id, "name": "X", "role": "admin", "pin": "123456"}),
            ("POST", "/enrollment-codes", {"store_id": api.store_id}), ("GET", "/printed-codes", None),
            ("GET", "/booklets", None), ("GET", f"/booklets/{eid}/billing.csv", None),
            ("POST", "/booklets", {"month": "2031-06"}),
            ("GET", "/reports/daily", None), ("GET", "/pin-lockouts", None)):
        response = api.client.request(method, path, headers=token, json=body,
                                      params={"date": _today()} if path == "/reports/daily" else None)
        assert response.status_code == 403, (path, response.text)
        assert response.json()["error"]["code"] == "forbidden"
    assert api.snapshot() == before
    # the operator's token still does all
    assert api.client.get("/retailers", headers=api.admin).status_code == 200


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "server_stub", "token", *args], capture_output=True, text=True,
                          timeout=60)


def test_token_command_creates_lists_and_revokes(api):
    api.backend.close()  # the command is its own process: leave the database to it
    made = _cli("create", "--scope", "claims", "--name", "customer app", "--data", str(api.path))
    assert made.returncode == 0, made.stderr
    token = json.loads(made.stdout)
    assert token["scope"] == "claims" and len(token["token"]) >= 40
    stored = api.rows("SELECT token_hash, scope, name FROM admin_tokens WHERE scope = 'claims'")
    assert [(s, n) for _, s, n in stored] == [("claims", "customer app")]
    assert token["token"] not in repr(api.rows("SELECT * FROM admin_tokens")), "kept only as its hash"

    listed = json.loads(_cli("list", "--data", str(api.path)).stdout)["tokens"]
    assert {(t["name"], t["scope"]) for t in listed} >= {("customer app", "claims")}
    assert all(set(t) == {"id", "name", "scope", "created_at", "expires_at", "expired"} for t in listed)
    assert token["token"] not in json.dumps(listed)
    operator = next(t for t in listed if t["scope"] == "all")

    refused = _cli("revoke", operator["id"], "--data", str(api.path))
    assert refused.returncode == 1 and "last unexpired token of scope all" in refused.stderr
    assert _cli("revoke", "nothex", "--data", str(api.path)).returncode == 1
    assert _cli("create", "--scope", "root", "--name", "x", "--data", str(api.path)).returncode == 2
    assert _cli("create", "--scope", "claims", "--name", "  ", "--data", str(api.path)).returncode == 1
    revoked = _cli("revoke", token["id"], "--data", str(api.path))
    assert revoked.returncode == 0, revoked.stderr
    assert api.rows("SELECT count(*) FROM admin_tokens WHERE scope = 'claims'") == [(0,)]


def test_a_revoked_token_is_refused_at_once(api):
    from server_stub.operations import credentials

    made = credentials.create_token(api.backend.ctx, "claims", "old app")
    personal = api.demo_voucher("personal")["id"]
    body = {"voucher_id": personal, "customer_id": "c-1"}
    assert api.client.post("/claims", headers=bearer(made["token"]), json=body).status_code == 201
    credentials.revoke_token(api.backend.ctx, made["id"])
    refused = api.client.post("/claims", headers=bearer(made["token"]), json=body)
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthorized"
