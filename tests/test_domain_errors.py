"""Operations refuse with domain errors and know no HTTP; the web layer alone turns each kind into a status."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

import server_stub
from server_stub import errors
from server_stub.http import STATUS, ApiError, Router, serve_request, status_of

PACKAGE = Path(server_stub.__file__).parent
# Below the web layer: none of these may import the HTTP plumbing (http.py) or the routes (app.py).
BELOW_THE_WEB = ["backend.py", "validation.py", "datadir.py", "demo.py"]

KINDS = [
    (errors.Invalid, 400), (errors.Unauthorized, 401), (errors.Forbidden, 403), (errors.NotFound, 404),
    (errors.Conflict, 409), (errors.TooLarge, 413), (errors.Unprocessable, 422), (errors.Busy, 503),
]


def answer(exc: Exception) -> tuple[int, dict]:
    """What the WSGI plumbing answers when a handler raises `exc`."""
    router = Router()

    def handler(request):
        raise exc
    router.add("GET", "/x", handler)
    seen = {}

    def start_response(status, headers):
        seen["status"] = int(status.split()[0])
    body = b"".join(serve_request(router, {"REQUEST_METHOD": "GET", "PATH_INFO": "/x"}, start_response))
    return seen["status"], json.loads(body)


@pytest.mark.parametrize("kind, status", KINDS, ids=[k.__name__ for k, _ in KINDS])
def test_each_kind_of_domain_error_is_answered_with_its_status(kind, status):
    got, body = answer(kind("some_code", "a message", {"winner": {"till": "Caja 2"}}))
    assert got == status
    assert body == {"error": {"code": "some_code", "message": "a message"}, "winner": {"till": "Caja 2"}}


def test_every_kind_has_a_status_and_a_subkind_inherits_its_kinds():
    kinds = {k for k in vars(errors).values() if isinstance(k, type) and issubclass(k, errors.DomainError)}
    assert kinds - {errors.DomainError} == set(STATUS)

    class Gone(errors.NotFound):
        pass
    assert status_of(Gone("gone", "it went")) == 404
    assert answer(Gone("gone", "it went"))[0] == 404


def test_an_http_only_error_keeps_its_own_status():
    assert answer(ApiError(415, "unsupported_media_type", "send application/json")) == (
        415, {"error": {"code": "unsupported_media_type", "message": "send application/json"}})


def below_the_web() -> list[Path]:
    files = [PACKAGE / name for name in BELOW_THE_WEB]
    for package in ("operations", "storage"):
        files += sorted((PACKAGE / package).glob("*.py"))
    return files


def imported(path: Path) -> set[str]:
    """The modules a file imports, relative ones named as written (`.http`, `..app`)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            names.add(base)
            if not node.module:  # `from . import http`
                names.update(base + alias.name for alias in node.names)
    return names


@pytest.mark.parametrize("path", below_the_web(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_operation_imports_the_web_layer(path):
    web = {name for name in imported(path)
           if name.lstrip(".").split(".")[-1] in ("http", "app") or name in ("server_stub.http", "server_stub.app")}
    assert not web, f"{path.name} imports {sorted(web)}"


def test_the_import_check_sees_an_http_import(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("from ..http import ApiError\nfrom . import app\nimport json\n")
    assert {"..http", ".app", "json"} <= imported(sample)


@pytest.mark.allow_log_warnings(r"^enrollment refused from ")
def test_operations_refuse_with_domain_errors_and_answer_with_data(api):
    """Called without the web layer, an operation raises the kind the routes map (and returns plain data)."""
    backend = api.backend
    with pytest.raises(errors.NotFound) as missing:
        backend.get_voucher("vch_nothing")
    assert (missing.value.code, missing.value.message) == ("not_found", "no such voucher")
    with pytest.raises(errors.Invalid, match="IANA"):
        backend.create_store(api.retailer_id, "Sucursal", "Mars/Olympus")
    with pytest.raises(errors.Unauthorized):
        backend.require_device("not-a-token")
    with pytest.raises(errors.Forbidden) as refused:
        backend.enroll("AAAA-AAAA", "Caja")
    assert refused.value.code == "invalid_enrollment_code"
    till = api.enroll()
    device = backend.require_device(till.token)
    first = backend.redeem(device, "key-00000001", {"input": api.printed_code, "method": "typed"})
    assert (first.status, first.body["accepted"]) == (201, True)
    assert backend.lookup_redemption(device, "key-00000001") == {"status": 201, "answer": first.body}
    with pytest.raises(errors.NotFound):
        backend.lookup_redemption(device, "key-00000002")
