"""Correct under real concurrency (issue 17): several Backends over one database, many threads at once.

Each Backend opens its own storage (over PostgreSQL: its own pool of writers), as a process does, so
writes really run side by side. What must hold is what SQLite's lone writer gives: one accepted attempt
per token id, printed-code limits exact, a key answered once, one device per enrollment code, one void
per redemption, every failure of an address counted, and no 500 (an exception that is no DomainError);
and what one process changes (a device deleted, a voucher revoked) is seen by the others within a second.
The same limits are checked over SQLite with two Backends on one folder.
"""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from server_stub.backend import Backend
from server_stub.datadir import DataDir
from server_stub.errors import Conflict, DomainError, Forbidden, Invalid, TooMany, Unauthorized
from server_stub.operations import enrollment_guard, pin_lockout
from server_stub.operations.staff_auth import Caller

PROCESSES = 3  # Backends over one database, as so many processes


class Chain:
    """A retailer with one store, enrolled tills, and Backends that share its database."""

    def __init__(self, path, database: str | None, backends: int = PROCESSES):
        DataDir(path).init(database=database)
        DataDir(path).set_config(velocity_limit=0)
        self.path = path
        self.backends = [Backend(path) for _ in range(backends)]
        first = self.backends[0]
        self.retailer_id = first.create_retailer("Cadena")["id"]
        self.store_id = first.create_store(self.retailer_id, "Centro")["id"]
        self.devices = [self.enroll(f"Caja {n}") for n in range(6)]
        self.warm()

    def warm(self) -> None:
        """Every Backend's writers connected before a race, so the race is not a pool growing one by one."""
        writers = getattr(self.first.storage, "_pool", None)
        if writers is None:
            return
        n = writers.max_size
        race(n * len(self.backends), lambda i: self.backends[i // n].storage.submit(lambda db: time.sleep(0.3)))

    @property
    def first(self) -> Backend:
        return self.backends[0]

    def enroll(self, name: str) -> dict:
        code = self.first.create_enrollment_code(self.store_id)["code"]
        answer = self.first.enroll(code, name)
        return self.first.require_device(answer["device_token"])

    def voucher(self, kind: str, **limits) -> str:
        voucher = self.first.create_voucher({
            "retailer_id": self.retailer_id, "kind": kind, "texts": {"es": {"title": "Cupón"}},
            "discount": {"kind": "percent", "value": 10}, **limits})
        self.first.change_voucher(voucher["id"], "publish")
        return voucher["id"]

    def printed(self, code: str, **limits) -> str:
        self.first.create_printed_code(self.voucher("printed", **limits), code)
        return code

    def rows(self, sql: str, params=()) -> list[tuple]:
        return self.first.read().execute(sql, params).fetchall()

    def close(self) -> None:
        for backend in self.backends:
            backend.close()


@pytest.fixture
def chain(tmp_path, pg_database):
    made = Chain(tmp_path, pg_database)
    yield made
    made.close()


@pytest.fixture
def sqlite_chain(tmp_path):
    made = Chain(tmp_path, None, backends=2)
    yield made
    made.close()


def race(n: int, fn, backends: list | None = None) -> list:
    """fn(i) in n threads let go at once; each one's result, or the exception it raised. With `backends`,
    thread i first opens its read connection on backends[i % len], so the start is not n connects."""
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def go(i: int) -> None:
        if backends:
            backends[i % len(backends)].read()
        barrier.wait()
        try:
            results[i] = fn(i)
        except Exception as exc:  # kept: the test says which are allowed
            results[i] = exc
    threads = [threading.Thread(target=go, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def no_500(results: list, allowed: tuple[type, ...] = ()) -> None:
    """No result is an error the web layer would answer 500 (every DomainError has its own status)."""
    unexpected = [r for r in results if isinstance(r, Exception) and not isinstance(r, allowed)]
    assert not unexpected, unexpected[:3]
    assert not any(isinstance(r, Exception) and not isinstance(r, DomainError) for r in results)


def redeem_all(chain: Chain, racers: int, text, key=None, method: str = "camera") -> list:
    def one(i: int):
        backend = chain.backends[i % len(chain.backends)]
        device = chain.devices[i % len(chain.devices)] if key is None else chain.devices[0]
        body = {"input": text(i) if callable(text) else text, "method": method}
        return backend.redeem(device, key or uuid.uuid4().hex, body)
    return race(racers, one, chain.backends)


def statuses(results: list) -> list[int]:
    return sorted(r.status for r in results)


def personal_token(chain: Chain) -> dict:
    return chain.first.create_claim(chain.voucher("personal"), "cliente")


# --- one accepted attempt per token id, limits, keys ----------------------------------------------

def test_fifty_racers_on_one_personal_code_accept_exactly_one(chain):
    claim = personal_token(chain)
    results = redeem_all(chain, 50, claim["token"])
    no_500(results)
    assert statuses(results) == [201] + [409] * 49
    assert all(r.body["error"]["code"] == "already_redeemed" for r in results if r.status == 409)
    assert chain.rows("SELECT count(*) FROM attempts WHERE jti = ? AND status = 'accepted'", (claim["jti"],)) == [(1,)]


def test_a_printed_code_with_a_total_limit_of_three_raced_by_forty_is_accepted_three_times(chain):
    code = chain.printed("LIMITE3", total_limit=3, store_day_limit=10)
    results = redeem_all(chain, 40, code, method="printed")
    no_500(results)
    assert statuses(results) == [201] * 3 + [422] * 37
    assert {r.body["error"]["code"] for r in results if r.status == 422} == {"limit_reached"}


def test_a_printed_codes_store_day_limit_holds_when_raced(chain):
    code = chain.printed("DIA3", store_day_limit=3)
    results = redeem_all(chain, 40, code, method="printed")
    no_500(results)
    assert statuses(results) == [201] * 3 + [422] * 37


def test_two_codes_of_one_voucher_share_its_limit_when_raced(chain):
    voucher_id = chain.voucher("printed", total_limit=4)
    for code in ("UNO111", "DOS222"):
        chain.first.create_printed_code(voucher_id, code)
    results = redeem_all(chain, 40, lambda i: ("UNO111", "DOS222")[i % 2], method="printed")
    no_500(results)
    assert statuses(results) == [201] * 4 + [422] * 36


def test_one_idempotency_key_raced_is_one_row_and_one_answer(chain):
    claim = personal_token(chain)
    key = uuid.uuid4().hex
    results = redeem_all(chain, 30, claim["token"], key=key)
    no_500(results)
    assert {r.status for r in results} == {201}
    assert len({r.body["verdict"]["jti"] for r in results}) == 1
    assert len({r.body["redemption_id"] for r in results}) == 1
    assert chain.rows("SELECT count(*) FROM attempts WHERE key = ?", (key,)) == [(1,)]


# --- enrollment, voids ---------------------------------------------------------------------------

@pytest.mark.allow_log_warnings("enrollment refused from")
def test_one_enrollment_code_raced_enrolls_one_device(chain):
    code = chain.first.create_enrollment_code(chain.store_id)["code"]
    before = chain.rows("SELECT count(*) FROM devices")[0][0]
    results = race(20, lambda i: chain.backends[i % PROCESSES].enroll(code, f"Caja {i}", address=f"10.0.0.{i}"),
                   chain.backends)
    no_500(results, (Forbidden,))
    assert sum(isinstance(r, dict) for r in results) == 1
    assert chain.rows("SELECT count(*) FROM devices")[0][0] == before + 1


@pytest.mark.allow_log_warnings("enrollment refused from")
def test_every_wrong_enrollment_code_of_one_address_is_counted_when_raced(chain):
    racers = enrollment_guard.LIMIT - 1  # all counted, none locked out yet
    results = race(racers, lambda i: chain.backends[i % PROCESSES].enroll("AAAA-BBBB-C", "x", address="10.9.9.9"),
                   chain.backends)
    no_500(results, (Forbidden,))
    assert chain.rows("SELECT failures FROM enrollment_failures WHERE address = ?", ("10.9.9.9",)) == [(racers,)]


def test_a_redemption_voided_by_twenty_at_once_is_voided_once(chain):
    claim = personal_token(chain)
    key = uuid.uuid4().hex
    assert chain.first.redeem(chain.devices[0], key, {"input": claim["token"], "method": "camera"}).status == 201
    results = race(20, lambda i: chain.backends[i % PROCESSES].void(Caller("admin"), key, "wrong customer"),
                   chain.backends)
    no_500(results, (Conflict,))
    assert sum(isinstance(r, dict) for r in results) == 1
    assert {r.code for r in results if isinstance(r, Conflict)} == {"already_voided"}
    assert chain.rows("SELECT count(*) FROM voids")[0][0] == 1


def test_every_admin_token_of_scope_all_revoked_at_once_leaves_the_last_one(chain):
    from server_stub.operations import credentials

    for _ in range(3):
        for n in range(8):
            credentials.create_token(chain.first.ctx, "all", f"operador {n}")
        ids = [row[0][:12] for row in chain.rows("SELECT token_hash FROM admin_tokens WHERE scope = 'all'")]
        results = race(len(ids), lambda i: credentials.revoke_token(chain.backends[i % PROCESSES].ctx, ids[i]),
                       chain.backends)
        no_500(results, (Invalid,))
        assert sum(isinstance(r, Invalid) for r in results) == 1
        assert chain.rows("SELECT count(*) FROM admin_tokens WHERE scope = 'all'") == [(1,)]


def test_a_voucher_revoked_while_others_publish_it_stays_revoked(chain):
    for _ in range(3):
        voucher_id = chain.voucher("personal")
        results = race(12, lambda i: chain.backends[i % PROCESSES].change_voucher(
            voucher_id, "revoke" if i == 6 else "publish"), chain.backends)
        no_500(results, (Conflict,))  # a publish after the revoke is refused
        assert chain.first.get_voucher(voucher_id)["status"] == "revoked"


def test_wrong_pins_typed_at_once_through_every_backend_all_count_and_lock(chain):
    member = chain.first.create_staff(chain.retailer_id, "Cajera", "cashier", "2468", chain.store_id)
    code = chain.first.create_enrollment_code(chain.store_id)["code"]
    token = chain.first.enroll(code, "Caja PIN")["device_token"]
    racers = pin_lockout.MAX_FAILURES
    results = race(racers, lambda i: chain.backends[i % PROCESSES].require_staff(
        token, member["id"], "0000", ("cashier",)), chain.backends)
    no_500(results, (Unauthorized, TooMany))
    assert sum(isinstance(r, TooMany) for r in results) >= 1  # the fifth, whichever it was, started the lock
    [(failures, locked_until)] = chain.rows("SELECT failures, locked_until FROM pin_failures WHERE staff_id = ?",
                                            (member["id"],))
    assert failures == racers and locked_until is not None
    with pytest.raises(TooMany):  # a right PIN too, now, through any backend
        chain.backends[2].require_staff(token, member["id"], "2468", ("cashier",))


# --- a till's outbox -----------------------------------------------------------------------------

def entry(text: str, method: str = "camera") -> dict:
    return {"key": uuid.uuid4().hex, "at": time.time() - 1, "accepted": True, "reason": None, "kind": None,
            "voucher_id": None, "jti": None, "code": None, "method": method, "staff_id": None,
            "decided": "offline", "input": text}


@pytest.mark.parametrize("round_", range(3))
def test_two_tills_syncing_overlapping_codes_at_once_accept_each_once_and_the_losers_are_conflicts(chain, round_):
    claims = [personal_token(chain) for _ in range(12)]
    code = chain.printed("JUNTOS", total_limit=3)
    batches = [[entry(c["token"]) for c in claims[:8]] + [entry(code, "printed") for _ in range(4)],
               [entry(c["token"]) for c in claims[4:]] + [entry(code, "printed") for _ in range(4)]]
    results = race(2, lambda i: chain.backends[i].sync(chain.devices[i], batches[i]), chain.backends)
    no_500(results)
    answered = [r for result in results for r in result["results"]]
    assert sum(r["status"] == "conflict" for r in answered) == 4  # the four codes both tills sent
    for claim in claims:
        assert chain.rows("SELECT count(*) FROM attempts WHERE jti = ? AND status = 'accepted'",
                          (claim["jti"],)) == [(1,)]
    # Both tills gave the printed code offline: all eight stay recorded, the five past the limit are said so.
    printed = [r for result in results for r in result["results"][8:]]
    assert [r["status"] for r in printed] == ["recorded"] * 8
    assert sum("over_limit" in r for r in printed) == 5


def test_a_batch_with_a_void_first_does_not_deadlock_with_an_online_insert_of_one_of_its_codes(chain):
    """A void writes its feed event at once (the counter's lock); an online redemption inserts without
    holding anything and takes the counter only as it commits. Were the batch's void written before its
    redemptions, its insert of a token the online one holds would wait for it while it waits for the
    batch's lock: PostgreSQL would kill one of them (DeadlockDetected, a 500 to a till)."""
    import psycopg

    first = personal_token(chain)
    voided = uuid.uuid4().hex
    assert chain.first.redeem(chain.devices[0], voided, {"input": first["token"], "method": "camera"}).status == 201
    raced = personal_token(chain)
    boss = chain.first.create_staff(chain.retailer_id, "Jefa", "manager", "482916", chain.store_id)
    void = {"type": "void", "key": uuid.uuid4().hex, "redemption_key": voided, "at": time.time() - 1,
            "staff_id": boss["id"], "void_reason": "equivocado"}
    online = psycopg.connect(chain.first.database)  # an online redemption's insert, held open a moment
    try:
        online.execute(
            "INSERT INTO attempts (key, retailer_id, store_id, device_id, at, received_at, method, decided, "
            "status, kind, jti) VALUES (%s, %s, %s, %s, %s, %s, 'camera', 'online', 'accepted', 'personal', %s)",
            (uuid.uuid4().hex, chain.retailer_id, chain.store_id, chain.devices[1]["id"], time.time(), time.time(),
             raced["jti"]))
        synced: list = []
        batch = threading.Thread(target=lambda: synced.append(
            chain.backends[1].sync(chain.devices[0], [void, entry(raced["token"])])))
        batch.start()
        time.sleep(0.5)  # the batch is waiting on the online insert's token id now
        online.commit()  # its feed event, numbered at commit: the counter must be free for it
    finally:
        online.close()
    batch.join(30)
    [answer] = synced
    assert [r["status"] for r in answer["results"]] == ["recorded", "conflict"], answer
    assert chain.rows("SELECT count(*) FROM attempts WHERE jti = ? AND status = 'accepted'", (raced["jti"],)) == [(1,)]
    assert chain.rows("SELECT count(*) FROM voids") == [(1,)]


# --- what another process changed, seen within a second ------------------------------------------

def test_a_device_deleted_in_one_backend_is_refused_by_another_within_a_second_and_a_half(chain):
    code = chain.first.create_enrollment_code(chain.store_id)["code"]
    token = chain.first.enroll(code, "Caja borrada")["device_token"]
    other = chain.backends[1]
    device = other.require_device(token)  # now in the other's memory
    chain.first.storage.submit(lambda db: db.execute("DELETE FROM devices WHERE id = ?", (device["id"],)))
    deleted = time.monotonic()
    while True:
        try:
            other.require_device(token)
        except Unauthorized:
            break
        assert time.monotonic() - deleted < 1.5, "another process still lets a deleted device in"
        time.sleep(0.02)


def test_a_voucher_revoked_in_one_backend_is_refused_by_another_within_a_second_and_a_half(chain):
    voucher_id = chain.voucher("printed")
    chain.first.create_printed_code(voucher_id, "REVOCA")
    other = chain.backends[1]
    # The booklet's QR: a token naming its voucher, which a backend judges from its memory of vouchers.
    body = {"input": chain.first.static_token("REVOCA"), "method": "camera"}
    assert other.redeem(chain.devices[1], uuid.uuid4().hex, body).status == 201  # the voucher in its memory
    chain.first.change_voucher(voucher_id, "revoke")
    revoked = time.monotonic()
    while True:
        answer = other.redeem(chain.devices[1], uuid.uuid4().hex, body)
        if answer.status == 422:
            assert answer.body["error"]["code"] == "revoked"
            break
        assert time.monotonic() - revoked < 1.5, "another process still accepts a revoked voucher"
        time.sleep(0.02)


def test_a_pin_changed_in_one_backend_stops_working_in_another_at_once(chain):
    member = chain.first.create_staff(chain.retailer_id, "Gerente", "manager", "482916", chain.store_id)
    code = chain.first.create_enrollment_code(chain.store_id)["code"]
    token = chain.first.enroll(code, "Caja gerente")["device_token"]
    other = chain.backends[1]
    caller = other.require_staff(token, member["id"], "482916", ("manager",))  # remembered there now
    chain.first.change_pin(caller, "915273")
    with pytest.raises(Unauthorized):
        other.require_staff(token, member["id"], "482916", ("manager",))
    assert other.require_staff(token, member["id"], "915273", ("manager",)).staff_id == member["id"]


# --- the same over SQLite: two Backends on one folder ------------------------------------------------

def test_over_sqlite_two_backends_keep_a_printed_limit_and_one_accept_per_token(sqlite_chain):
    code = sqlite_chain.printed("SQLITE3", total_limit=3)
    results = redeem_all(sqlite_chain, 40, code, method="printed")
    no_500(results)
    assert statuses(results) == [201] * 3 + [422] * 37
    claim = personal_token(sqlite_chain)
    results = redeem_all(sqlite_chain, 40, claim["token"])
    no_500(results, (TooMany,))
    assert statuses(results) == [201] + [409] * 39
