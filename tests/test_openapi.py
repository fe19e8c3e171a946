"""The OpenAPI document (server_stub/openapi.json) stays true to the running app.

- its operations are exactly the router's routes;
- every answer the real app gives, success or error, fits the schema the
  document declares for that operation and status (jsonschema);
- every request body the app checks is declared exactly as `check(...)`
  declares it (fields, required, types, null, maxLength/maxItems/maxProperties,
  no extra fields), and bodies the app accepts or refuses for their shape are
  accepted or refused by the document too;
- the security it declares is the security the app enforces;
- the app serves the very file.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import httpx
import jsonschema
import pytest

from pos_app.core.verdict import local_day
import server_stub.app.admin
import server_stub.app.booklet
import server_stub.app.tills
from server_stub import validation
from server_stub.app import API
from server_stub.http import MAX_BODY_BYTES
from api_fixtures import bearer, new_key
from booklet_fixtures import exercise_booklet_endpoints

DOC_PATH = Path(__file__).resolve().parents[1] / "server_stub" / "openapi.json"
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# OpenAPI 3.0 keywords that are not JSON Schema validation keywords.
_NOT_JSON_SCHEMA = {"nullable", "example", "discriminator", "readOnly", "writeOnly", "xml", "externalDocs",
                    "deprecated"}
_SHAPE_CODES = {"unknown_field", "wrong_type", "missing_field"}
_TYPE_NAMES = {frozenset({str}): "string", frozenset({int}): "integer", frozenset({int, float}): "number",
               frozenset({bool}): "boolean", frozenset({dict}): "object", frozenset({list}): "array"}
_MAX_KEY = {"string": "maxLength", "array": "maxItems", "object": "maxProperties"}


def load_doc() -> dict:
    return json.loads(DOC_PATH.read_text(encoding="utf-8"))


def to_json_schema(node):
    """An OpenAPI 3.0 schema as a JSON Schema (draft 4): `nullable: true` becomes `anyOf [null, …]`."""
    if isinstance(node, list):
        return [to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key in _NOT_JSON_SCHEMA:
            continue
        if key == "properties":
            out[key] = {name: to_json_schema(schema) for name, schema in value.items()}
        else:
            out[key] = to_json_schema(value)
    if node.get("nullable") is True:
        return {"anyOf": [{"type": "null"}, out]}
    return out


def template_regex(template: str) -> re.Pattern:
    return re.compile("^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template)) + "$")


class Contract:
    """The document, able to find the operation of a request and check an answer against it."""

    def __init__(self, doc: dict):
        self.doc = doc
        self.schemas = to_json_schema(doc["components"]["schemas"])
        self.operations: dict[tuple[str, str], dict] = {}
        self._patterns: list[tuple[re.Pattern, str]] = []
        for template, item in doc["paths"].items():
            self._patterns.append((template_regex(template), template))
            for method in HTTP_METHODS:
                if method in item:
                    self.operations[(method.upper(), template)] = item[method]
        self._validators: dict[str, jsonschema.Draft4Validator] = {}
        self.seen: set[tuple[str, str, str]] = set()  # (method, template, "ok" | "error")
        self.specs_checked: set[tuple[str, str]] = set()
        self._recorded: list[tuple[str, dict]] = []

    # --- the document ----------------------------------------------------------------

    def deref(self, node: dict) -> dict:
        while isinstance(node, dict) and "$ref" in node:
            ref = node["$ref"]
            assert ref.startswith("#/"), ref
            node = self.doc
            for part in ref[2:].split("/"):
                node = node[part]
        return node

    def validator(self, schema: dict) -> jsonschema.Draft4Validator:
        key = json.dumps(schema, sort_keys=True)
        if key not in self._validators:
            root = {"components": {"schemas": self.schemas}, "allOf": [to_json_schema(schema)]}
            jsonschema.Draft4Validator.check_schema(root)
            self._validators[key] = jsonschema.Draft4Validator(root)
        return self._validators[key]

    def assert_fits(self, schema: dict, instance, what: str) -> None:
        errors = sorted(self.validator(schema).iter_errors(instance), key=lambda e: list(e.absolute_path))
        assert not errors, f"{what} does not fit the document: " + "; ".join(
            f"{list(e.absolute_path)}: {e.message[:300]}" for e in errors[:5])

    def find(self, method: str, path: str) -> tuple[str, dict] | None:
        for regex, template in self._patterns:
            if regex.match(path):
                op = self.operations.get((method, template))
                return (template, op) if op is not None else None
        return None

    def request_schema(self, op: dict) -> dict | None:
        body = op.get("requestBody")
        return self.deref(body)["content"]["application/json"]["schema"] if body else None

    # --- checking traffic (httpx event hooks) -------------------------------------------

    def on_request(self, request: httpx.Request) -> None:
        self._recorded.clear()

    def on_response(self, response: httpx.Response) -> None:
        response.read()
        request = response.request
        status = response.status_code
        found = self.find(request.method, request.url.path)
        if response.headers["content-type"] != "application/json":  # a download (PDF, CSV): as documented
            assert found is not None and status < 300, f"{request.method} {request.url.path}: {status}"
            declared = self.deref(found[1]["responses"][str(status)])["content"]
            assert response.headers["content-type"].split(";")[0] in declared, request.url.path
            self.seen.add((request.method, found[0], "ok"))
            return
        body = response.json()
        if found is None:
            assert status in (404, 405), f"{request.method} {request.url.path} is not documented but gave {status}"
            self.assert_fits({"$ref": "#/components/schemas/Error"}, body, f"{status} for an unknown route")
            return
        template, op = found
        where = f"{request.method} {template} → {status}"
        assert str(status) in op["responses"], f"{where}: this status is not documented"
        answer = self.deref(op["responses"][str(status)])
        self.assert_fits(answer["content"]["application/json"]["schema"], body, where)
        self.seen.add((request.method, template, "ok" if status < 400 else "error"))
        self._check_request_body(request, op, status, body, where)
        for spec_where, spec in self._recorded:
            self.assert_spec_declared(op, spec_where, spec, where)
            self.specs_checked.add((request.method, template))
        self._recorded.clear()

    def _check_request_body(self, request, op, status, body, where) -> None:
        schema = self.request_schema(op)
        if schema is None or not request.content:
            return
        try:
            sent = json.loads(request.content)
        except ValueError:
            return
        fits = self.validator(schema).is_valid(sent)
        if 200 <= status < 300:
            assert fits, f"{where}: the app took a body the document refuses: {sent!r:.300}"
        elif status == 400 and body["error"]["code"] in _SHAPE_CODES:
            assert not fits, f"{where}: the app refused a body ({body['error']}) the document accepts"

    # --- `check(...)` specs against the declared request schemas -------------------------

    def record_check(self, body, spec, where="body"):
        self._recorded.append((where, spec))
        return validation.check(body, spec, where)

    def declared_object(self, op: dict, where: str) -> dict:
        schema = self.deref(self.request_schema(op))
        if where == "body":
            return schema
        match = re.fullmatch(r"(\w+)(\[\d+\])?", where)
        assert match, where
        prop = self.deref(schema["properties"][match[1]])
        return self.deref(prop["items"]) if match[2] else prop

    def assert_spec_declared(self, op: dict, where: str, spec: dict, context: str) -> None:
        schema = self.declared_object(op, where)
        label = f"{context}: `{where}`"
        assert schema.get("type") == "object", label
        assert schema.get("additionalProperties") is False, f"{label} must refuse extra fields"
        assert set(schema["properties"]) == set(spec), f"{label}: fields differ from check()"
        required = {name for name, (_, req, _) in spec.items() if req}
        assert set(schema.get("required", [])) == required, f"{label}: required fields differ"
        for name, (types, _, max_len) in spec.items():
            prop = self.deref(schema["properties"][name])
            type_name = _TYPE_NAMES[frozenset(types) - {type(None)}]
            assert prop.get("type") == type_name, f"{label}.{name}: type {prop.get('type')}, check() {type_name}"
            assert bool(prop.get("nullable")) == (type(None) in types), f"{label}.{name}: nullable differs"
            declared_max = prop.get(_MAX_KEY[type_name]) if type_name in _MAX_KEY else None
            assert declared_max == max_len, f"{label}.{name}: max {declared_max}, check() {max_len}"


@pytest.fixture
def contract(api, monkeypatch) -> Contract:
    """The document, checking every answer of `api.client`."""
    contract = Contract(load_doc())
    for routes in (server_stub.app.admin, server_stub.app.tills, server_stub.app.booklet):  # each checks bodies
        monkeypatch.setattr(routes, "check", contract.record_check)
    api.client.event_hooks = {"request": [contract.on_request], "response": [contract.on_response]}
    return contract


# --- the document itself ------------------------------------------------------------------


def test_document_is_pretty_printed_openapi_3_0_3():
    text = DOC_PATH.read_text(encoding="utf-8")
    doc = json.loads(text)
    assert text.startswith("{\n  \"openapi\"") and text.count("\n") > 500
    assert doc["openapi"] == "3.0.3"
    assert doc["info"]["title"] and doc["info"]["version"]
    assert set(doc["components"]["securitySchemes"]) == {"adminToken", "deviceToken"}
    for scheme in doc["components"]["securitySchemes"].values():
        assert scheme == {**scheme, "type": "http", "scheme": "bearer"}


def test_every_reference_resolves_and_every_schema_is_valid():
    doc = load_doc()
    contract = Contract(doc)

    def walk(node, where):
        if isinstance(node, dict):
            if "$ref" in node:
                assert set(node) == {"$ref"}, f"{where}: $ref with siblings is ignored in OpenAPI 3.0"
                contract.deref(node)
            for key, value in node.items():
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{where}/{i}")
    walk(doc, "#")
    for name, schema in doc["components"]["schemas"].items():
        jsonschema.Draft4Validator.check_schema(to_json_schema(schema))
        if schema.get("type") == "object":
            assert schema.get("additionalProperties") is False, f"{name} must say additionalProperties: false"
            assert set(schema.get("required", [])) <= set(schema["properties"]), name
    for name, schema in doc["components"]["schemas"].items():  # `nullable` needs a type beside it (3.0.3)
        def nullable_has_type(node, where):
            if isinstance(node, dict):
                if node.get("nullable"):
                    assert "type" in node or "allOf" in node, where
                for key, value in node.items():
                    nullable_has_type(value, f"{where}.{key}")
        nullable_has_type(schema, name)


def test_operations_are_well_formed():
    doc = load_doc()
    contract = Contract(doc)
    ids = [op["operationId"] for op in contract.operations.values()]
    assert len(ids) == len(set(ids)), "operationIds must be unique"
    schemes = set(doc["components"]["securitySchemes"])
    for (method, template), op in contract.operations.items():
        where = f"{method} {template}"
        assert template.startswith(API + "/"), where
        assert "security" in op, f"{where}: say which token it needs (or [] for none)"
        for requirement in op["security"]:
            assert set(requirement) <= schemes, where
        params = [contract.deref(p) for p in op.get("parameters", [])]
        in_path = {p["name"] for p in params if p["in"] == "path"}
        assert in_path == set(re.findall(r"\{(\w+)\}", template)), f"{where}: path parameters"
        assert all(p["required"] for p in params if p["in"] == "path"), where
        assert op["responses"], where
        for status, response in op["responses"].items():
            response = contract.deref(response)
            assert re.fullmatch(r"[1-5]\d\d", status), where
            assert response["description"], where
            if int(status) < 300 and "application/json" not in response["content"]:  # a download
                assert len(response["content"]) == 1, where
                continue
            schema = response["content"]["application/json"]["schema"]
            contract.validator(schema)  # compiles
            if int(status) >= 400 and not (template == f"{API}/redemptions" and status in ("409", "422")) \
                    and not (template == f"{API}/health/ready" and status == "503"):  # not ready: the same body
                assert schema == {"$ref": "#/components/schemas/Error"}, f"{where} {status}: errors are Error"
        assert "500" in op["responses"], f"{where}: every operation can fail with 500 internal"
        if op["security"]:
            assert "401" in op["responses"], where
        if "requestBody" in op:
            assert method == "POST", where
            for status in ("400", "413", "415"):
                assert status in op["responses"], f"{where}: a body can be refused with {status}"
    redeem = contract.operations[("POST", f"{API}/redemptions")]
    header = [contract.deref(p) for p in redeem["parameters"]]
    assert [(p["name"], p["in"], p["required"]) for p in header] == [("Idempotency-Key", "header", True)]
    assert re.fullmatch(header[0]["schema"]["pattern"], "a" * 8) and not re.fullmatch(header[0]["schema"]["pattern"],
                                                                                       "a" * 7)
    for status in ("201", "409", "422"):  # a redemption's answers carry the verdict
        schema = contract.deref(contract.deref(redeem["responses"][status])["content"]["application/json"]["schema"])
        alternatives = [contract.deref(s) for s in schema.get("oneOf", [schema])]
        assert any("verdict" in alt["required"] for alt in alternatives), status


def test_document_operations_are_the_router_routes(api):
    """The preferred way: Router.routes() lists (METHOD, template) as registered."""
    routes = api.app.router.routes()
    assert len(routes) == len(set(routes))
    assert set(routes) == set(Contract(load_doc()).operations)


def test_router_regexes_map_back_to_the_documented_templates(api):
    """The same, read from the compiled patterns, so Router.routes() cannot drift from them."""
    documented = Contract(load_doc()).operations
    from_regexes = set()
    for regex, handlers in api.app.router._routes:
        template = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", regex.pattern)[1:-1]
        from_regexes |= {(method, template) for method in handlers}
    for path, handlers in api.app.router._exact.items():
        from_regexes |= {(method, path) for method in handlers}
    assert from_regexes == set(documented)


def test_served_document_is_the_file(api):
    response = api.client.get("/openapi.json")
    assert response.status_code == 200
    assert response.json() == load_doc()
    assert api.app.openapi(None) == (200, load_doc())


# --- security, as declared ---------------------------------------------------------------------


def _concrete(template: str) -> str:
    return re.sub(r"\{\w+\}", "abcd1234", template)[len(API):]


def test_security_is_what_the_document_says(api):
    contract = Contract(load_doc())
    till = api.enroll()
    wrong = bearer("not-a-token-" + "x" * 20)
    for (method, template), op in contract.operations.items():
        path = _concrete(template)
        needs = {name for requirement in op["security"] for name in requirement}

        def call(headers):
            return api.client.request(method, path, headers=headers, json={} if method == "POST" else None)
        if not needs:
            for headers in ({}, wrong):
                assert call(headers).status_code != 401, f"{method} {template} should need no token"
            continue
        if needs == {"adminToken", "deviceToken"}:  # a till only with an admin's staff id and PIN (booklet)
            needs = {"adminToken"}
        assert len(needs) == 1, template
        right, other = (api.admin, till.auth) if needs == {"adminToken"} else (till.auth, api.admin)
        for headers in ({}, wrong, other, {"Authorization": right["Authorization"].replace("Bearer", "Basic")}):
            response = call(headers)
            assert response.status_code == 401, f"{method} {template} with {headers}: {response.text}"
            assert response.json()["error"]["code"] == "unauthorized"
        assert call(right).status_code != 401, f"{method} {template} refuses its own token"


# --- every endpoint, through the real app, checked against the document ----------------------------


# the injected failures are logged, as any 500 is
@pytest.mark.allow_log_warnings(r"^unhandled error for GET /api/v1/(health|openapi\.json)$",
                                r"^enrollment refused from ")
def test_every_endpoint_answers_as_documented(api, contract, monkeypatch):
    c, admin = api.client, api.admin
    retailer_id, store_id = api.retailer_id, api.store_id
    missing = "nope1234"

    # open
    c.get("/health")
    c.get("/openapi.json")
    assert c.get("/health/ready").status_code == 200
    assert c.get("/health/ready", headers=admin).json()["checks"]["schema"]["value"]["database"] >= 6
    monkeypatch.setitem(api.backend.config, "ready_min_free_mb", 10**12)  # no disk has that much free
    assert c.get("/health/ready").status_code == 503
    monkeypatch.setitem(api.backend.config, "ready_min_free_mb", 200)
    assert c.get("/metrics", headers=admin).status_code == 200
    assert c.get("/metrics").status_code == 401
    monkeypatch.setattr(api.backend, "health", lambda: 1 / 0)
    assert c.get("/health").status_code == 500
    monkeypatch.setattr(api.app, "_openapi", {"unserialisable": object()})
    assert c.get("/openapi.json").status_code == 500

    # retailers, stores
    assert c.post("/retailers", headers=admin, json={"name": "Ñandutí 🧉"}).status_code == 201
    assert c.post("/retailers", headers=admin, json={"name": "x", "extra": 1}).status_code == 400
    assert c.post("/retailers", headers=admin, json={"name": 5}).status_code == 400
    assert c.post("/retailers", headers=admin, json={}).status_code == 400
    assert c.post("/retailers", headers={**admin, "Content-Type": "text/plain"}, content=b"{}").status_code == 415
    assert c.post("/retailers", headers=admin, content=(b"x" for _ in range(1))).status_code == 411
    assert c.post("/retailers", headers=admin, content=b" " * (MAX_BODY_BYTES + 1)).status_code == 413
    assert c.get("/retailers", headers=admin).status_code == 200
    assert c.get("/retailers").status_code == 401
    assert c.post("/stores", headers=admin, json={"retailer_id": retailer_id, "name": "Sucursal 2",
                                                  "timezone": "America/Sao_Paulo"}).status_code == 201
    assert c.post("/stores", headers=admin, json={"retailer_id": retailer_id, "name": "S3"}).status_code == 201
    assert c.post("/stores", headers=admin, json={"retailer_id": missing, "name": "S"}).status_code == 404
    assert c.post("/stores", headers=admin, json={"retailer_id": retailer_id, "name": "S",
                                                  "timezone": "Mars/Olympus"}).status_code == 400
    assert c.get("/stores", headers=admin, params={"retailer_id": retailer_id}).status_code == 200
    assert c.get("/stores", headers=admin).status_code == 200
    assert c.get("/stores").status_code == 401

    # vouchers
    personal = api.voucher("personal", publish=False, valid_from=1, valid_until=4_000_000_000, claim_ttl_s=600)
    printed = api.voucher("printed", total_limit=10, store_day_limit=None)
    assert c.post("/vouchers", headers=admin, json={"retailer_id": retailer_id, "kind": "personal",
                                                    "texts": {"es": {"title": "x"}},
                                                    "discount": {"kind": "amount", "value": "5"}}).status_code == 400
    assert c.post("/vouchers", headers=admin, json={"retailer_id": missing, "kind": "personal",
                                                    "texts": {"es": {"title": "x"}},
                                                    "discount": {"kind": "amount", "value": 5,
                                                                 "currency": "USD"}}).status_code == 404
    assert c.get("/vouchers", headers=admin).status_code == 200
    assert c.get("/vouchers", headers=admin, params={"retailer_id": retailer_id}).status_code == 200
    assert c.get("/vouchers").status_code == 401
    assert c.get(f"/vouchers/{personal['id']}", headers=admin).status_code == 200
    assert c.get(f"/vouchers/{missing}", headers=admin).status_code == 404
    assert c.post(f"/vouchers/{personal['id']}/unpublish", headers=admin).status_code == 409  # still new
    assert c.post(f"/vouchers/{personal['id']}/publish", headers=admin).status_code == 200
    assert c.post(f"/vouchers/{personal['id']}/unpublish", headers=admin).status_code == 200
    assert c.post(f"/vouchers/{personal['id']}/revoke", headers=admin).status_code == 200
    assert c.post(f"/vouchers/{personal['id']}/publish", headers=admin).status_code == 409  # revoked for good
    assert c.post(f"/vouchers/{missing}/revoke", headers=admin).status_code == 404

    # printed codes, staff, enrollment codes
    assert c.post("/printed-codes", headers=admin, json={"voucher_id": printed["id"], "code": "té-10"}).status_code \
        == 400  # not letters and digits
    assert c.post("/printed-codes", headers=admin, json={"voucher_id": printed["id"], "code": "Chipa 10"}).status_code \
        == 201
    assert c.post("/printed-codes", headers=admin, json={"voucher_id": printed["id"], "code": "CHIPA10"}).status_code \
        == 409
    assert c.post("/printed-codes", headers=admin, json={"voucher_id": missing, "code": "X100"}).status_code == 404
    assert c.get("/printed-codes", headers=admin).status_code == 200
    assert c.get("/printed-codes", headers=admin, params={"voucher_id": printed["id"]}).status_code == 200
    assert c.get("/printed-codes").status_code == 401
    assert c.post("/staff", headers=admin, json={"retailer_id": retailer_id, "store_id": store_id,
                                                 "name": "Dora", "role": "cashier", "pin": "2468"}).status_code == 201
    assert c.post("/staff", headers=admin, json={"retailer_id": retailer_id, "name": "Eve", "role": "boss",
                                                 "pin": "2468"}).status_code == 400
    assert c.post("/staff", headers=admin, json={"retailer_id": missing, "store_id": None, "name": "Eve",
                                                 "role": "cashier", "pin": "2468"}).status_code == 404
    assert c.post("/enrollment-codes", headers=admin, json={"store_id": store_id, "ttl_s": 3600}).status_code == 201
    assert c.post("/enrollment-codes", headers=admin, json={"store_id": store_id, "ttl_s": 1}).status_code == 400
    assert c.post("/enrollment-codes", headers=admin, json={"store_id": missing}).status_code == 404

    # claims
    claim = api.claim()
    assert c.post("/claims", headers=admin, json={"voucher_id": personal["id"], "customer_id": "c"}).status_code \
        == 422  # revoked
    assert c.post("/claims", headers=admin, json={"voucher_id": missing, "customer_id": "c"}).status_code == 404
    assert c.post("/claims", headers=admin, json={"voucher_id": printed["id"], "customer_id": " "}).status_code == 400
    revoked_claim = api.claim(customer_id="cust-2")
    assert c.post(f"/claims/{revoked_claim['jti']}/revoke", headers=admin).status_code == 200
    assert c.post(f"/claims/{missing}/revoke", headers=admin).status_code == 404

    # tills
    code = api.demo["enrollment_codes"][0]
    enrolled = c.post("/devices/enroll", json={"code": code, "name": "Caja 1"})
    assert enrolled.status_code == 201
    assert c.post("/devices/enroll", json={"code": code, "name": "Caja 1"}).status_code == 403
    assert c.post("/devices/enroll", json={"code": code, "name": 1}).status_code == 400
    till = {"Authorization": f"Bearer {enrolled.json()['device_token']}"}
    other = api.enroll("Caja 2").auth
    assert c.get("/catalog", headers=till).status_code == 200
    assert c.get("/catalog", headers=admin).status_code == 401

    def redeem(auth, text, method="camera", key=None, **extra):
        return c.post("/redemptions", headers={**auth, "Idempotency-Key": key or new_key()},
                      json={"input": text, "method": method, **extra})
    key = new_key()
    assert redeem(till, claim["token"], key=key, staff_id=None, at=1_700_000_000.5).status_code == 201
    assert redeem(till, claim["token"], key=key).status_code == 201  # replay
    assert redeem(till, "CAFE50", key=key).status_code == 422  # the key with another body: idempotency_mismatch
    assert redeem(other, claim["short_code"], method="typed").status_code == 409  # already redeemed
    assert redeem(other, claim["token"], key=key).status_code == 409  # another till's key
    assert redeem(till, "CAFE50", method="printed").status_code == 201
    assert redeem(till, claim["token"], method="printed").status_code == 422  # an app code, not printed
    assert redeem(till, revoked_claim["token"]).status_code == 422
    assert redeem(till, "not a code at all").status_code == 422
    assert redeem(till, "x", method="telepathy").status_code == 400
    assert c.post("/redemptions", headers=till, json={"input": "x", "method": "typed"}).status_code == 400
    assert c.post("/redemptions", headers={**till, "Idempotency-Key": new_key()}, json={"input": 5}).status_code == 400
    assert c.get(f"/redemptions/{key}", headers=till).status_code == 200
    assert c.get(f"/redemptions/{new_key()}", headers=till).status_code == 404
    assert c.get("/redemptions/short", headers=till).status_code == 400
    assert c.get(f"/redemptions/{key}", headers=other).status_code == 409

    entry = {"key": new_key(), "at": time.time() - 1, "accepted": True, "reason": None, "kind": "personal",
             "voucher_id": api.demo_voucher("personal")["id"], "jti": claim["jti"], "code": None,
             "method": "camera", "staff_id": None, "decided": "offline", "input": claim["token"]}
    refused = {"key": new_key(), "at": time.time() - 0.75, "accepted": False, "reason": "expired",
               "method": "typed", "decided": "offline"}
    unproven = {"key": new_key(), "at": time.time() + 86400, "accepted": True, "method": "typed", "decided": "offline"}
    answer = c.post("/sync", headers=other, json={"entries": [entry, refused, unproven], "till_time": time.time()})
    assert [r["status"] for r in answer.json()["results"]] == ["conflict", "recorded", "recorded"]
    assert answer.json()["results"][2]["dispute"] == "unproven" and answer.json()["results"][2]["time_flag"] == "future"
    answer = c.post("/sync", headers=other, json={"entries": [entry, refused]})
    assert [r["status"] for r in answer.json()["results"]] == ["conflict", "duplicate"]
    assert c.post("/sync", headers=till, json={"entries": [refused]}).json()["results"][0]["status"] == "rejected"
    assert c.post("/sync", headers=till, json={"entries": [{**refused, "decided": "maybe"}]}).status_code == 400
    assert c.post("/sync", headers=till, json={"entries": {}}).status_code == 400
    assert c.post("/sync", headers=till, json={"entries": [{**refused, "at": None}]}).status_code == 400

    # the till's log: a record chained and its head signed with the till's key (taken on first use)
    from pos_app.core import till_log

    log_key = till_log.new_private_key()
    body = till_log.attempt_body(key=refused["key"], at=refused["at"], status="refused", reason=None, kind=None,
                                 voucher_id=None, jti=None, code=None, method="typed", staff_id=None,
                                 decided="offline", day="2030-01-01", store_id=api.store_id, till="Caja 1",
                                 input_text=None)
    record = {"seq": 1, "body": body, "hash": till_log.link(till_log.GENESIS, body)}
    head = {"seq": 1, "hash": record["hash"],
            "sig": till_log.sign_head(log_key, enrolled.json()["device_id"], 1, record["hash"])}
    logged = c.post("/till-log", headers=till, json={"public_key": till_log.public_key_of(log_key), "after": 0,
                                                     "records": [record], "head": head})
    assert logged.status_code == 200 and logged.json()["log"]["seq"] == 1
    assert c.post("/till-log", headers=till, json={"after": 0}).status_code == 400

    feed = c.get("/feed", headers=till, params={"limit": 5})
    assert feed.status_code == 200 and feed.json()["more"] is True
    cursor = 0
    while True:
        page = c.get("/feed", headers=till, params={"after": cursor, "limit": 7}).json()
        cursor = page["cursor"]
        if not page["more"]:
            break
    types = {e["type"] for e in c.get("/feed", headers=other).json()["events"]}
    assert types == {"voucher", "printed_code", "staff", "claim", "revocation", "redemption", "lan"}
    assert c.get("/feed", headers=till, params={"after": "-1"}).status_code == 400

    # voids: at the backend (a manager in person, or the admin) and from a till's outbox
    manager = next(s for s in api.demo["staff"] if s["role"] == "manager")
    cashier = next(s for s in api.demo["staff"] if s["role"] == "cashier")
    as_manager = {**till, "X-Pika-Staff": manager["id"], "X-Pika-Pin": manager["pin"]}
    void = lambda k, headers, body: c.post(f"/redemptions/{k}/void", headers=headers, json=body)  # noqa: E731
    assert void(key, as_manager, {"reason": "Cliente devolvió el café 🧉"}).status_code == 201
    assert void(key, admin, {"reason": "otra vez"}).status_code == 409
    assert void(new_key(), admin, {"reason": "x"}).status_code == 404
    assert void(refused["key"], admin, {"reason": "x"}).status_code == 422
    assert void(key, admin, {"reason": 5}).status_code == 400
    assert void(key, admin, {"reason": "x", "extra": 1}).status_code == 400
    assert void(key, {**till, "X-Pika-Staff": cashier["id"], "X-Pika-Pin": cashier["pin"]},
                {"reason": "x"}).status_code == 403
    printed_key = new_key()
    assert redeem(till, "CAFE50", method="printed", key=printed_key).status_code == 201
    void_entry = {"type": "void", "key": new_key(), "at": 1_700_000_300, "redemption_key": printed_key,
                  "void_reason": "wrong coupon", "staff_id": manager["id"]}
    assert c.post("/sync", headers=till, json={"entries": [void_entry]}).json()["results"][0]["status"] == "recorded"
    assert c.post("/sync", headers=till, json={"entries": [{**void_entry, "accepted": True}]}).status_code == 400
    assert c.post("/sync", headers=till, json={"entries": [{**refused, "void_reason": "x"}]}).status_code == 400
    no_key = {name: value for name, value in void_entry.items() if name != "redemption_key"}
    assert c.post("/sync", headers=till, json={"entries": [no_key]}).status_code == 400
    assert {e["type"] for e in c.get("/feed", headers=other).json()["events"]} >= {"void"}

    # staff in person (who, a new PIN, the lockout), the lockouts and a retailer's settings
    fay = c.post("/staff", headers=admin, json={"retailer_id": retailer_id, "store_id": store_id, "name": "Fay",
                                                "role": "cashier", "pin": "1357"}).json()
    as_fay = {**till, "X-Pika-Staff": fay["id"], "X-Pika-Pin": "1357"}
    assert c.get("/staff/me", headers=as_fay).status_code == 200
    assert c.get("/staff/me", headers=till).status_code == 400
    assert c.post("/staff/me/pin", headers=as_fay, json={"pin": "12"}).status_code == 400
    assert c.post("/staff/me/pin", headers=as_fay, json={"pin": "97531"}).status_code == 200
    assert [c.get("/staff/me", headers=as_fay).status_code for _ in range(5)] == [401] * 4 + [429]
    assert c.post("/staff/me/pin", headers={**as_fay, "X-Pika-Pin": "97531"}, json={"pin": "1111"}).status_code \
        == 429
    assert c.get("/pin-lockouts", headers=admin).status_code == 200
    assert c.get("/pin-lockouts", headers=till).status_code == 401
    # the operator's staff: listed, shown, changed, given a PIN, disabled (tills told to forget) and enabled
    assert c.get("/staff", headers=admin, params={"include_disabled": "true"}).status_code == 200
    assert c.get("/staff", headers=admin, params={"include_disabled": "maybe"}).status_code == 400
    assert c.get(f"/staff/{fay['id']}", headers=admin).status_code == 200
    assert c.get(f"/staff/{missing}", headers=admin).status_code == 404
    assert c.post(f"/staff/{fay['id']}", headers=admin, json={"name": "Fay B.", "role": "manager",
                                                              "store_id": None}).status_code == 200
    assert c.post(f"/staff/{fay['id']}", headers=admin, json={"name": 5}).status_code == 400
    assert c.post(f"/staff/{fay['id']}/pin", headers=admin, json={"pin": "246813"}).status_code == 200
    assert c.post(f"/staff/{fay['id']}/pin", headers=admin, json={"pin": "1"}).status_code == 400
    for action in ("disable", "enable"):
        assert c.post(f"/staff/{fay['id']}/{action}", headers=admin).status_code == 200
        assert c.post(f"/staff/{missing}/{action}", headers=admin).status_code == 404
    assert "staff_removed" in {e["type"] for e in c.get("/feed", headers=till).json()["events"]}
    audit = c.get("/audit", headers=admin, params={"limit": 3}).json()
    assert len(audit["records"]) == 3 and audit["more"]
    assert c.get("/audit", headers=admin, params={"since": "later"}).status_code == 400
    assert c.post(f"/retailers/{retailer_id}/settings", headers=admin, json={"staff_anywhere": True}).status_code \
        == 200
    assert c.post(f"/retailers/{missing}/settings", headers=admin, json={"staff_anywhere": False}).status_code \
        == 404
    assert c.post(f"/retailers/{retailer_id}/settings", headers=admin, json={"offline_days": 5}).status_code == 200
    assert c.post(f"/retailers/{retailer_id}/settings", headers=admin, json={}).status_code == 400

    # the operator's tills: what they report, rename, roll (and enroll again with its code), revoke
    third = api.enroll("Caja 3")
    assert c.post("/sync", headers={**third.auth, "User-Agent": "pika-till/1.0"},
                  json={"entries": [], "till": {"app_version": "1.0.1", "outbox": 2,
                                                "outbox_oldest_at": time.time() - 60}}).status_code == 200
    assert c.post("/sync", headers=third.auth, json={"entries": [], "till": {"outbox": "many"}}).status_code == 400
    assert c.get("/devices", headers=admin, params={"store_id": store_id}).status_code == 200
    assert c.get("/devices", headers=admin, params={"store_id": "x" * 65}).status_code == 400
    assert c.get(f"/devices/{third.id}", headers=admin).status_code == 200
    assert c.get(f"/devices/{missing}", headers=admin).status_code == 404
    assert c.post(f"/devices/{third.id}/rename", headers=admin, json={"name": "Caja tres"}).status_code == 200
    assert c.post(f"/devices/{third.id}/rename", headers=admin, json={"name": 3}).status_code == 400
    rolled = c.post(f"/devices/{third.id}/roll", headers=admin, json={"ttl_s": 3600})
    assert rolled.status_code == 200
    assert c.get("/catalog", headers=third.auth).json()["error"]["code"] == "device_rolled"
    assert c.post("/devices/enroll", json={"code": rolled.json()["code"], "name": "x"}).status_code == 201
    assert c.post(f"/devices/{third.id}/roll", headers=admin, json={"ttl_s": 1}).status_code == 400
    assert c.post(f"/devices/{third.id}/revoke", headers=admin, json={"reason": "robada"}).status_code == 200
    assert c.post(f"/devices/{third.id}/revoke", headers=admin).status_code == 200  # again, no body: the same
    assert c.post(f"/devices/{third.id}/revoke", headers=admin, json={"reason": 1}).status_code == 400
    assert c.post(f"/devices/{third.id}/roll", headers=admin).status_code == 409

    exercise_booklet_endpoints(api)

    # the manager's report, as JSON and CSV, and refused
    # the redemption, the conflict and the refusal above: today, by the backend's clock
    day = {"date": local_day(time.time(), "America/Asuncion"), "store": store_id}
    assert c.get("/reports/daily", headers=admin, params=day).json()["conflicts"]["count"] == 1
    assert c.get("/reports/daily", headers=admin, params=day).json()["voids"]["count"] == 2  # both redeemed today
    assert c.get("/reports/daily", headers=admin, params={"date": day["date"], "retailer": retailer_id}).json()[
        "timezone"] is None  # Sucursal 2 is in São Paulo
    assert c.get("/reports/daily", headers=admin, params={**day, "format": "csv"}).status_code == 200
    assert c.get("/reports/daily", headers=admin, params={"date": "2025-02-30", "store": store_id}).status_code == 400

    # reconciliation's findings (tests/test_findings_api.py): a till's outbox stuck three days
    assert c.post("/sync", headers=other, json={"entries": [], "till": {
        "outbox": 1, "outbox_oldest_at": time.time() - 3 * 86400, "parked": 0, "parked_oldest_at": None}}).status_code == 200
    assert c.post("/reconcile", headers=admin).json()["by_code"]["outbox_stuck"] == 1
    assert c.post("/reconcile", headers=admin, json={"retailer_id": missing}).status_code == 404
    stuck = c.get("/findings", headers=admin, params={"code": "outbox_stuck", "state": "all"}).json()["findings"][0]
    assert c.get("/findings", headers=admin, params={"limit": "many"}).status_code == 400
    assert c.post(f"/findings/{stuck['id']}/resolve", headers=admin, json={"note": "Caja 2 reiniciada"}).status_code == 200
    assert c.post(f"/findings/{stuck['id']}/resolve", headers=admin, json={"note": "otra vez"}).status_code == 409

    # no route, wrong method
    assert c.get("/nowhere").status_code == 404
    assert c.delete("/retailers", headers=admin).status_code == 405

    operations = set(contract.operations)
    assert {(m, t) for m, t, kind in contract.seen if kind == "ok"} == operations, "every endpoint once succeeds"
    assert {(m, t) for m, t, kind in contract.seen if kind == "error"} == operations, "every endpoint once fails"
    with_body = {key for key, op in contract.operations.items() if "requestBody" in op}
    assert contract.specs_checked == with_body, "every body the app checks was compared with its schema"


def test_spec_mismatch_is_caught():
    """The spec comparison is not vacuous: a field of another type, length or requiredness fails."""
    contract = Contract(load_doc())
    op = contract.operations[("POST", f"{API}/stores")]
    good = {"retailer_id": (validation.STR, True, 64), "name": (validation.STR, True, 200),
            "timezone": (validation.STR, False, 64)}
    contract.assert_spec_declared(op, "body", good, "stores")
    for bad in ({**good, "timezone": (validation.STR, True, 64)},
                {**good, "name": (validation.STR, True, 100)},
                {**good, "name": (validation.INT, True, None)},
                {**good, "name": (validation.STR + validation.NONE, True, 200)},
                {**good, "extra": (validation.STR, False, None)}):
        with pytest.raises(AssertionError):
            contract.assert_spec_declared(op, "body", bad, "stores")
