"""Admin tokens with names and expiry, and their rotation with a grace (issue 15 item 3), on both engines.

An expired token is 401 `token_expired`; a rotated one works on for its grace
beside its replacement (same scope and name, shown once); the last unexpired
token of scope all cannot be revoked; every change is in the audit log, the
token never.
"""

from __future__ import annotations

import json

import pytest

from api_fixtures import bearer
from server_stub.__main__ import main
from server_stub.errors import Invalid, NotFound
from server_stub.operations import credentials

DAY = 24 * 3600


def _at(api, when: float):
    api.backend.clock = lambda: when


def _operator_id(api) -> str:
    return next(t["id"] for t in credentials.list_tokens(api.backend.ctx) if t["scope"] == "all")


def test_a_token_that_expired_is_refused_as_expired(api):
    made = credentials.create_token(api.backend.ctx, "all", "ops laptop", 30 * DAY)
    assert made["expires_at"] == pytest.approx(made["created_at"] + 30 * DAY)
    listed = next(t for t in credentials.list_tokens(api.backend.ctx) if t["id"] == made["id"])
    assert listed["expires_at"] == made["expires_at"] and listed["expired"] is False and "token" not in listed
    assert api.ok(api.client.get("/retailers", headers=bearer(made["token"])))
    _at(api, made["expires_at"] + 1)
    answer = api.client.get("/retailers", headers=bearer(made["token"]))
    assert answer.status_code == 401 and answer.json()["error"]["code"] == "token_expired", answer.text
    assert api.ok(api.client.get("/retailers", headers=api.admin))  # the operator's, made without expiry
    assert next(t for t in credentials.list_tokens(api.backend.ctx) if t["id"] == made["id"])["expired"] is True


def test_a_rotated_token_works_for_its_grace_beside_its_replacement(api):
    app = credentials.create_token(api.backend.ctx, "claims", "customer app", 90 * DAY)
    new = credentials.rotate_token(api.backend.ctx, app["id"], grace_s=3600)
    assert (new["scope"], new["name"]) == ("claims", "customer app") and new["token"] != app["token"]
    assert new["replaces"]["id"] == app["id"]
    assert new["replaces"]["expires_at"] == pytest.approx(new["created_at"] + 3600)
    assert new["expires_at"] == pytest.approx(new["created_at"] + 90 * DAY)  # the old one's lifetime again
    claim_body = {"voucher_id": api.demo_voucher("personal")["id"], "customer_id": "c-rotated"}
    for token in (app["token"], new["token"]):
        assert api.ok(api.client.post("/claims", headers=bearer(token), json=claim_body), 201)
    _at(api, new["created_at"] + 3601)
    old = api.client.post("/claims", headers=bearer(app["token"]), json=claim_body)
    assert old.status_code == 401 and old.json()["error"]["code"] == "token_expired"
    assert api.ok(api.client.post("/claims", headers=bearer(new["token"]), json=claim_body), 201)
    # A grace never lengthens a token's life: one ending sooner keeps its end.
    short = credentials.create_token(api.backend.ctx, "claims", "short", 120)
    again = credentials.rotate_token(api.backend.ctx, short["id"], grace_s=7 * DAY)
    assert again["replaces"]["expires_at"] == pytest.approx(short["expires_at"])


def test_the_operator_token_rotated_leaves_an_operator(api):
    operator = _operator_id(api)
    new = credentials.rotate_token(api.backend.ctx, operator, grace_s=0)
    assert new["scope"] == "all" and new["expires_at"] is None
    refused = api.client.get("/retailers", headers=api.admin)
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "token_expired"
    assert api.ok(api.client.get("/retailers", headers=bearer(new["token"])))
    # The old operator token has expired: the new one is the last unexpired of scope all, and stays.
    with pytest.raises(Invalid) as refused:
        credentials.revoke_token(api.backend.ctx, new["id"])
    assert "last unexpired token of scope all" in refused.value.message
    assert credentials.revoke_token(api.backend.ctx, operator)["revoked"]  # the expired one may go


def test_bad_lifetimes_and_graces_are_refused_and_write_nothing(api):
    before = api.rows("SELECT * FROM admin_tokens")
    for expires_in in (0, -1, 59, 6 * 366 * DAY, float("inf"), float("nan"), True, "30d"):
        with pytest.raises(Invalid):
            credentials.create_token(api.backend.ctx, "claims", "bad", expires_in)
    operator = _operator_id(api)
    for grace in (-1, 8 * DAY, float("nan"), None):
        with pytest.raises(Invalid):
            credentials.rotate_token(api.backend.ctx, operator, grace_s=grace)
    with pytest.raises(Invalid):
        credentials.rotate_token(api.backend.ctx, operator, expires_in_s=10)
    with pytest.raises(Invalid):
        credentials.rotate_token(api.backend.ctx, "NOT-AN-ID")
    with pytest.raises(NotFound):
        credentials.rotate_token(api.backend.ctx, "0" * 12)
    assert api.rows("SELECT * FROM admin_tokens") == before


def test_the_token_commands_and_their_audit_records(api, capsys):
    data = ["--data", str(api.path)]
    assert main(["token", "create", "--scope", "claims", "--name", "app", "--expires-in", "30d", *data]) == 0
    made = json.loads(capsys.readouterr().out)
    assert made["expires_at"] == pytest.approx(made["created_at"] + 30 * DAY)
    assert main(["token", "rotate", "--grace", "2h", made["id"], *data]) == 0
    rotated = json.loads(capsys.readouterr().out)
    assert rotated["replaces"]["expires_at"] == pytest.approx(rotated["created_at"] + 7200)
    assert main(["token", "list", *data]) == 0
    listed = {t["id"]: t for t in json.loads(capsys.readouterr().out)["tokens"]}
    assert listed[made["id"]]["expires_at"] == pytest.approx(rotated["replaces"]["expires_at"])
    assert main(["token", "rotate", "--grace", "30d", made["id"], *data]) == 1
    assert "grace" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["token", "create", "--scope", "claims", "--name", "x", "--expires-in", "tomorrow", *data])
    assert main(["token", "revoke", rotated["id"], *data]) == 0
    records = api.rows("SELECT action, actor_kind, target, detail FROM audit_log WHERE action LIKE 'token.%' "
                       "ORDER BY id")
    assert [(a, k, t) for a, k, t, _ in records] == [("token.create", "shell", made["id"]),
                                                     ("token.rotate", "shell", made["id"]),
                                                     ("token.revoke", "shell", rotated["id"])]
    assert json.loads(records[1][3])["new_id"] == rotated["id"]
    for _, _, _, detail in records:  # never a token in the log
        assert made["token"] not in detail and rotated["token"] not in detail
