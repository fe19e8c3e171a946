"""`python -m pos_app export-log` and `verify-log`: an export of a whole log checks, and each kind of edit —
of the exported file, or of the till's file before the export — is found and named (exit 1); a file that is
not an export (garbage, oversize, odd Unicode) is said so (exit 2). Real store files, real processes for
the main path, the commands' own `main` for the many files."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from pos_app.cli.commands import main
from pos_app.core import till_log
from test_till_log_store import NOW, fill, hand_edit, key, make_store, pin_hash  # noqa: F401 (fixtures)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def till(tmp_path, key, pin_hash):
    """A till's data folder with records of each kind, its store closed (the commands open it)."""
    store = make_store(tmp_path / "till", key, pin_hash, log_private_key=till_log.new_private_key())
    keys = fill(store, key, n=8)
    store.redeem_offline("next day", method="typed", now=NOW + 86_400)
    public = store.log_public_key()
    store.close()
    return tmp_path / "till", keys, public


def pos(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pos_app", *args], capture_output=True, text=True, timeout=60,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})


def run(capsys, *args: str) -> tuple[int, dict | None, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, json.loads(out) if out.strip() else None, err


def export(capsys, data: Path, out: Path, *extra: str) -> dict:
    code, summary, err = run(capsys, "export-log", "--data", str(data), "--out", str(out), *extra)
    assert code == 0, err
    return summary


def codes(result: dict) -> set[str]:
    return {problem["code"] for problem in result["problems"]}


# --- whole -------------------------------------------------------------------------------


def test_an_export_of_the_whole_log_verifies_with_the_tills_key(till, tmp_path):
    data, _, public = till
    out = tmp_path / "log.json"
    done = pos("export-log", "--data", str(data), "--out", str(out))
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["records"] == 14 and summary["first_seq"] == 1 and summary["last_seq"] == 14
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    exported = json.loads(out.read_text("utf-8"))
    assert exported["format"] == "pika-till-log/1" and exported["public_key"] == public
    assert exported["device_id"] == "dev-1" and exported["after"] == 0 and exported["prev"] == till_log.GENESIS
    checked = pos("verify-log", str(out), "--public-key", public)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert json.loads(checked.stdout) == {"ok": True, "records": 14, "device_id": "dev-1", "problems": []}
    again = pos("export-log", "--data", str(data), "--out", str(out))  # never over an existing file
    assert again.returncode == 1 and "exists already" in again.stderr


def test_an_export_of_some_days_is_a_contiguous_piece_that_verifies(till, tmp_path, capsys):
    data, _, _ = till
    first = export(capsys, data, tmp_path / "first.json", "--until", "2025-10-09")
    second = export(capsys, data, tmp_path / "second.json", "--since", "2025-10-10", "--until", "2025-10-10")
    empty = export(capsys, data, tmp_path / "empty.json", "--since", "2025-11-01")
    assert (first["first_seq"], first["last_seq"]) == (1, 13) and (second["first_seq"], second["last_seq"]) == (14, 14)
    assert empty["records"] == 0
    piece = json.loads((tmp_path / "second.json").read_text())
    assert piece["after"] == 13 and piece["prev"] == json.loads((tmp_path / "first.json").read_text())["head"]["hash"]
    for name in ("first", "second", "empty"):
        code, result, _ = run(capsys, "verify-log", str(tmp_path / f"{name}.json"))
        assert code == 0 and result["ok"], (name, result)


# --- edits of the exported file --------------------------------------------------------------


def _drop(doc, seq):
    doc["records"] = [r for r in doc["records"] if r["seq"] != seq]


def _edit_body(doc, seq):
    record = next(r for r in doc["records"] if r["seq"] == seq)
    assert '"refused"' in record["body"]
    record["body"] = record["body"].replace('"refused"', '"accepted"')  # a refusal shown as an acceptance


def _swap(doc, a, b):
    records = doc["records"]
    i, j = a - 1, b - 1
    records[i], records[j] = {**records[j], "seq": a}, {**records[i], "seq": b}


def _cut(doc, count):
    doc["records"] = doc["records"][:-count]


def _resign(doc, other_key):
    doc["head"]["sig"] = till_log.sign_head(other_key, doc["device_id"], doc["head"]["seq"], doc["head"]["hash"])


FILE_EDITS = {
    "a record deleted": (lambda d, k: _drop(d, 5), till_log.GAP, 5),
    "a record's body edited": (lambda d, k: _edit_body(d, 2), till_log.EDITED, 2),
    "two records swapped": (lambda d, k: _swap(d, 3, 4), till_log.REORDERED, 3),
    "the last records cut off": (lambda d, k: _cut(d, 2), till_log.REWOUND, 14),
    "the head re-signed by another key": (lambda d, k: _resign(d, k), till_log.BAD_SIGNATURE, 14),
    "the head moved to an edited record": (lambda d, k: d["head"].update(hash="f" * 64), till_log.EDITED, 14),
    "the record before changed": (lambda d, k: d.update(prev="e" * 64), till_log.EDITED, 1),
    "a record's seq renumbered": (lambda d, k: d["records"][6].update(seq=6), till_log.REORDERED, 6),
}


@pytest.mark.parametrize("edit", list(FILE_EDITS))
def test_each_edit_of_the_exported_file_is_found_and_named(till, tmp_path, capsys, edit):
    data, _, public = till
    out = tmp_path / "log.json"
    export(capsys, data, out)
    doc = json.loads(out.read_text("utf-8"))
    change, code, seq = FILE_EDITS[edit]
    change(doc, till_log.new_private_key())
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(doc, ensure_ascii=False), "utf-8")
    status, result, _ = run(capsys, "verify-log", str(edited), "--public-key", public)
    assert status == 1 and result["ok"] is False, result
    assert any(p["code"] == code and seq in p["seqs"] and p["message"] for p in result["problems"]), result


def test_the_files_own_key_is_not_the_tills_when_another_is_given(till, tmp_path, capsys):
    data, _, public = till
    out = tmp_path / "log.json"
    export(capsys, data, out)
    doc = json.loads(out.read_text("utf-8"))
    forger = till_log.new_private_key()
    doc["public_key"] = till_log.public_key_of(forger)
    _resign(doc, forger)
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(doc), "utf-8")
    assert run(capsys, "verify-log", str(forged))[0] == 0  # whole by its own (forged) key...
    status, result, _ = run(capsys, "verify-log", str(forged), "--public-key", public)  # ...not by the till's
    assert status == 1 and codes(result) == {till_log.BAD_SIGNATURE}


# --- edits of the till's file before the export -----------------------------------------------------


TILL_EDITS = {
    "a chain row deleted": ("DELETE FROM log_chain WHERE seq = 6", till_log.GAP, 6),
    "a chain body edited": ("UPDATE log_chain SET body = replace(body, '\"typed\"', '\"camera\"') WHERE seq = 9",
                            till_log.EDITED, 9),
    "two chain rows swapped": ("UPDATE log_chain SET seq = -1 WHERE seq = 7; UPDATE log_chain SET seq = 7 WHERE"
                               " seq = 8; UPDATE log_chain SET seq = 8 WHERE seq = -1", till_log.REORDERED, 7),
    "the first rows deleted": ("DELETE FROM log_chain WHERE seq <= 2", till_log.GAP, 1),
}


@pytest.mark.parametrize("edit", list(TILL_EDITS))
def test_each_edit_of_the_tills_file_before_the_export_is_found(till, tmp_path, capsys, edit):
    data, _, public = till
    sql, code, seq = TILL_EDITS[edit]
    hand_edit(data / "till.sqlite3", sql)
    out = tmp_path / "log.json"
    export(capsys, data, out)
    status, result, _ = run(capsys, "verify-log", str(out), "--public-key", public)
    assert status == 1, result
    assert any(p["code"] == code and seq in p["seqs"] for p in result["problems"]), result


# --- files that are not exports --------------------------------------------------------------------


def _valid(till, tmp_path, capsys) -> str:
    out = tmp_path / "valid.json"
    export(capsys, till[0], out)
    return out.read_text("utf-8")


NOT_EXPORTS = {
    "empty": lambda valid: b"",
    "not JSON": lambda valid: b"hello, auditor",
    "a JSON array": lambda valid: b"[1, 2, 3]",
    "another format": lambda valid: valid.replace("pika-till-log/1", "pika-till-outbox/1").encode(),
    "not UTF-8": lambda valid: valid.encode("utf-8")[:50] + b"\xff\xfe\xc3" + valid.encode("utf-8")[50:],
    "UTF-16": lambda valid: valid.encode("utf-16"),
    "a lone surrogate": lambda valid: valid.replace('"device_id": "dev-1"', '"device_id": "dev-1\\udc80"').encode(),
    "a lone surrogate in a body": lambda valid: valid.replace('\\"attempt\\",', '\\"attempt\\ud800\\",', 1).encode(),
    "a NaN": lambda valid: valid.replace('"after": 0', '"after": NaN').encode(),
    "deep nesting": lambda valid: b"[" * 100_000 + b"]" * 100_000,
    "records not a list": lambda valid: json.dumps({**json.loads(valid), "records": {"1": "x"}}).encode(),
    "a record not an object": lambda valid: json.dumps({**json.loads(valid), "records": ["x"]}).encode(),
    "after a text": lambda valid: json.dumps({**json.loads(valid), "after": "0"}).encode(),
    "prev not a hash": lambda valid: json.dumps({**json.loads(valid), "prev": "0" * 63 + "Z"}).encode(),
    "no head": lambda valid: json.dumps({k: v for k, v in json.loads(valid).items() if k != "head"}).encode(),
    "a key that is not one": lambda valid: json.dumps({**json.loads(valid), "public_key": "ñ" * 44}).encode(),
}


@pytest.mark.parametrize("kind", list(NOT_EXPORTS))
def test_a_file_that_is_not_an_export_is_said_so_with_exit_2(till, tmp_path, capsys, kind):
    bad = tmp_path / "bad.json"
    bad.write_bytes(NOT_EXPORTS[kind](_valid(till, tmp_path, capsys)))
    status, result, err = run(capsys, "verify-log", str(bad))
    assert status == 2, (result, err)
    assert result["ok"] is False and result["error"]["code"] == "unreadable" and result["error"]["message"]
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err


def test_an_oversize_file_a_directory_and_a_missing_file_are_exit_2(tmp_path, capsys):
    huge = tmp_path / "huge.json"
    with open(huge, "wb") as handle:
        handle.truncate(257 << 20)  # sparse: refused by its size, never read
    assert run(capsys, "verify-log", str(huge))[2].count("MiB") == 1
    for path in (huge, tmp_path, tmp_path / "missing.json"):
        assert run(capsys, "verify-log", str(path))[0] == 2
    status, _, err = run(capsys, "verify-log", str(tmp_path / "missing.json"), "--public-key", "short")
    assert status == 2 and "cannot be read" in err


def test_export_log_refuses_bad_days_and_a_folder_without_a_till(till, tmp_path, capsys):
    data, _, _ = till
    for extra in (("--since", "2025-13-01"), ("--since", "10/09/2025"), ("--since", "2025-10-10", "--until",
                                                                          "2025-10-09"), ("--until", "２０２５-10-09")):
        status, _, err = run(capsys, "export-log", "--data", str(data), "--out", str(tmp_path / "x.json"), *extra)
        assert status == 2 and err.startswith("error: "), extra
    status, _, err = run(capsys, "export-log", "--data", str(tmp_path / "nothing"), "--out", str(tmp_path / "y.json"))
    assert status == 2 and "no till store" in err
    assert not (tmp_path / "x.json").exists() and not (tmp_path / "nothing").exists()
    status, _, _ = run(capsys, "verify-log", str(tmp_path / "log.json"), "--public-key", "not a key")
    assert status == 2
