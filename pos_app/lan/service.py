"""LanService: this till's part in its store's LAN, beside the sync engine, on threads of its own.

Why it exists: while the backend is unreachable the feed brings nothing, so a code redeemed at till 1 would
be accepted again at till 2. So each till hands its store's other tills its log (pos_app.core.till_log: the
records it is chained and signs anyway) and applies theirs (store/lan.py): a personal code another till
accepted is `already_redeemed` here, naming that till and when; a printed code's uses count here too.

Threads, so nothing waits on the network while holding the store, and the store is never touched by two:

- the store thread (`lan-store`) owns the service's TillStore connection. It runs every job the others
  hand it (read records, apply a peer's page, sign a head), and between jobs watches this till's own log
  head (every `watch_interval_s`, 50 ms): a new record wakes every peer link, which pushes it at once.
  Every `CONFIG_EVERY_S` it reads the settings again (the sync engine keeps the backend's rotated keys
  and roster there).
- the server's threads (pos_app/lan/server.py) answer the store's other tills: proofs checked there,
  SQLite reached only through the store thread.
- one link thread per peer address (lan_peers, or found by mDNS, pos_app/lan/peers.py): a hello to learn
  who answers and what it holds of our log, pushes whenever our head moves, and a pull of its log after
  what we hold every `pull_interval_s`, so a peer that was away (switched off, a partition) catches up.

Nothing received goes into the outbox; each till sends the backend only its own work.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Callable

from ..core import till_log
from ..store import TillStore, settings
from ..store.chain import LOG_KEY
from ..store.lan import SELF
from . import wire
from .link import PeerLink
from .peers import Address, Discovery, parse_addresses
from .server import Answer, LanServer, Request

log = logging.getLogger(__name__)

DEFAULT_PULL_INTERVAL_S = 2.0
DEFAULT_WATCH_INTERVAL_S = 0.05
CONFIG_EVERY_S = 2.0
STATE_EVERY_S = 5.0
JOB_TIMEOUT_S = 5.0
REFUSAL_LOG_EVERY_S = 60.0
MAX_REFUSALS_KEPT = 256  # (where, code) pairs remembered for REFUSAL_LOG_EVERY_S; past it, one line a minute
MAX_LINKS = 64  # peer links (threads): the store's tills, listed or found, and a few hosts that lie
MAX_UNPROVEN_PER_DEVICE = 2  # links found for one device id that have not yet heard it answer
STOP_TIMEOUT_S = 3.0  # what `stop` waits in all (the window waits for it as it closes)


class LanService:
    """Thread-safe interface: start, stop, status, port (once listening), wait_listening."""

    def __init__(self, store_path: str | Path, *, clock: Callable[[], float] = time.time,
                 pull_interval_s: float = DEFAULT_PULL_INTERVAL_S,
                 watch_interval_s: float = DEFAULT_WATCH_INTERVAL_S, request_timeout_s: float = 2.0,
                 push: bool = True):
        self.store_path = Path(store_path)
        self.clock = clock
        self.pull_interval_s, self.watch_interval_s = pull_interval_s, watch_interval_s
        self.request_timeout_s = request_timeout_s
        self.push = push  # False: peers hear only by pulling (bench/lan_share.py's reference)
        self.keys: wire.Keys | None = None  # swapped whole by the store thread; read by every other
        self.skew = 0.0  # this till's clock minus the backend's (the backend measured it): messages use its clock
        self.own_head = (0, till_log.GENESIS)
        self.port: int | None = None
        self._state = "stopped"
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._listening = threading.Event()
        self._thread: threading.Thread | None = None
        self._server: LanServer | None = None
        self._discovery: Discovery | None = None
        self._links: dict[Address, PeerLink] = {}
        self._links_lock = threading.Lock()
        self._heard: dict[str, float] = {}
        self._heard_lock = threading.Lock()
        self._refusals: dict[tuple[str, str], float] = {}
        self._refusals_lock = threading.Lock()
        self._stop_deadline = 0.0
        self._links_full = False  # said once in the log

    # --- the interface ----------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the LAN service is running already")
        self._stopping.clear()
        self._state = "starting"
        self._thread = threading.Thread(target=self._run, name="lan-store", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Stop within `timeout` in all: every link is told at once and joined against one deadline. A
        thread still in a peer's request then ends on its own (they are daemons, and touch no store)."""
        self._stop_deadline = time.monotonic() + timeout
        self._stopping.set()
        self._jobs.put(None)
        if self._thread is not None:
            self._thread.join(max(0.0, self._stop_deadline - time.monotonic()) + 0.5)
            if self._thread.is_alive():
                log.error("the LAN service did not stop in time")
            self._thread = None

    def wait_listening(self, timeout: float) -> int | None:
        """The port once the server listens (None: it did not, in time, or the service is disabled)."""
        self._listening.wait(timeout)
        return self.port

    def status(self) -> dict:
        with self._links_lock:
            links = list(self._links.values())
        return {"state": self._state, "port": self.port, "peers": [link.status() for link in links]}

    def now(self) -> float:
        """This till's clock as the backend's: tills whose clocks differ but have synced agree on it."""
        return self.clock() - self.skew

    def call(self, job: Callable[[TillStore], Any], timeout: float = JOB_TIMEOUT_S) -> Any:
        """Run `job(store)` on the store thread and return its result (its exception raised here)."""
        if self._stopping.is_set():
            raise RuntimeError("the LAN service is stopping")
        future: Future = Future()
        self._jobs.put((job, future))
        return future.result(timeout)

    def heard(self, device_id: str) -> None:
        with self._heard_lock:
            self._heard[device_id] = self.clock()

    def refused(self, where: str, exc: wire.LanRefused) -> None:
        """A refusal, logged once a minute per address and code: a hostile or misconfigured host on the LAN
        must not fill the till's log."""
        now, key = time.monotonic(), (where, exc.code)
        with self._refusals_lock:
            if now - self._refusals.get(key, -REFUSAL_LOG_EVERY_S) < REFUSAL_LOG_EVERY_S:
                return
            if len(self._refusals) >= MAX_REFUSALS_KEPT:
                self._refusals = {k: at for k, at in self._refusals.items() if now - at < REFUSAL_LOG_EVERY_S}
            if len(self._refusals) >= MAX_REFUSALS_KEPT:
                # Refused by more hosts or for more reasons than are remembered: one line for them all.
                key = ("", "")
                if now - self._refusals.get(key, -REFUSAL_LOG_EVERY_S) < REFUSAL_LOG_EVERY_S:
                    return
                self._refusals[key] = now
                log.warning("LAN: more than %d hosts or reasons refused in a minute; the last: %s refused (%s)",
                            MAX_REFUSALS_KEPT, where, exc.code)
                return
            self._refusals[key] = now
        log.warning("LAN: %s refused (%s): %s", where, exc.code, exc)

    # --- the store thread ----------------------------------------------------------------------

    def _run(self) -> None:
        try:
            store = TillStore(self.store_path)
        except Exception:
            log.exception("the LAN service cannot open the till's store")
            self._state = "error"
            self._listening.set()
            return
        try:
            if settings.value(store, "lan_enabled") != "1" or not store.enrolled:
                self._state = "disabled" if store.enrolled else "not_enrolled"
                return
            self._state = "waiting"  # for the backend's roster to list this till (_refresh starts the rest)
            self._loop(store)
        finally:
            self._listening.set()
            self._shutdown(store)

    def _begin(self, store: TillStore) -> None:
        """Listen, announce, ask the peers listed: once this till holds the store's keys and is in its roster."""
        self._state = "running"
        bind, port = settings.value(store, "lan_bind"), settings.value(store, "lan_port")
        self._server = LanServer(bind, port, self._app)
        try:
            self.port = self._server.start()
        except OSError as exc:  # its peers cannot push to it; it still pushes to them and pulls from them
            log.warning("the LAN service cannot listen on %s:%s (%s): this till still asks its peers, but they"
                        " cannot tell it at once", bind, port, exc)
            self._server = None
        self._listening.set()
        self._note_state(store, started=True)
        if self.port is not None:
            self._start_discovery(store, bind)

    def _loop(self, store: TillStore) -> None:
        next_watch = next_config = next_state = 0.0
        while not self._stopping.is_set():
            now = time.monotonic()
            try:
                item = self._jobs.get(timeout=max(0.0, min(next_watch, next_config) - now))
            except queue.Empty:
                item = ()
            if item is None:
                break
            if item:
                job, future = item
                if future.set_running_or_notify_cancel():
                    try:
                        future.set_result(job(store))
                    except BaseException as exc:  # the caller raises it; the store thread goes on
                        future.set_exception(exc)
            now = time.monotonic()
            if now >= next_watch:
                next_watch = now + self.watch_interval_s
                self._watch(store)
            if now >= next_config:
                next_config = now + CONFIG_EVERY_S
                self._refresh(store)
            if now >= next_state and self._state == "running":
                next_state = now + STATE_EVERY_S
                self._note_state(store)

    def _watch(self, store: TillStore) -> None:
        head = store.log_head()
        if head != self.own_head:
            self.own_head = head
            with self._links_lock:
                for link in self._links.values():
                    link.wake()

    def _refresh(self, store: TillStore) -> None:
        """The settings as the file holds them now (the sync engine writes the backend's lan there)."""
        store.reload_settings()
        self.skew = store.clock_skew()
        config = store.lan_config()
        keys = None
        if config is not None and store.device_id:
            store.log_public_key()  # made now for a till enrolled before its log (store/chain.py)
            try:
                keys = wire.Keys.of(config, store.device_id, store.get(LOG_KEY))
            except (ValueError, TypeError, KeyError, StopIteration) as exc:
                log.error("the LAN keys cannot be used, so this till shares nothing on the LAN: %s", exc)
        self.keys = keys
        if keys is None or store.device_id not in keys.roster:
            # Not yet: the backend lists a till once its log key is registered (its first log sync), and its
            # peers would refuse it until then.
            return
        if self._state == "waiting":
            self._begin(store)
        for address in parse_addresses(settings.value(store, "lan_peers")):
            self.add_peer(address)

    def add_peer(self, address: Address, device_id: str | None = None) -> None:
        """A link to `address`: listed in the settings (`device_id` None), or found by mDNS announcing
        `device_id`. Anyone on the LAN can announce anything, so a found till is asked only if the roster
        names it, while no link has heard it answer, and with at most MAX_UNPROVEN_PER_DEVICE addresses
        not yet proven (one that failed gives way to a new one); and there are never more than MAX_LINKS."""
        keys = self.keys
        if device_id is not None and (keys is None or device_id not in keys.roster or device_id == keys.device_id):
            return
        with self._links_lock:
            old = self._links.get(address)
            if old is not None and old.alive or self._stopping.is_set():
                return  # a link whose thread ended (a bug) is replaced: the till is asked again
            if device_id is not None:
                links = [link for link in self._links.values() if link.alive]
                if any(link.device_id == device_id for link in links):
                    return  # the same till at another address (listed and found): asked once
                unproven = [link for link in links if link.announced == device_id and link.device_id is None]
                if len(unproven) >= MAX_UNPROVEN_PER_DEVICE:
                    # A host may announce another till's id to hide it: an address that did not answer as
                    # that till gives way to the new one (the real till proves itself at its first hello).
                    failed = next((link for link in unproven if link.error is not None), None)
                    if failed is None:
                        return
                    failed.stop(wait=False)
                    del self._links[failed.address]
                    old = self._links.get(address)
            if old is None and len(self._links) >= MAX_LINKS:
                if not self._links_full:
                    self._links_full = True
                    log.warning("LAN: %d peer links already; %s:%s and any more are not asked", MAX_LINKS, *address)
                return
            link = self._links[address] = PeerLink(self, address, announced=device_id)
        link.start()

    def _start_discovery(self, store: TillStore, bind: str) -> None:
        if settings.value(store, "lan_discovery") != "1" or self.keys is None or not store.store_id:
            return
        self._discovery = Discovery(device_id=store.device_id, store_id=store.store_id, port=self.port,
                                    bind=bind, found=lambda address, device: self.add_peer(address, device))
        self._discovery.start()

    def _note_state(self, store: TillStore, started: bool = False, stopped: bool = False) -> None:
        try:
            kept = store.stored("lan_state").get("lan_state") or {}
            with self._heard_lock:
                heard = dict(self._heard)
            state = {"enabled": True, "port": self.port, "heard": {**(kept.get("heard") or {}), **heard},
                     "started_at": self.clock() if started else kept.get("started_at"),
                     "stopped_at": self.clock() if stopped else None}
            if state != kept:
                store.note_lan_state(state)
        except Exception:  # a figure for `status`: its failure must not stop sharing
            log.exception("the LAN service's state could not be kept")

    def _shutdown(self, store: TillStore) -> None:
        self._stopping.set()
        deadline = self._stop_deadline or time.monotonic() + STOP_TIMEOUT_S
        with self._links_lock:
            links, self._links = list(self._links.values()), {}
        for link in links:  # all told first: each ends its request while the others do
            link.stop(wait=False)
        if self._discovery is not None:
            self._discovery.stop(timeout=max(0.0, deadline - time.monotonic()))
            self._discovery = None
        if self._server is not None:
            self._server.stop()
            self._server = None
        for link in links:
            link.join(max(0.0, deadline - time.monotonic()))
        while True:  # jobs still queued: their callers are told
            try:
                item = self._jobs.get_nowait()
            except queue.Empty:
                break
            if item:
                item[1].set_exception(RuntimeError("the LAN service stopped"))
        if self._state == "running":
            self._note_state(store, stopped=True)
        store.close()
        self._state = "stopped"

    # --- answering the store's other tills (the server's threads) ----------------------------

    def _app(self, request: Request) -> Answer:
        path, _, query = request.target.partition("?")
        route = {("GET", wire.HELLO): self._hello, ("GET", wire.LOG): self._log,
                 ("POST", wire.RECORDS): self._records}.get((request.method, path))
        if route is None:
            return Answer(404, wire.error_body(wire.NOT_FOUND, "no such LAN request"), {})
        keys = self.keys
        try:
            sender = wire.verify_request(keys, request.method, request.target, request.headers, request.body,
                                         self.now())
        except wire.LanRefused as exc:
            self.refused(f"a request from {request.client}", exc)
            status = 400 if exc.code in (wire.MALFORMED, wire.TOO_LARGE) else 403
            return Answer(status, wire.error_body(exc.code, str(exc)), {})
        if sender.device_id == keys.device_id:
            # Its own request (an address of this till in lan_peers, or one played back): refused, but the
            # answer is signed, so that the asking link learns it asked itself and does not ask again soon.
            body = wire.error_body(SELF, "this till does not take its own records")
            return Answer(403, body, wire.sign_answer(keys, 403, sender.mac, body, self.now()))
        self.heard(sender.device_id)
        try:
            status, body = route(keys, sender, query, request.body)
        except wire.LanRefused as exc:
            self.refused(f"a request from {sender.device_id} at {request.client}", exc)
            status, body = 400, wire.error_body(exc.code, str(exc))
        except (TimeoutError, RuntimeError):
            status, body = 503, wire.error_body(wire.BUSY, "this till's store did not answer in time")
        return Answer(status, body, wire.sign_answer(keys, status, sender.mac, body, self.now()))

    def _hello(self, keys: wire.Keys, sender: wire.Sender, query: str, body: bytes) -> tuple[int, bytes]:
        head, held = self.call(lambda store: (store.signed_head(), store.lan_held(sender.device_id)[0]))
        return 200, wire.dumps({"head": head, "held": held})

    def _log(self, keys: wire.Keys, sender: wire.Sender, query: str, body: bytes) -> tuple[int, bytes]:
        after, limit = wire.parse_log_query(query)
        records, head = self.call(lambda store: (store.log_since(after, limit), store.log_head()))
        return 200, wire.dumps({"records": records, "head": self.signed_at(keys, records, head)})

    def _records(self, keys: wire.Keys, sender: wire.Sender, query: str, body: bytes) -> tuple[int, bytes]:
        records, head = wire.parse_page(body)
        peer = keys.roster[sender.device_id]
        applied = self.call(lambda store: store.apply_lan_records(peer, records, head))
        if applied.problems and not applied.resend:
            problem = applied.problems[0]
            self.refused(f"the log of {sender.device_id}", wire.LanRefused(problem.code, problem.message))
            return 409, wire.error_body(problem.code, problem.message)
        return 200, wire.dumps({"held": applied.held})

    def signed_at(self, keys: wire.Keys, records: list[dict], head: tuple[int, str]) -> dict:
        """A head signed at a page's last record (or at the log's head for an empty page)."""
        seq, hash_ = (records[-1]["seq"], records[-1]["hash"]) if records else head
        return {"seq": seq, "hash": hash_, "sig": till_log.sign_head(keys.private_key, keys.device_id, seq, hash_)}
