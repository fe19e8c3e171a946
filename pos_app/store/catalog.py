"""What the backend tells the till: its enrollment, the catalog and the feed, applied
to the store; and the caches of them that every offline verdict reads.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any, Mapping

from .. import resources
from ..core import codes, pins, tokens, wire
from ..core.domain import Claim, Voucher
from ..core.verdict import local_day
from . import standing

log = logging.getLogger(__name__)

# Public keys shipped with the till (assets/keys in a checkout, the package's own copy when installed).
ASSET_KEYS_DIR = resources.directory("keys")
# A parked feed event's data is kept for the manager to read, at most this long.
PARKED_DATA_CHARS = 4000
# A setting changed with every catalog change (catalog, feed, keys): another connection's caches see it.
CATALOG_MARK = "catalog_mark"
_CATALOG_KINDS = ("voucher", "printed_code", "revocation")  # feed events that change the decoded caches
_CACHED_KINDS = (*_CATALOG_KINDS, "keys")  # ... and the trust set


class Catalog:
    """The TillStore's catalog and feed (a part of TillStore: needs StoreBase and Uses)."""

    def __init__(self, path: str | Path, *, asset_keys_dir: Path | None = ASSET_KEYS_DIR, **options: Any):
        super().__init__(path, **options)
        self._asset_keys_dir = asset_keys_dir
        self._trust: tokens.TrustSet | None = None
        # Decoded caches: the verdict reads these on every scan, so they must
        # cost a dict lookup, not a query and a JSON decode.
        self._vouchers: dict[str, Voucher] = {}
        self._printed: dict[str, str] = {}
        self._revoked: set[str] = set()
        self._load_catalog_caches()
        self._data_version = self.conn.execute("PRAGMA data_version").fetchone()[0]
        self._catalog_mark = self.get(CATALOG_MARK)

    def catch_up(self) -> None:
        """Take in what another connection committed: the window decides on this connection's caches while
        the sync engine writes the catalog, the feed and the settings through its own, so a voucher withdrawn
        or a claim revoked there must reach these caches before the next offline verdict. `PRAGMA
        data_version` changes only when another connection committed: an unchanged file costs that pragma,
        a sync round that left the catalog alone a settings read."""
        version = self.conn.execute("PRAGMA data_version").fetchone()[0]
        if version == self._data_version:
            return
        self._data_version = version
        self.reload_settings()
        mark = self.get(CATALOG_MARK)
        if mark != self._catalog_mark:
            self._catalog_mark = mark
            self._load_catalog_caches()
            self._trust = None

    def _mark_catalog_changed(self, what: Any) -> None:
        """Inside the writing transaction: other connections reload their caches (catch_up). The mark is
        the change's digest, so the same page or catalog applied again leaves the file as it was."""
        mark = hashlib.blake2b(json.dumps(what, sort_keys=True, default=str).encode(), digest_size=12).hexdigest()
        self.write_setting(CATALOG_MARK, mark)
        self._catalog_mark = mark

    def save_enrollment(self, enroll_json: Mapping[str, Any], server_url: str, *,
                        name: str | None = None, adopt: bool = False, log_private_key: str | None = None) -> None:
        """Keep the answer of `POST /devices/enroll`: identity, token and keys.

        `log_private_key`: the till's log key whose public half the request carried (chain.py), kept with
        the identity it was enrolled for.

        `name` is the name the till enrolled with (the answer does not repeat it). `adopt`: a restored
        backend forgot this till's device (enrolled after the backup), so the till takes the new device id
        of a fresh code of its own store and retailer, keeping every record and its outbox (`enroll --again`).
        """
        facts, keys = wire.parse_enrollment(enroll_json)
        lan = wire.parse_lan(enroll_json.get("lan"), "enrollment")
        name = name or enroll_json.get("name") or self.default_device_name
        old_id = self.device_id
        adopted = adopt and bool(old_id) and facts["device_id"] != old_id
        if adopted and (facts["retailer_id"], facts["store_id"]) != (self.retailer_id, self.store_id):
            raise ValueError(f"the code enrolled a till of store {facts['store_id']} (retailer "
                             f"{facts['retailer_id']}), not this till's store {self.store_id} (retailer "
                             f"{self.retailer_id})")
        if self.device_id and facts["device_id"] != self.device_id and not adopted:
            # Its records and outbox are the enrolled device's: another device's token must not send them.
            raise ValueError(f"the code enrolled another device ({facts['device_id']}), not this till "
                             f"({self.device_id}): ask the operator for this till's re-enrollment code")
        with self.transaction():
            if standing.clear(self) or adopted:  # enrolled again (a roll, or adopted): it redeems again,
                self.conn.execute("DELETE FROM settings WHERE key = 'catalog_at'")  # on the catalog as it is now
            self.write_setting("server_url", str(server_url))
            for setting, value in facts.items():
                self.write_setting(setting, value)
            self.write_setting("device_name", str(name))
            if log_private_key:
                self.write_setting("log_private_key", log_private_key)
            self._keep_lan(lan)
            self.conn.executemany("INSERT OR REPLACE INTO keys (kid, pem) VALUES (?, ?)", keys)
            self._mark_catalog_changed(["enrollment", keys])
            standing.note_heard(self)  # the enrollment's answer is the backend heard
        if adopted:  # its records and outbox now go out as the new device; the backend judges each again
            log.warning("identity adopted after a backend restore: this till was device %s and is now device %s"
                        " of store %s; its records, outbox and kept entries go to the backend as the new device",
                        old_id, facts["device_id"], facts["store_id"])
        self.reload_settings()
        self._trust = None

    def _load_catalog_caches(self) -> None:
        self._vouchers = {vid: Voucher.from_json(json.loads(data))
                          for vid, data in self.conn.execute("SELECT id, data FROM vouchers")}
        self._printed = dict(self.conn.execute("SELECT code, voucher_id FROM printed_codes"))
        self._revoked = {jti for (jti,) in self.conn.execute("SELECT jti FROM revoked")}

    def apply_catalog(self, catalog: Mapping[str, Any]) -> None:
        """Replace the catalog with `GET /catalog`'s answer; ValueError if malformed."""
        parsed = wire.parse_catalog(catalog, known_retailer=self.retailer_id, known_store=self.store_id)
        with self.transaction():
            for table in ("keys", "vouchers", "printed_codes", "claims", "staff", "revoked"):
                self.conn.execute(f"DELETE FROM {table}")
            self.conn.executemany("INSERT OR REPLACE INTO keys (kid, pem) VALUES (?, ?)", parsed.keys)
            self.conn.executemany(
                "INSERT OR REPLACE INTO vouchers (id, data, kind, status) VALUES (?, ?, ?, ?)",
                [_voucher_row(v) for v in parsed.vouchers])
            self.conn.executemany(
                "INSERT OR REPLACE INTO printed_codes (code, voucher_id) VALUES (?, ?)", parsed.printed_codes)
            self.conn.executemany(
                "INSERT OR REPLACE INTO claims (code_digest, jti, voucher_id, expires_at)"
                " VALUES (?, ?, ?, ?)", parsed.claims)
            self.conn.executemany(
                "INSERT OR REPLACE INTO staff (id, name, role, pin_hash, store_id, proof_salt)"
                " VALUES (?, ?, ?, ?, ?, ?)", parsed.staff)
            self.conn.executemany("INSERT OR IGNORE INTO revoked (jti) VALUES (?)",
                                  [(jti,) for jti in parsed.revoked])
            self.write_setting("retailer_id", parsed.retailer_id)
            self.write_setting("retailer_name", parsed.retailer_name)
            self.write_setting("store_id", parsed.store_id)
            self.write_setting("store_name", parsed.store_name)
            self.write_setting("store_timezone", parsed.timezone)
            if parsed.issuer:  # an older backend names none: the issuer known so far stays
                self.write_setting("issuer", parsed.issuer)
            self.write_setting(standing.OFFLINE_DAYS_KEY, parsed.offline_days)
            self._keep_lan(parsed.lan)
            self.write_setting("catalog_at", time.time())
            self._mark_catalog_changed(["catalog", catalog])
            if parsed.server_time is not None:
                self.write_setting("catalog_server_time", parsed.server_time)
        self.reload_settings()
        self._load_catalog_caches()
        self._trust = None

    def _keep_lan(self, lan: dict | None) -> None:
        """Inside the transaction: the store's LAN keys and roster as the backend's last answer gave them
        (none: an older backend, so no LAN sharing on a roster nobody vouches for)."""
        if lan is None:
            self.conn.execute("DELETE FROM settings WHERE key = 'lan'")
        else:
            self.write_setting("lan", lan)

    def lan_config(self) -> dict | None:
        """`{"keys": [{"kid", "secret", "active"}], "peers": [{"device_id", "name", "public_key"}]}` as the
        backend last gave them (secrets base64, the roster including this till), or None: none given, or the
        setting no longer fits (checked again: the file is the shop PC's)."""
        kept = self.get("lan")
        seen = getattr(self, "_lan_seen", None)
        if seen is not None and seen[0] is kept:  # parsed once per value the settings hold (a reload makes anew)
            return seen[1]
        try:
            config = wire.parse_lan(kept, "setting")
        except ValueError as exc:
            log.error("the kept LAN keys and roster are unusable, so no LAN sharing: %s", exc)
            config = None
        self._lan_seen = (kept, config)
        return config

    def apply_feed(self, events: list[Mapping[str, Any]], cursor: int) -> int:
        """Apply a page of `GET /feed` and keep its cursor, in one transaction; returns how many
        events were newly parked.

        Re-applying a page changes nothing; unknown event types are skipped. An event this
        till cannot apply is parked with its reason (`feed_parked`, shown in the sync panel)
        and the rest of the page applied: one bad event must not stop the feed for good.
        ValueError only for a malformed page (nothing is applied then).
        """
        parsed = wire.parse_feed(events, cursor)
        timezone = self.store_timezone
        parked = []
        with self.transaction():
            for event, (seq, kind, data) in zip(events, parsed):
                if isinstance(data, wire.UnfitEvent):
                    reason = data.reason
                else:
                    reason = self._apply_event(seq, kind, data, timezone)
                if reason is not None and self._park_event(seq, kind, reason, event.get("data")):
                    parked.append((seq, kind, reason))
            cached = [(seq, kind, event.get("data")) for event, (seq, kind, _) in zip(events, parsed)
                      if kind in _CACHED_KINDS]
            if cached:
                self._mark_catalog_changed(["feed", cached])
            self.write_setting("feed_cursor", cursor)
        self.keep_setting("feed_cursor", cursor)
        for seq, kind, reason in parked:  # once per event: a page applied again parks nothing new
            log.warning("feed event %s (%s) could not be applied and was parked: %s", seq, _printable(kind, 64),
                        _printable(reason, 500))
        if any(kind in _CATALOG_KINDS for _, kind, _ in parsed):
            self._load_catalog_caches()
        if any(kind == "keys" for _, kind, _ in parsed):
            self._trust = None
        return len(parked)

    def _apply_event(self, seq: int, kind: str | None, data: Any, timezone: str) -> str | None:
        """One parsed event, in a savepoint: None when applied, else why it could not be
        (the parser lets nothing through that should fail here; this is the net under it)."""
        self.conn.execute("SAVEPOINT feed_event")
        try:
            if kind == "redemption":
                self._feed_redemption(seq, data, timezone)
            elif kind == "voucher":
                self.conn.execute(
                    "INSERT OR REPLACE INTO vouchers (id, data, kind, status) VALUES (?, ?, ?, ?)",
                    _voucher_row(data))
            elif kind == "claim":
                self.conn.execute(
                    "INSERT OR REPLACE INTO claims (code_digest, jti, voucher_id, expires_at)"
                    " VALUES (?, ?, ?, ?)", data)
            elif kind == "printed_code":
                self.conn.execute(
                    "INSERT OR REPLACE INTO printed_codes (code, voucher_id) VALUES (?, ?)", data)
            elif kind == "revocation":
                self.conn.execute("INSERT OR IGNORE INTO revoked (jti) VALUES (?)", (data,))
            elif kind == "staff":
                self.conn.execute(
                    "INSERT OR REPLACE INTO staff (id, name, role, pin_hash, store_id, proof_salt)"
                    " VALUES (?, ?, ?, ?, ?, ?)", data)
            elif kind == "staff_removed":  # disabled or moved away: the offline login no longer knows them
                self.conn.execute("DELETE FROM staff WHERE id = ?", (data,))
            elif kind == "void":
                self._feed_void(data)
            elif kind == "keys":  # a signing-key rotation: the keys to verify with now, all of them
                self.conn.execute("DELETE FROM keys")
                self.conn.executemany("INSERT OR REPLACE INTO keys (kid, pem) VALUES (?, ?)", data)
        except (ValueError, TypeError, KeyError, OverflowError) as exc:
            self.conn.execute("ROLLBACK TO feed_event")
            self.conn.execute("RELEASE feed_event")
            return f"feed {kind}: {type(exc).__name__}: {exc}"
        self.conn.execute("RELEASE feed_event")
        return None

    def _park_event(self, seq: int, kind: str | None, reason: str, data: Any) -> bool:
        """Set an event aside with its reason; False if it was parked already."""
        try:
            text = json.dumps(data, ensure_ascii=True)  # ASCII: a lone surrogate in it is kept escaped
        except (TypeError, ValueError, RecursionError):
            text = None
        if text is not None and len(text) > PARKED_DATA_CHARS:
            text = text[:PARKED_DATA_CHARS] + "…"  # for a person to read, not to parse
        done = self.conn.execute(
            "INSERT OR IGNORE INTO feed_parked (seq, type, reason, data, at) VALUES (?, ?, ?, ?, ?)",
            (seq, None if kind is None else _printable(kind, 64), _printable(reason, 500), text, time.time()))
        return done.rowcount == 1

    def _feed_redemption(self, seq: int, data: Mapping[str, Any], timezone: str) -> None:
        seen = self.conn.execute("INSERT OR IGNORE INTO feed_seen (seq) VALUES (?)", (seq,))
        if seen.rowcount == 0:
            return
        at = float(data["at"])
        if data.get("kind") == "printed":
            # Counted on our store's calendar: only our store's per-day count
            # is ever checked here, and the total ignores days.
            day = local_day(at, timezone)
            self.count_printed_use(data["voucher_id"], data.get("store_id") or "", day)
            key = data.get("key")
            if isinstance(key, str) and 0 < len(key) <= 64 and data.get("store_id") == self.store_id:
                # Counted now by the feed: a copy heard over the LAN (store/lan.py) no longer counts, and
                # one arriving later finds this row and counts nothing.
                self.conn.execute(
                    "INSERT INTO lan_printed (key, voucher_id, store_id, day, at, counted_by_feed)"
                    " VALUES (?, ?, ?, ?, ?, 1) ON CONFLICT(key) DO UPDATE SET counted_by_feed = 1",
                    (key, data["voucher_id"], self.store_id, day, at))
        elif data.get("jti"):
            # The first redemption we heard of stays: it is what the cashier is told.
            self.conn.execute(
                "INSERT OR IGNORE INTO used_tokens (jti, at, till, store_id, origin)"
                " VALUES (?, ?, ?, ?, 'feed')",
                (data["jti"], at, str(data.get("till") or ""), str(data.get("store_id") or "")))

    def _feed_void(self, data: Mapping[str, Any]) -> None:
        """A void made at the backend (a manager there, or another till) of one of this till's
        redemptions, kept so this till's report agrees with the backend's. Voids of other tills'
        redemptions change nothing here: their codes stay used (see `void`)."""
        self.conn.execute(
            "INSERT OR IGNORE INTO voids (id, redemption_key, reason, staff_id, at, origin, synced_at)"
            " SELECT ?, key, ?, ?, ?, 'feed', ? FROM attempts WHERE key = ?",
            (data["id"], data["reason"], data.get("staff_id"), float(data["at"]), float(data["at"]),
             data["redemption_key"]))

    def own_pin_changed(self, staff_id: str, pin: str, proof_salt: str | None = None) -> None:
        """A staff member changed their PIN at this till (the backend took it): it works here at once.

        The backend's staff event brings its own hash and the new proof salt with the next feed; until
        then the old salt would make proofs of the old PIN, so it goes (voids go unproven meanwhile)
        unless the backend's answer gave the new one.
        """
        pin_hash = pins.hash_pin(pin)
        with self.transaction():
            self.conn.execute("UPDATE staff SET pin_hash = ?, proof_salt = ? WHERE id = ?",
                              (pin_hash, proof_salt, staff_id))
            self.conn.execute("DELETE FROM pin_failures WHERE staff_id = ?", (staff_id,))

    def trust_set(self) -> tokens.TrustSet:
        """The keys tokens may be signed with: enrolled/catalog keys plus bundled ones."""
        if self._trust is None:
            pems = [pem for (pem,) in self.conn.execute("SELECT pem FROM keys")]
            if self._asset_keys_dir is not None and self._asset_keys_dir.is_dir():
                for file in sorted(self._asset_keys_dir.glob("*.pem")):
                    try:
                        pem = file.read_text()
                        tokens.TrustSet.from_pems([pem])
                    except (ValueError, OSError):
                        # One bad bundled file must not stop the till trusting the others.
                        log.error("ignoring unusable key file %s", file)
                        continue
                    pems.append(pem)
            self._trust = tokens.TrustSet.from_pems(pems)
        return self._trust

    def voucher(self, voucher_id: str) -> Voucher | None:
        return self._vouchers.get(voucher_id)

    def vouchers(self) -> list[Voucher]:
        return list(self._vouchers.values())

    def printed_voucher(self, code: str) -> Voucher | None:
        voucher_id = self._printed.get(code)
        return None if voucher_id is None else self._vouchers.get(voucher_id)

    def digest_ahead(self, text: object) -> None:
        """Work out a typed short code's digest now (PBKDF2, ~6 ms), before the caller takes the store's write
        lock: `claim()` inside the deciding transaction then finds it remembered (codes.claim_digest)."""
        if isinstance(text, str) and codes.looks_like_short_code(text.strip()):
            try:
                codes.claim_digest(codes.parse_short_code(text.strip()), self.retailer_id)
            except codes.ShortCodeError:
                pass  # a mistyped code is refused before any lookup

    def claim(self, short_code: str) -> Claim | None:
        """The claim of a canonical short code, found by its digest (the catalog holds no codes)."""
        row = self.conn.execute(
            "SELECT jti, voucher_id, expires_at FROM claims WHERE code_digest = ?",
            (codes.claim_digest(short_code, self.retailer_id),)).fetchone()
        return None if row is None else Claim(short_code, row[0], row[1], row[2])

    def revoked(self, jti: str) -> bool:
        return jti in self._revoked


def _printable(text: str, limit: int) -> str:
    """`text` cut to `limit` and safe to store and log: a lone surrogate or a NUL escaped."""
    return text[:limit].encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


def _voucher_row(voucher: Voucher) -> tuple[str, str, str, str]:
    return voucher.id, json.dumps(voucher.to_json()), voucher.kind, voucher.status
