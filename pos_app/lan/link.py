"""One peer address's link, on a thread of its own: who answers there, our records pushed to it, its
records pulled from it.

The link learns who answers by a signed hello (device id, its head, what it holds of our log), then loops:
push our records after what the peer holds whenever our head moves (the service wakes it), pull the
peer's records after what we hold every pull interval. Every answer is checked (pos_app/lan/wire.py)
before anything in it is used, and pages are applied by the service's store thread. A peer that does not
answer is asked again at the next pull: a till switched off or behind a partition catches up when it is
back, from what each side holds, with nothing kept in memory that a restart would lose.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Protocol

import httpx

from ..core import till_log
from ..store.lan import FLOOD, SELF
from . import wire
from .peers import Address, url_of

log = logging.getLogger(__name__)

MAX_PAGES = 50  # pages one push or pull sends or fetches before the link looks at the other direction
SELF_RECHECK_S = 60.0  # an address that turned out to be this till itself
# What a peer's answer may say as its error's code (anything else is lan_malformed): a hostile host must not
# choose the words this till logs, nor grow what it remembers of refusals.
ANSWER_CODES = frozenset((*wire.REFUSALS, SELF, FLOOD, wire.NOT_FOUND, wire.BUSY, wire.FAILED, till_log.GAP,
                          till_log.EDITED, till_log.REORDERED, till_log.REWOUND, till_log.BAD_SIGNATURE,
                          till_log.MALFORMED))


class Unavailable(Exception):
    """The peer answered that it cannot now (busy, stopping): like no answer, not a refusal."""


class IsSelf(Exception):
    """This till answered, signed by its own key: the address is its own (asked again after a while)."""


class Host(Protocol):
    """What a link asks of the service it belongs to (pos_app/lan/service.py's LanService)."""

    keys: wire.Keys | None
    own_head: tuple[int, str]
    pull_interval_s: float
    push: bool
    request_timeout_s: float
    clock: Callable[[], float]

    def now(self) -> float: ...
    def call(self, job: Callable[[Any], Any], timeout: float = ...) -> Any: ...
    def heard(self, device_id: str) -> None: ...
    def refused(self, where: str, exc: wire.LanRefused) -> None: ...
    def signed_at(self, keys: wire.Keys, records: list[dict], head: tuple[int, str]) -> dict: ...


class PeerLink:
    def __init__(self, service: Host, address: Address, announced: str | None = None):
        self.service, self.address, self.url = service, address, url_of(address)
        self.announced = announced  # the device id mDNS said is here (None: listed); believed in nothing
        self.device_id: str | None = None
        self.name: str | None = None
        self.peer_holds: int | None = None  # the last seq of our log the peer said it holds
        self.is_self = False
        self.last_heard_at: float | None = None
        self.error: str | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ended = False

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"lan-peer-{self.address[0]}:{self.address[1]}",
                                        daemon=True)
        self._thread.start()

    def stop(self, wait: bool = True) -> None:
        """Told to stop; with `wait`, joined (a request in progress ends by its deadline, see `_request`)."""
        self._stop.set()
        self._wake.set()
        if wait:
            self.join(self.request_deadline_s + 1)

    def join(self, timeout: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def request_deadline_s(self) -> float:
        """A whole request's: httpx's timeout is per read, and a peer sending a byte a second never trips it."""
        return 2 * self.service.request_timeout_s

    def wake(self) -> None:
        self._wake.set()

    @property
    def alive(self) -> bool:
        """Its thread runs or is about to (a link whose thread ended is replaced by the service's add_peer)."""
        return not self._ended

    def status(self) -> dict:
        error = self.error if self.alive else f"the link stopped: {self.error}"
        return {"address": f"{self.address[0]}:{self.address[1]}", "device_id": self.device_id, "name": self.name,
                "peer_holds": self.peer_holds, "last_heard_at": self.last_heard_at, "error": error,
                **({"self": True} if self.is_self else {})}

    # --- the loop ------------------------------------------------------------------------------

    def _run(self) -> None:
        interval = self.service.pull_interval_s
        client = httpx.Client(timeout=self.service.request_timeout_s, trust_env=False)  # no proxy on a LAN
        next_pull = 0.0
        try:
            while not self._stop.is_set():
                self._wake.clear()
                # Read once per step: the store thread swaps the keys whole, or to None (the backend took them).
                keys = self.service.keys
                try:
                    if keys is None:
                        raise wire.LanRefused(wire.NOT_CONFIGURED, "this till holds no LAN keys from the backend")
                    if self.device_id is None or self.is_self:
                        self._hello(client, keys)
                    if not self.is_self:
                        if self.service.push:
                            self._push(client, keys)
                        if time.monotonic() >= next_pull:
                            next_pull = time.monotonic() + interval
                            self._pull(client, keys)
                    self.error = None
                except IsSelf:
                    self.is_self, self.error = True, None
                except (httpx.HTTPError, Unavailable, TimeoutError, RuntimeError) as exc:
                    # No answer, busy or stopping, or the store thread busy or stopping: asked again later.
                    self._failed(f"{type(exc).__name__}: {exc}"[:200])
                    next_pull = time.monotonic() + interval
                except wire.LanRefused as exc:
                    if exc.code != wire.NOT_CONFIGURED:
                        self.service.refused(f"the till at {self.url}", exc)
                    self._failed(f"{exc.code}: {exc}"[:200])
                    next_pull = time.monotonic() + interval
                except Exception as exc:  # the store failing (sqlite3.OperationalError) or a bug: the link goes on
                    self._failed(f"{type(exc).__name__}: {exc}"[:200], bug=True)
                    next_pull = time.monotonic() + interval
                wait = SELF_RECHECK_S if self.is_self else max(0.0, next_pull - time.monotonic())
                self._wake.wait(wait)
        finally:
            self._ended = True
            client.close()

    def _failed(self, error: str, bug: bool = False) -> None:
        if self.error is None:  # once until it answers again: a peer away for hours is one line
            if bug:
                log.error("LAN: the link to the till at %s failed, asked again later: %s", self.url, error,
                          exc_info=True)
            else:
                log.info("LAN: the till at %s does not answer: %s", self.url, error)
        self.error = error
        self.peer_holds = None  # asked again by a hello: it may be another till now, or restored

    # --- the requests -----------------------------------------------------------------------------

    def _request(self, client: httpx.Client, keys: wire.Keys, method: str, target: str, body: bytes = b"",
                 to: str = "") -> tuple[wire.Sender, bytes]:
        """`to`: the device id of the till asked, "" for a hello (who answers at the address is not known)."""
        headers = wire.sign_request(keys, method, target, body, self.service.now(), to)
        deadline = time.monotonic() + self.request_deadline_s
        with client.stream(method, self.url + target, content=body,
                           headers={**headers, "Content-Type": "application/json"}) as answer:
            data = b""
            for chunk in answer.iter_bytes():
                data += chunk
                if len(data) > wire.MAX_BODY_BYTES:
                    raise wire.LanRefused(wire.TOO_LARGE, f"an answer of more than {wire.MAX_BODY_BYTES} bytes")
                if self._stop.is_set():
                    raise TimeoutError("the link is stopping")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no whole answer in {self.request_deadline_s:g} s")
        if answer.status_code >= 500:  # busy or stopping: not a refusal, asked again at the next pull
            raise Unavailable(f"answered {answer.status_code}: {data[:200]!r}")
        if answer.status_code != 200 and not answer.headers.get(wire.MAC):
            raise wire.LanRefused(_code_of(data), f"answered {answer.status_code}: {data[:200]!r}")
        sender = wire.verify_answer(keys, answer.status_code, headers[wire.MAC],
                                    {k.lower(): v for k, v in answer.headers.items()}, data, self.service.now())
        if sender.device_id == keys.device_id:
            raise IsSelf()
        self.is_self = False
        if self.device_id is not None and sender.device_id != self.device_id:
            self.device_id = None  # another till answers at this address now: a hello first
            raise wire.LanRefused(wire.NOT_IN_ROSTER, f"{sender.device_id} answered for {self.device_id}")
        self.device_id, self.name = sender.device_id, sender.name
        self.last_heard_at = self.service.clock()
        self.service.heard(sender.device_id)
        if answer.status_code != 200:
            raise wire.LanRefused(_code_of(data), f"answered {answer.status_code}: {data[:200]!r}")
        return sender, data

    def _hello(self, client: httpx.Client, keys: wire.Keys) -> None:
        self.device_id = None
        _, data = self._request(client, keys, "GET", wire.HELLO)
        head, held = wire.parse_hello(data)
        self.peer_holds = held

    def _push(self, client: httpx.Client, keys: wire.Keys) -> None:
        """Our records after what the peer holds, page by page, until it holds our head."""
        for _ in range(MAX_PAGES):
            if self.peer_holds is None or self.device_id is None:
                self._hello(client, keys)
            holds = self.peer_holds
            if holds >= self.service.own_head[0]:
                return
            records = self.service.call(lambda store: store.log_since(holds, wire.MAX_RECORDS))
            if not records:
                return
            head = self.service.signed_at(keys, records, (0, till_log.GENESIS))
            page = wire.dumps({"records": records, "head": head})
            _, data = self._request(client, keys, "POST", wire.RECORDS, page, self.device_id)
            self.peer_holds = wire.parse_push_answer(data)
            if self.peer_holds <= holds and records[0]["seq"] == holds + 1:
                return  # it took nothing it could: asked again at the next pull
        self._wake.set()  # more than MAX_PAGES behind: the pull gets its turn, then on

    def _pull(self, client: httpx.Client, keys: wire.Keys) -> None:
        """The peer's records after what we hold of it, page by page."""
        device_id = self.device_id
        peer = keys.roster.get(device_id) if device_id else None
        if peer is None:
            return
        for _ in range(MAX_PAGES):
            held = self.service.call(lambda store: store.lan_held(device_id)[0])
            _, data = self._request(client, keys, "GET", f"{wire.LOG}?after={held}&limit={wire.MAX_RECORDS}",
                                    to=device_id)
            records, head = wire.parse_page(data)
            if not records:
                return
            applied = self.service.call(lambda store: store.apply_lan_records(peer, records, head))
            if applied.problems:
                problem = applied.problems[0]
                raise wire.LanRefused(problem.code, f"its log: {problem.message}")
            if len(records) < wire.MAX_RECORDS:
                return


def _code_of(data: bytes) -> str:
    """The code of a peer's error answer if it is one a till answers with, else lan_malformed."""
    try:
        code = wire.loads(data)["error"]["code"]
    except (wire.LanRefused, KeyError, TypeError):
        return wire.MALFORMED
    return code if isinstance(code, str) and code in ANSWER_CODES else wire.MALFORMED
