"""A round's step that sends the till's log (store/chain.py) to the backend, which checks it (docs/sync.md,
"The till's log").

After the push, the settling and the till's report: the records after the last one the backend holds
(`log_acked_seq`), 1000 a request, each batch with the head at its last record signed by the till, and
what the till's self-check found changed by hand in its own file. The backend answers what it holds now
(`ok`, `resend` from an earlier seq when a restore lost records, `flagged` when it raised findings); the
till goes on from there, at most MAX_REQUESTS requests a round. A backend without the route (404/405)
is an older one: the step is skipped. Any other refusal of the log ends the step, not the round: the
redemptions were synced already, and a log the backend cannot take must not stop the feed.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable

from ..core import till_log
from .client import BadAnswer, Refused

log = logging.getLogger(__name__)

MAX_RECORDS = 1000  # a request's records (the backend takes at most this many)
MAX_REQUESTS = 20  # a round's requests: a long backlog is sent over rounds
OLDER_BACKEND = (404, 405)
TILL_REFUSALS = (401, 403, 411, 415)  # about the till itself: the round ends, as for any other call
# The self-check's findings the backend takes as `tampered` (a break of the chain it sees in the records it is
# sent; of those it holds already, CHAIN_EDITED below).
SENT_PROBLEMS = ("row_missing", "row_changed", "chain_missing")
CHAIN_EDITED = "chain_edited"
REPORT_KEY = "log_report_at"  # when the log was last sent without new records (a break, a check's finding)
REPORT_EVERY_S = 60.0
STATUSES = ("ok", "resend", "flagged")


def push_log(store, call: Callable[..., Any], summary: dict, *, clock: Callable[[], float] = time.time) -> None:
    """Send the log's new records; `summary` gets `log_sent` and `log_status` (None: nothing to send;
    ok / resend / flagged: the backend's last answer; skipped: an older backend; refused / bad_answer:
    the step ended, said in the till's log)."""
    acked = store.log_acked()
    head, _ = store.log_head()
    found = store.log_self_check(after=acked, rotate=True, now=clock())
    # A record that no longer links is the backend's to see in what it is sent; one it holds already, only
    # the till's check can say.
    tampered = [item for item in found if item["problem"] in SENT_PROBLEMS
                or (item["problem"] == CHAIN_EDITED and item["seq"] <= acked)]
    ask = store.log_ask_due()  # a restored backend: its answer says what it still holds
    if head == acked and not tampered and not ask:
        return
    if head <= acked and not ask and not _report_due(store, clock()):  # a break or a finding: once a minute
        return
    public_key = store.log_public_key()
    for _ in range(MAX_REQUESTS):
        records = store.log_since(acked, MAX_RECORDS)
        seq, hash_ = (records[-1]["seq"], records[-1]["hash"]) if records else store.log_head()
        # The head at this batch's last record: the backend checks that the records reach it.
        head_json = {"seq": seq, "hash": hash_, "sig": store.sign_log_head(seq, hash_)}
        body = {"public_key": public_key, "after": acked, "records": records, "head": head_json,
                "tampered": tampered}
        try:
            answer = call("till_log", body)
            status, held = _answer(answer)
        except Refused as exc:
            if exc.status in OLDER_BACKEND:
                summary["log_status"] = "skipped"
                log.debug("sync: the backend takes no till log (%s): an older version", exc.status)
                return
            if exc.status in TILL_REFUSALS:
                raise
            summary["log_status"] = "refused"
            log.warning("sync: the backend refused this till's log: %s", exc)
            return
        except BadAnswer as exc:
            summary["log_status"] = "bad_answer"
            log.warning("sync: the backend's answer to this till's log makes no sense: %s", exc)
            return
        summary["log_sent"] += len(records)
        summary["log_status"] = status
        if ask:
            store.log_asked()
            ask = False
        if status == "flagged":
            log.warning("sync: the backend flagged this till's log: %s", ", ".join(_findings(answer)) or "no codes")
        if not records:
            store.set(REPORT_KEY, clock())
        tampered = []  # said once a round
        if held == acked:
            return  # no progress: asking again now would loop
        store.note_log_acked(held)
        acked = held
        if store.log_head()[0] <= acked:
            return


def _report_due(store, now: float) -> bool:
    last = store.stored(REPORT_KEY).get(REPORT_KEY)
    return not (isinstance(last, (int, float)) and 0 <= now - last < REPORT_EVERY_S)


def _answer(answer: Any) -> tuple[str, int]:
    """The answer's status and the seq the backend holds; BadAnswer if it is not `{"log": {status, seq,
    hash, findings}}`."""
    part = answer.get("log") if isinstance(answer, dict) else None
    if not isinstance(part, dict) or part.get("status") not in STATUSES:
        raise BadAnswer("the till-log answer holds no log status")
    seq = part.get("seq")
    if not (seq == 0 or till_log.is_seq(seq)) or isinstance(seq, bool):
        raise BadAnswer("the till-log answer's seq is not a whole number from 0")
    if not till_log.is_hash(part.get("hash")):
        raise BadAnswer("the till-log answer's hash is not 64 hex digits")
    return part["status"], seq


def _findings(answer: dict) -> list[str]:
    codes = answer["log"].get("findings")
    return [code[:40] for code in codes[:20] if isinstance(code, str)] if isinstance(codes, list) else []
