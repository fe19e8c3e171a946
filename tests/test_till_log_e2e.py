"""The till's tamper-evident log end to end, as an operator and an attacker meet it: a real `serve` on a
loopback port (one per engine for the module), real `python -m pos_app enroll/redeem/sync/export-log/
verify-log` and `python -m server_stub verify-till-log/backup/restore` processes, and real SQLite till
files edited with plain sqlite3.

1. A till that redeems online and offline (accepted and refused), voids one and syncs: no finding, and
   the backend's copy of its log verifies.
2. Each hand edit of a till's file, each in a till of its own: an attempt row deleted, an attempt's time
   changed, a void deleted, a log_chain row deleted, a log_chain body edited, two log_chain rows swapped,
   the file put back from an older copy; the first ones both before and after the records were sent.
   After the next sync, GET /api/v1/findings names that till and those records with the codes the
   backend gives, and the console's findings page shows each of them by the till's name to a signed-in
   operator.
3. A till killed with kill -9 while it redeems and syncs (two loops of real commands), then a normal
   sync: no finding, the copy verifies, the till's own check finds nothing.
4. An export of a till's log verifies at the backend and at the till; the same file with one body edited
   is exit 1 naming that record.
5. The backend put back from a backup while the till redeemed on: the till sends again what the restored
   backend lacks, with no finding, and the copy verifies. Last: it takes the module's backend back.

Each round checks the records it is about to send; records sent already are checked every 30 s (the
setting log_check), which the test makes due by putting the check's last run back instead of waiting.
The edits' tills redeem through the till's own code in this process (`pos_app.sync.redeem`, what the
`redeem` command runs), in threads, and enroll and sync with the real commands, so the module stays
within a minute on both engines. A void has no command: it is made through the till's store, as the
window's Void… does.
"""

from __future__ import annotations

import html
import itertools
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from pos_app.core import till_log
from pos_app.core.domain import Method
from pos_app.store import TillStore, chain
from pos_app.sync.client import BackendClient
from pos_app.sync.redeem import redeem

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
import sync_kill_soak as soak  # noqa: E402  (the benches' backend process: start, stop)

pytestmark = pytest.mark.slow
STORE_FILE = "till.sqlite3"
PRINTED = "CAFE50"  # the demo's booklet code
ZONE = ZoneInfo("America/Asuncion")  # the demo store's
EXIT_OK, EXIT_PROBLEMS, EXIT_REFUSED = 0, 1, 3
VOID = "void"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
_CARD = re.compile(r'<li class="card finding [a-z]+" data-id="(\d+)" data-code="([a-z_]+)">(.*?)</li>', re.S)


def cli(*args, expect: int | None = EXIT_OK, timeout: float = 60) -> tuple[int, dict]:
    """`python -m ARGS` from the checkout: its exit code and its last JSON line."""
    done = subprocess.run([sys.executable, "-m", *map(str, args)], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)
    if expect is not None:
        assert done.returncode == expect, f"{args}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    lines = done.stdout.strip().splitlines()
    return done.returncode, json.loads(lines[-1]) if lines else {}


def hand_edit(path: Path, sql: str, params: tuple = ()) -> None:
    """What someone with the PC and the sqlite3 shell does: no pragmas, no till code."""
    conn = sqlite3.connect(path)
    try:
        conn.executescript(sql) if not params else conn.execute(sql, params)
        conn.commit()
    finally:
        conn.close()


def rows(path: Path, sql: str, params: tuple = ()) -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


@dataclass
class Till:
    world: "World"
    name: str
    data: Path
    device_id: str = ""

    @property
    def file(self) -> Path:
        return self.data / STORE_FILE

    def redeem(self, code: str, *, offline: bool = False, printed: bool = False, accepted: bool = True) -> dict:
        """`python -m pos_app redeem`: the verdict it printed."""
        args = ["pos_app", "redeem", "--data", self.data, *(["--offline"] if offline else []),
                *(["--printed"] if printed else []), code]
        _, out = cli(*args, expect=EXIT_OK if accepted else EXIT_REFUSED)
        assert out["accepted"] is accepted and out["decided"] == ("offline" if offline else "online"), out
        return out

    def redeem_here(self, *steps) -> None:
        """Redemptions through the till's own code in this process (what `redeem` runs), and voids:
        steps (code, "online" | "offline" | "printed", accepted) or VOID (of the last accepted one)."""
        with TillStore(self.file) as store, BackendClient(self.world.url, store.device_token, timeout=5) as client:
            for step in steps:
                if step == VOID:
                    self._void(store)
                    continue
                code, how, accepted = step
                outcome = redeem(store, code, method=Method.PRINTED if how == "printed" else Method.TYPED,
                                 client=None if how == "offline" else client)
                assert outcome.verdict.accepted is accepted, (step, outcome.to_json())
                assert outcome.decided == ("offline" if how == "offline" else "online"), (step, outcome.to_json())

    def void_last_accepted(self) -> str:
        with TillStore(self.file) as store:
            return self._void(store)

    def _void(self, store: TillStore) -> str:
        """A manager's void of the till's last accepted redemption (the window's Void…): the void's key."""
        manager = self.world.manager
        key = store.conn.execute("SELECT key FROM attempts WHERE accepted = 1 ORDER BY at DESC LIMIT 1").fetchone()[0]
        return store.void(key, reason="cliente se arrepintió", staff_id=manager["id"], pin=manager["pin"])["id"]

    def sync(self) -> dict:
        _, out = cli("pos_app", "sync", "--data", self.data)
        assert out["error"] is None, out
        return out

    def chain(self) -> list[tuple]:
        return rows(self.file, "SELECT seq, key, body, hash FROM log_chain ORDER BY seq")

    def findings(self) -> dict[str, dict]:
        """The open findings about this till, by code (one open finding per code and till)."""
        found = [f for f in self.world.findings() if self.device_id in (f["subject"], f["device_id"])]
        by_code = {f["code"]: f for f in found}
        assert len(by_code) == len(found), found
        return by_code

    def verify(self) -> tuple[int, dict]:
        """`server_stub verify-till-log`: the backend's whole copy of this till's log."""
        return cli("server_stub", "verify-till-log", "--data", self.world.data, self.device_id, expect=None)


@dataclass
class World:
    data: Path
    root: Path
    backend: soak.BackendProcess
    admin: str
    demo: dict
    http: httpx.Client
    database: str | None
    cluster: object = None
    dropped: list[str] = field(default_factory=list)  # PostgreSQL databases made here, dropped at the end
    names: itertools.count = field(default_factory=lambda: itertools.count(1))  # taken from threads too

    @property
    def url(self) -> str:
        return self.backend.url

    @property
    def manager(self) -> dict:
        return next(s for s in self.demo["staff"] if s["role"] == "manager")

    def enroll(self, name: str) -> Till:
        """`python -m pos_app enroll` with a new code of the demo store (it syncs once)."""
        code = self.http.post("/enrollment-codes", json={"store_id": self.demo["store_id"]})
        assert code.status_code == 201, code.text
        till = Till(self, name, self.root / f"till{next(self.names)}")
        _, out = cli("pos_app", "enroll", "--data", till.data, "--server", self.url, "--code", code.json()["code"],
                     "--name", name)
        till.device_id = out["device_id"]
        return till

    def claim(self, part: str = "token") -> str:
        """A new personal code's token, or its short code (the customer's app shows both)."""
        personal = next(v for v in self.demo["vouchers"] if v["kind"] == "personal")
        answer = self.http.post("/claims", json={"voucher_id": personal["id"], "customer_id": f"c{next(self.names)}"})
        assert answer.status_code == 201, answer.text
        return answer.json()[part]

    def findings(self) -> list[dict]:
        answer = self.http.get("/findings", params={"state": "open", "limit": 500})
        assert answer.status_code == 200, answer.text
        return answer.json()["findings"]


@pytest.fixture(scope="module")
def world(module_backend_database, tmp_path_factory, request):
    """One backend per engine for the module (`init`, `demo-data`, `serve` as the README says)."""
    root = tmp_path_factory.mktemp("till-log-e2e")
    data = root / "backend"
    over = ("--database", module_backend_database) if module_backend_database else ()
    _, init = cli("server_stub", "init", "--data", data, *over)
    _, demo = cli("server_stub", "demo-data", "--data", data)
    cluster = request.getfixturevalue("pg_cluster") if module_backend_database else None
    backend = soak.BackendProcess(data, database=module_backend_database).start()
    http = httpx.Client(base_url=backend.url + "/api/v1", headers={"Authorization": f"Bearer {init['admin_token']}"},
                        timeout=10)
    made = World(data, root, backend, init["admin_token"], demo, http, module_backend_database, cluster)
    try:
        yield made
    finally:
        http.close()
        made.backend.stop()
        for name in made.dropped:
            cluster.drop_database(name)


@pytest.fixture(scope="module")
def console(world):
    """An operator signed in at the console of the module's backend, over real HTTP as a browser would."""
    client = httpx.Client(base_url=world.url, follow_redirects=False, timeout=10)
    page = client.get("/console/sign-in")
    assert page.status_code == 200, page.text[:300]
    token = html.unescape(_CSRF.findall(page.text)[-1])
    signed = client.post("/console/sign-in", data={"how": "token", "token": world.admin, "csrf": token})
    assert signed.status_code == 303, signed.text[:300]
    yield client
    client.close()


def console_cards(console) -> dict[int, tuple[str, str]]:
    """The findings page's cards by finding id: (code, the card's text)."""
    page = console.get("/console/findings")
    assert page.status_code == 200, page.text[:300]
    return {int(fid): (code, " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split()))
            for fid, code, body in _CARD.findall(page.text)}


# --- 1. a clean till -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clean(world):
    """A till that redeemed with the real command online and offline, accepted and refused, voided one,
    and synced: records 1 printed online, 2 token offline, 3 refusal offline, 4 short code online, 5 the
    void of 4, 6 printed offline."""
    till = world.enroll("Caja Limpia")
    till.redeem(PRINTED, printed=True)
    till.redeem(world.claim(), offline=True)
    till.redeem("NO-ES-UN-CODIGO", offline=True, accepted=False)
    till.redeem(world.claim("short_code"))
    till.void_last_accepted()
    till.redeem(PRINTED, printed=True, offline=True)
    return till, till.sync()


def test_a_till_that_redeems_online_and_offline_and_voids_one_syncs_with_no_finding(clean):
    till, summary = clean
    assert summary["log_status"] == "ok" and summary["log_sent"] == 6 and summary["outbox"] == 0, summary
    assert [json.loads(body)[0] for _, _, body, _ in till.chain()] == ["attempt"] * 4 + ["void", "attempt"]
    assert till.findings() == {}
    status, result = till.verify()
    assert status == EXIT_OK and result["ok"] and result["problems"] == [], result
    assert result["records"] == 6 and result["head"]["seq"] == 6 and result["head"]["signed"], result


# --- 2. hand edits of a till's file ------------------------------------------------------------------------
#
# Each till: records 1-2 synced (an online acceptance, an offline refusal); then 3 an offline acceptance,
# 4 an online one, 5 an offline refusal, 6 the void of 4, 7 an offline refusal. Then the edit, either
# before 3-7 were sent (each round checks what it is about to send) or after (the rotating check, every
# 30 s, finds it: the test puts its last run back rather than wait), then `pos_app sync`.


def _delete_attempt(till: Till, keys: dict) -> None:
    # Its outbox entry too: the backend never hears of it from the till's queue.
    hand_edit(till.file, "DELETE FROM attempts WHERE key = ?", (keys[3],))
    hand_edit(till.file, "DELETE FROM outbox WHERE key = ?", (keys[3],))


def _move_attempt(till: Till, keys: dict) -> None:
    hand_edit(till.file, "UPDATE attempts SET at = at - 3600 WHERE key = ?", (keys[4],))


def _delete_void(till: Till, keys: dict) -> None:
    hand_edit(till.file, "DELETE FROM voids WHERE id = ?", (keys[6],))
    hand_edit(till.file, "DELETE FROM outbox WHERE key = ?", (keys[6],))


def _delete_chain_row(till: Till, keys: dict) -> None:
    hand_edit(till.file, "DELETE FROM log_chain WHERE seq = 5")


def _edit_chain_body(till: Till, keys: dict) -> None:
    body = rows(till.file, "SELECT body FROM log_chain WHERE seq = 5")[0][0]
    assert '"refused"' in body
    hand_edit(till.file, "UPDATE log_chain SET body = ? WHERE seq = 5", (body.replace('"refused"', '"accepted"'),))


def _swap_chain_rows(till: Till, keys: dict) -> None:
    hand_edit(till.file, "UPDATE log_chain SET seq = -1 WHERE seq = 4; UPDATE log_chain SET seq = 4 WHERE seq = 5;"
                         " UPDATE log_chain SET seq = 5 WHERE seq = -1")


REWIND = "rewound_to_an_older_copy"
UNSENT, SENT = "before_its_sync", "after_its_sync"
# case: (the change, when, {code: (seqs named, seqs whose keys the finding names)}). What the product gives,
# read from operations/till_logs.py and store/chain.py, and seen here.
CASES = {
    # The till's self-check (its `tampered`) finds the row gone or changed; the record itself is whole.
    "attempt_deleted": (_delete_attempt, UNSENT, {"log_row_missing": ([3], [3])}),
    "attempt_time_changed": (_move_attempt, UNSENT, {"log_row_changed": ([4], [4])}),
    "void_deleted": (_delete_void, UNSENT, {"log_row_missing": ([6], [6])}),
    # The records sent skip 5 (the backend's log_gap), and the self-check says it is gone.
    "chain_row_deleted": (_delete_chain_row, UNSENT, {"log_gap": ([5], []), "log_chain_missing": ([5], [])}),
    # A refusal made an acceptance in the log: it no longer links (log_edited), it says otherwise than the
    # refusal the till synced (log_mismatch), and than the till's own row (log_row_changed).
    "chain_body_edited": (_edit_chain_body, UNSENT, {"log_edited": ([5], []), "log_mismatch": ([5], [5]),
                                                     "log_row_changed": ([5], [5])}),
    # 4 and 5 out of order, and 6, untouched, links to the record that was 5 before the swap: moved, not
    # edited.
    "chain_rows_swapped": (_swap_chain_rows, UNSENT, {"log_reordered": ([4, 5, 6], [])}),
    # Put back from the copy of after record 2, the till chained a new record 3: the backend's 3 came again
    # changed (log_edited), and 4-7, which the till signed before, are gone (log_rewound, their keys named).
    REWIND: (None, SENT, {"log_edited": ([3], []), "log_rewound": ([4, 5, 6, 7], [4, 5, 6, 7])}),
    # After the backend holds 3-7: only the till's own check can say it, and does. (A time changed and a
    # void deleted are found by the same check as this attempt deleted.) Of the body edited, the row check
    # says it, and that it no longer links (log_edited: the backend holds it as it was); of two rows
    # swapped, that they no longer link.
    "attempt_deleted_after_its_sync": (_delete_attempt, SENT, {"log_row_missing": ([3], [3])}),
    "chain_row_deleted_after_its_sync": (_delete_chain_row, SENT, {"log_chain_missing": ([5], [])}),
    "chain_body_edited_after_its_sync": (_edit_chain_body, SENT, {"log_row_changed": ([5], [5]),
                                                                  "log_edited": ([5], [5])}),
    "chain_rows_swapped_after_its_sync": (_swap_chain_rows, SENT, {"log_edited": ([4, 5, 6], [4, 5, 6])}),
}


def _rotating_check_ran(till: Till, at: float) -> None:
    """The rotating self-check's last run said to be at `at` (the setting log_check): set back past its
    period, what 30 s of waiting does; set to now, a round right after finds nothing of records sent."""
    kept = json.loads(rows(till.file, "SELECT value FROM settings WHERE key = ?", (chain.CHECK,))[0][0])
    hand_edit(till.file, "UPDATE settings SET value = ? WHERE key = ?", (json.dumps({**kept, "at": at}), chain.CHECK))


def _prepare(world: World, case: str, token: str) -> dict:
    change, when, _ = CASES[case]
    till = world.enroll(f"Caja {case.replace('_', ' ')}")
    till.redeem_here((PRINTED, "printed", True), ("NADA-QUE-VER", "offline", False))
    first = till.sync()
    assert first["log_status"] == "ok" and first["log_sent"] == 2, first
    older = till.data / "older.sqlite3"
    assert not (till.data / (STORE_FILE + "-wal")).exists()  # closed: the whole state is the one file
    shutil.copyfile(till.file, older)
    till.redeem_here((token, "offline", True), (PRINTED, "printed", True), ("TAMPOCO", "offline", False),
                     VOID, ("NI-ESTE", "offline", False))
    keys = {seq: key for seq, key, _, _ in till.chain()}
    assert list(keys) == [1, 2, 3, 4, 5, 6, 7]
    quiet = None
    if when == SENT:
        synced = till.sync()
        assert synced["log_status"] == "ok" and synced["log_sent"] == 5, synced
    if change is None:
        shutil.copyfile(older, till.file)
        till.redeem_here(("OTRA-VEZ", "offline", False))
    else:
        if when == SENT:
            _rotating_check_ran(till, time.time())
        change(till, keys)
        if when == SENT:
            quiet = till.sync()  # within 30 s of the last check: nothing to send, nothing found yet
            _rotating_check_ran(till, time.time() - chain.SELF_CHECK_EVERY_S - 1)
    return {"till": till, "keys": keys, "quiet": quiet, "sync": till.sync()}


@pytest.fixture(scope="module")
def edited(world):
    """Every case's till, made at once."""
    tokens = {case: world.claim() for case in CASES}
    with ThreadPoolExecutor(max_workers=len(CASES)) as pool:
        made = {case: pool.submit(_prepare, world, case, tokens[case]) for case in CASES}
        return {case: future.result() for case, future in made.items()}


@pytest.mark.parametrize("case", list(CASES))
def test_each_hand_edit_of_a_tills_file_is_a_finding_naming_the_till_and_its_records(edited, console, case):
    made = edited[case]
    till, keys = made["till"], made["keys"]
    _, _, expected = CASES[case]
    if made["quiet"] is not None:
        assert made["quiet"]["log_status"] is None and made["quiet"]["log_sent"] == 0, made["quiet"]
    assert made["sync"]["log_status"] == "flagged", made["sync"]
    found = till.findings()
    assert {code: f["detail"]["seqs"] for code, f in found.items()} == \
        {code: seqs for code, (seqs, _) in expected.items()}
    for code, (_, named) in expected.items():
        finding = found[code]
        assert finding["subject"] == till.device_id and finding["device_id"] == till.device_id, finding
        assert finding["retailer_id"] == till.world.demo["retailer_id"], finding
        assert finding["store_id"] == till.world.demo["store_id"], finding
        assert finding["detail"]["device_id"] == till.device_id and finding["detail"]["till"] == till.name, finding
        assert finding["detail"]["keys"] == sorted(keys[seq] for seq in named), (code, finding["detail"])
    cards = console_cards(console)
    for code, finding in found.items():
        assert finding["id"] in cards, (code, finding["id"], sorted(cards))
        shown_code, text = cards[finding["id"]]
        assert shown_code == code and till.name in text, (code, text)
        assert till.device_id not in text  # named, not by id


# --- 3. kill -9 mid-work ----------------------------------------------------------------------------------


REDEEM_LOOP = """i=0; while true; do i=$((i+1))
  "$0" -m pos_app redeem --data "$1" --printed CAFE50
  "$0" -m pos_app redeem --data "$1" --offline --printed CAFE50
  "$0" -m pos_app redeem --data "$1" --offline "NADA-$i"
done"""
SYNC_LOOP = 'while true; do "$0" -m pos_app sync --data "$1"; done'


def log_records(path: Path) -> int:
    """The records in a till's log, read as another process would while its commands run."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        return conn.execute("SELECT count(*) FROM log_chain").fetchone()[0]
    finally:
        conn.close()


def test_a_till_killed_mid_work_then_synced_has_no_finding_and_its_log_verifies(world):
    till = world.enroll("Caja Cortada")
    for extra in (0.35, 0.8):  # once some work is done, a moment more: in the middle of some command's work
        loops = []
        try:
            before = log_records(till.file)
            for loop in (REDEEM_LOOP, SYNC_LOOP):
                loops.append(subprocess.Popen(["bash", "-c", loop, sys.executable, str(till.data)], cwd=ROOT,
                                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                              start_new_session=True))
            # By records made, not by seconds: a loaded machine starts each command slower.
            deadline = time.monotonic() + 90
            while log_records(till.file) < before + 3:
                assert time.monotonic() < deadline, "the loops made no records"
                time.sleep(0.05)
            time.sleep(extra)
        finally:
            for proc in loops:  # the shell and the command it runs, without warning
                os.killpg(proc.pid, signal.SIGKILL)
        for proc in loops:
            assert proc.wait(timeout=10) == -signal.SIGKILL
    summary = till.sync()
    assert summary["outbox"] == 0 and summary["log_status"] in ("ok", None), summary
    with TillStore(till.file) as store:
        assert store.log_self_check(whole=True) == []
        assert store.log_acked() == store.log_head()[0] > 4
        assert store.pending_online() == []
        records = store.log_since(0, 10_000)
    assert till_log.verify_segment(records) == []
    assert till.findings() == {}
    status, result = till.verify()
    assert status == EXIT_OK and result["ok"] and result["records"] == len(records), result


# --- 4. an export, and an export edited ----------------------------------------------------------------------


def test_an_export_verifies_at_the_backend_and_the_till_and_an_edited_one_names_its_record(world, clean, tmp_path):
    till, _ = clean
    since = (datetime.now(ZONE) - timedelta(days=1)).date().isoformat()  # the store's day before: all of it
    out = tmp_path / "log.json"
    _, summary = cli("pos_app", "export-log", "--data", till.data, "--since", since, "--out", out)
    assert (summary["records"], summary["first_seq"], summary["last_seq"]) == (6, 1, 6), summary
    assert summary["device_id"] == till.device_id
    registered = till.verify()[1]["public_key"]
    assert summary["public_key"] == registered
    status, result = cli("server_stub", "verify-till-log", "--data", world.data, "--file", out, expect=None)
    assert (status, result) == (EXIT_OK, {"ok": True, "device_id": till.device_id, "records": 6, "problems": []})
    status, result = cli("pos_app", "verify-log", out, "--public-key", registered, expect=None)
    assert (status, result) == (EXIT_OK, {"ok": True, "records": 6, "device_id": till.device_id, "problems": []})

    doc = json.loads(out.read_text("utf-8"))
    record = next(r for r in doc["records"] if r["seq"] == 3)
    assert '"refused"' in record["body"]
    record["body"] = record["body"].replace('"refused"', '"accepted"')  # the refusal shown as an acceptance
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(doc, ensure_ascii=False), "utf-8")
    status, result = cli("server_stub", "verify-till-log", "--data", world.data, "--file", edited, expect=None)
    assert status == EXIT_PROBLEMS and result["ok"] is False, result
    assert [(p["code"], p["seqs"]) for p in result["problems"]] == [("log_edited", [3])], result
    status, result = cli("pos_app", "verify-log", edited, "--public-key", registered, expect=None)
    assert status == EXIT_PROBLEMS and result["ok"] is False, result
    assert [(p["code"], p["seqs"]) for p in result["problems"]] == [("log_edited", [3])], result
    assert "record 3" in result["problems"][0]["message"]


# --- 5. the backend restored from a backup (last: it takes the module's backend back) -----------------------


def test_a_till_sends_again_what_a_restored_backend_lacks_with_no_finding(world, clean, tmp_path):
    till, _ = clean
    codes = [world.claim("short_code"), world.claim()]  # issued before the backup: the restored backend has them
    archive = tmp_path / "before.backup"
    cli("server_stub", "backup", "--data", world.data, "--out", archive, "--nice", "0")
    till.redeem(codes[0])  # records 7 to 10, lost by the restore
    till.redeem(codes[1], offline=True)
    till.void_last_accepted()
    till.redeem("NADA", offline=True, accepted=False)
    synced = till.sync()
    assert synced["log_status"] == "ok" and synced["log_sent"] == 4, synced
    assert till.verify()[1]["records"] == 10
    world.backend.stop()
    args = ["server_stub", "restore", "--data", world.data, "--from", archive]
    if world.database is not None:  # a PostgreSQL backup goes into an empty database
        name = world.cluster.create_database()
        world.dropped.append(name)
        world.backend.database = world.cluster.dsn(name)
        args += ["--database", world.backend.database]
    cli(*args)
    world.backend.start()
    assert till.verify()[1]["records"] == 6  # the backup's copy
    # The restore's new epoch, in the same round with nothing new redeemed: the outbox since the backup goes
    # again (records 7-10's attempts and void), then the log from the 6 the backend still holds (`resend`).
    idle = till.sync()
    assert idle["recorded"] == 4 and idle["pushed"] == 4 + idle["duplicates"] and idle["outbox"] == 0, idle
    assert idle["log_status"] == "ok" and idle["log_sent"] == 4, idle
    assert till.findings() == {}
    status, result = till.verify()
    assert status == EXIT_OK and result["ok"] and result["records"] == 10 and result["head"]["seq"] == 10, result
    # And the log goes on from there.
    till.redeem("OTRA-MAS", offline=True, accepted=False)
    again = till.sync()
    assert again["log_status"] == "ok" and again["log_sent"] == 1 and again["outbox"] == 0, again
    assert till.findings() == {}
    status, result = till.verify()
    assert status == EXIT_OK and result["ok"] and result["problems"] == [], result
    assert result["records"] == 11 and result["head"]["seq"] == 11, result
