"""What this till holds of its store's other tills' logs, heard over the shop's LAN (pos_app/lan), and what
their records used up.

A peer's records are its till-log records (seq, body, hash) with a head it signed. Records that name this
till itself as their sender are never kept (`SELF`): its own push played back to it would count its own
printed uses twice, the feed clearing only one. They are kept only
when they follow, link by link, from what this till already holds of that peer (`verify_segment` from
the last record held, checked against the roster's public key): a record edited, a gap, a head not
signed by that till, and nothing is kept. Then what they used is applied, the same way the feed applies
the backend's events:

- an accepted personal attempt → `used_tokens` (origin 'lan', the till named as the roster names it),
  INSERT OR IGNORE: the first redemption heard of stays, as with the feed;
- an accepted printed attempt → `lan_printed`, counted by `printed_uses()` until the feed brings the
  same attempt (by its key), which then counts it instead (`counted_by_feed`);
- refusals and voids are kept and change nothing (a voided code stays used, as a feed void does).

What is kept is bounded, since a peer may be a stolen till still in the roster: of each peer's log the last
RECORDS_KEPT records (older ones are what it used, applied already; only the last is needed to go on), at
most RECORDS_PER_HOUR of them received in an hour (the first of a page kept, `FLOOD` said of the rest), and
a printed use the feed has counted is forgotten once older than the till's `retention_days`. A record that
old arriving only now counts no printed use: the feed has brought it by then.

Nothing heard goes into the outbox: each till sends the backend only its own work.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from ..core import till_log
from . import settings

DAY_S = 86_400
RECORDS_KEPT = 100_000  # of each peer's log: about a month of a busy till
# Records kept of one peer per hour of this till's clock: a busy till makes a few hundred an hour, and one
# catching up after a day apart some thousands; a stolen till still in the roster fills no disk faster.
RECORDS_PER_HOUR = 6_000
HOUR_S = 3_600

LAN_STATE = "lan_state"  # {"port", "started_at", "heard": {device_id: at}}, written by the LAN service
GAP_ONLY = "gap"  # the records start after a record this till does not hold yet: resend from `held`
SELF = "lan_self"  # the records are this till's own (a peer's code: also the LAN's answer to its own request)
FLOOD = "lan_flood"  # more records of one peer in the last hour than RECORDS_PER_HOUR: the rest later


@dataclass(frozen=True)
class Applied:
    """What became of a peer's page: the seq now held of that peer, records kept, and what was wrong."""

    held: int
    stored: int
    problems: tuple[till_log.Problem, ...] = ()

    @property
    def resend(self) -> bool:
        """Only a gap: records before these are missing here (the sender resends from `held`)."""
        return bool(self.problems) and all(p.code == till_log.GAP for p in self.problems)


class Lan:
    """A part of TillStore (needs StoreBase)."""

    def lan_held(self, device_id: str) -> tuple[int, str]:
        """The last record held of a peer's log: (seq, hash), (0, GENESIS) for none."""
        row = self.conn.execute("SELECT seq, hash FROM lan_records WHERE device_id = ? ORDER BY seq DESC LIMIT 1",
                                (device_id,)).fetchone()
        return (0, till_log.GENESIS) if row is None else (row[0], row[1])

    def apply_lan_records(self, peer: Mapping[str, str], records: Sequence[Mapping[str, Any]],
                          head: Mapping[str, Any], *, now: float | None = None) -> Applied:
        """Keep a peer's records (shapes checked by pos_app.lan.wire) if they continue its log, and apply
        what they used; all or nothing, in one transaction. `peer`: its roster entry."""
        now = time.time() if now is None else float(now)
        device_id, name = peer["device_id"], peer["name"]
        if device_id == self.device_id:
            return Applied(0, 0, (till_log.Problem(SELF, (), "these are this till's own records"),))
        with self.transaction():
            held_seq, held_hash = self.lan_held(device_id)
            old = [record for record in records if record["seq"] <= held_seq]
            fresh = [record for record in records if record["seq"] > held_seq]
            problems = list(self._lan_differs(device_id, old))
            if head["seq"] < held_seq:
                problems.append(till_log.Problem(till_log.REWOUND, (head["seq"],),
                                                 f"its log ends at record {head['seq']}, before record {held_seq}"
                                                 " held here"))
            if not problems and fresh:
                problems = till_log.verify_segment(fresh, prev=held_hash, after=held_seq, head=head,
                                                   public_key=peer["public_key"], device_id=device_id)
            elif not problems and head["seq"] == held_seq and head["hash"] != held_hash:
                problems.append(till_log.Problem(till_log.EDITED, (held_seq,), f"record {held_seq} differs from"
                                                 " the copy held here"))
            if problems:
                return Applied(held_seq, 0, tuple(problems))
            room = RECORDS_PER_HOUR - self._lan_kept_within_hour(device_id, held_seq, now)
            if len(fresh) > room:
                # The first ones, verified with the rest up to the signed head, continue the chain: kept.
                problems.append(till_log.Problem(FLOOD, (), f"more than {RECORDS_PER_HOUR} records of this"
                                                 " till in an hour: the rest is taken later"))
                fresh = fresh[:max(0, room)]
            since = now - settings.value(self, "retention_days") * DAY_S
            for record in fresh:
                self._lan_apply(device_id, name, record, now, since)
            held = fresh[-1]["seq"] if fresh else held_seq
            if fresh and held > RECORDS_KEPT:
                self.conn.execute("DELETE FROM lan_records WHERE device_id = ? AND seq <= ?",
                                  (device_id, held - RECORDS_KEPT))
        return Applied(held, len(fresh), tuple(problems))

    def _lan_kept_within_hour(self, device_id: str, held_seq: int, now: float) -> int:
        # A peer's records held are consecutive seqs: the count is the distance from the newest one received
        # over an hour ago (the walk down the primary key reads only the last hour's rows).
        row = self.conn.execute("SELECT seq FROM lan_records WHERE device_id = ? AND received_at <= ?"
                                " ORDER BY seq DESC LIMIT 1", (device_id, now - HOUR_S)).fetchone()
        if row is None:
            row = self.conn.execute("SELECT min(seq) - 1 FROM lan_records WHERE device_id = ?",
                                    (device_id,)).fetchone()
        return 0 if row[0] is None else held_seq - row[0]

    def forget_lan_printed(self, now: float) -> int:
        """Printed uses heard over the LAN that the feed counts, gone once older than the retention period
        (inside the caller's transaction); those the feed has not brought keep counting."""
        since = now - settings.value(self, "retention_days") * DAY_S
        return self.conn.execute("DELETE FROM lan_printed WHERE counted_by_feed = 1 AND at < ?", (since,)).rowcount

    def _lan_differs(self, device_id: str, records: Sequence[Mapping[str, Any]]):
        """Records this till holds already, sent again: each must be the copy held (a peer rewriting its
        past is refused)."""
        if not records:
            return
        held = {seq: (hash_, body) for seq, hash_, body in self.conn.execute(
            "SELECT seq, hash, body FROM lan_records WHERE device_id = ? AND seq BETWEEN ? AND ?",
            (device_id, records[0]["seq"], records[-1]["seq"]))}
        for record in records:
            sent = (record["hash"], record["body"])
            if held.get(record["seq"], sent) != sent:
                yield till_log.Problem(till_log.EDITED, (record["seq"],),
                                       f"record {record['seq']} differs from the copy held here")

    def _lan_apply(self, device_id: str, name: str, record: Mapping[str, Any], now: float, since: float) -> None:
        fields = till_log.parse_body(record["body"])  # verify_segment parsed it: it parses
        self.conn.execute(
            "INSERT INTO lan_records (device_id, seq, kind, key, body, hash, received_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (device_id, record["seq"], fields["t"], fields["key"], record["body"], record["hash"], now))
        if fields["t"] != till_log.ATTEMPT or fields["status"] != "accepted":
            return  # a refusal or a void: kept, and nothing more (a voided code stays used)
        store_id = fields["store_id"] or ""
        if fields["kind"] == "personal" and fields["jti"]:
            self.conn.execute(
                "INSERT OR IGNORE INTO used_tokens (jti, at, till, store_id, origin) VALUES (?, ?, ?, ?, 'lan')",
                (fields["jti"], fields["at"], name, store_id))
        elif fields["kind"] == "printed" and fields["voucher_id"] and fields["day"] and fields["at"] >= since:
            # IGNORE: the feed may have brought this attempt first (a row counted_by_feed = 1).
            self.conn.execute(
                "INSERT OR IGNORE INTO lan_printed (key, voucher_id, store_id, day, device_id, at, counted_by_feed)"
                " VALUES (?, ?, ?, ?, ?, ?, 0)",
                (fields["key"], fields["voucher_id"], store_id, fields["day"], device_id, fields["at"]))

    def note_lan_state(self, state: Mapping[str, Any]) -> None:
        """The LAN service's state for `python -m pos_app status` (another process): port, peers heard."""
        with self.transaction():
            self.write_setting(LAN_STATE, dict(state))

    def lan_figures(self) -> dict:
        """What `status` shows as `lan`: the port the service listened on, and each peer this till holds
        records of or heard from (its name, the last seq held, when it was last heard, when its last record
        arrived)."""
        state = self.stored(LAN_STATE).get(LAN_STATE)
        state = state if isinstance(state, dict) else {}
        heard = state.get("heard") if isinstance(state.get("heard"), dict) else {}
        config = self.lan_config()
        names = {peer["device_id"]: peer["name"] for peer in config["peers"]} if config else {}
        held = {device_id: (seq, count, at) for device_id, seq, count, at in self.conn.execute(
            "SELECT device_id, max(seq), count(*), max(received_at) FROM lan_records GROUP BY device_id")}
        peers = []
        for device_id in sorted(set(held) | set(heard)):
            seq, count, at = held.get(device_id, (0, 0, None))
            last_heard = heard.get(device_id)
            peers.append({"device_id": device_id, "name": names.get(device_id), "held_seq": seq, "records": count,
                          "last_record_at": at, "last_heard_at": last_heard if isinstance(last_heard, (int, float))
                          else None})
        times = [p["last_heard_at"] for p in peers if p["last_heard_at"] is not None]
        counted = self.conn.execute("SELECT count(*) FROM lan_printed WHERE counted_by_feed = 0").fetchone()[0]
        return {"enabled": settings.value(self, "lan_enabled") == "1", "port": state.get("port"), "started_at": state.get("started_at"),
                "stopped_at": state.get("stopped_at"), "peers_heard": len(times),
                "last_heard_at": max(times) if times else None, "printed_uses_counted": counted, "peers": peers}
