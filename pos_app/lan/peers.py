"""Where the store's other tills are: the addresses in the setting `lan_peers`, and those found by
mDNS/DNS-SD (zeroconf) as `_pika-till._tcp` services.

An address is only where to ask: who answers is proven by the answer's own signature (pos_app/lan/wire.py)
against the roster the backend gave (`lan_config()`), so an address listed wrongly, or a host announcing
itself falsely, costs a request and is believed in nothing. The announcement's TXT says the till's
device id (`dev`) and a tag of its store (`st`, the first 16 hex of sha256(store_id)): tills of other stores
on the same LAN are not asked at all, and the store's id is not shouted on the network.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import re
import socket
import threading
from typing import Callable

log = logging.getLogger(__name__)

SERVICE_TYPE = "_pika-till._tcp.local."
MAX_PEER_ADDRESSES = 64
MAX_QUEUED_NAMES = 64  # names announced and not yet resolved: a host announcing thousands costs no memory
RESOLVE_TIMEOUT_MS = 3000
_HOST = re.compile(r"[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\]")
_DEVICE = re.compile(r"[A-Za-z0-9_.-]{1,64}")

Address = tuple[str, int]


def store_tag(store_id: str) -> str:
    return hashlib.sha256(store_id.encode("utf-8")).hexdigest()[:16]


def parse_addresses(text: str) -> list[Address]:
    """`lan_peers`'s "host:port, host:port" (IPv6 in brackets); an entry that is not one is logged and
    skipped, the rest kept."""
    found: list[Address] = []
    for entry in re.split(r"[,\s]+", text or ""):
        if not entry:
            continue
        host, _, port = entry.rpartition(":")
        if not _HOST.fullmatch(host) or not port.isdigit() or not 0 < int(port) < 65536:
            log.error("lan_peers: %r is not host:port; skipped", entry[:80])
            continue
        address = (host.strip("[]"), int(port))
        if address not in found:
            found.append(address)
    return found[:MAX_PEER_ADDRESSES]


def url_of(address: Address) -> str:
    host, port = address
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class Discovery:
    """This till announced, and the store's other tills found, on the LAN by mDNS. `found(address, device_id)`
    is called from the discovery's own thread for each till of this store's tag that announces itself.

    zeroconf answers and browses on threads of its own; resolving a service waits for an answer, so the
    browser's callback only queues a name and this thread resolves it. The queue holds each name once and
    at most MAX_QUEUED_NAMES: anyone on the LAN can announce, and what is announced is only where to ask."""

    def __init__(self, *, device_id: str, store_id: str, port: int, bind: str,
                 found: Callable[[Address, str], None]):
        self.device_id, self.tag, self.port, self.bind, self.found = device_id, store_tag(store_id), port, bind, found
        self._names: queue.Queue[str | None] = queue.Queue(MAX_QUEUED_NAMES)
        self._queued: set[str] = set()
        self._queued_lock = threading.Lock()
        self._stopping = threading.Event()
        self.dropped = 0  # names not queued because the queue was full (a flood of announcements)
        self._thread: threading.Thread | None = None
        self._zc = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="lan-discovery", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 3.0) -> None:
        self._stopping.set()
        try:
            self._names.put_nowait(None)
        except queue.Full:  # the thread looks at `_stopping` after each name
            pass
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def queue_name(self, name: str) -> bool:
        """A service name announced (zeroconf's thread): queued once to be resolved, unless the queue is full."""
        with self._queued_lock:
            if name in self._queued or self._stopping.is_set():
                return False
            try:
                self._names.put_nowait(name)
            except queue.Full:
                self.dropped += 1
                if self.dropped == 1:
                    log.warning("LAN discovery: more than %d tills announced at once; the rest are asked when "
                                "they announce again", MAX_QUEUED_NAMES)
                return False
            self._queued.add(name)
            return True

    def _next_name(self) -> str | None:
        name = self._names.get()
        if name is not None:
            with self._queued_lock:
                self._queued.discard(name)
        return None if self._stopping.is_set() else name

    def _run(self) -> None:
        from zeroconf import IPVersion, ServiceBrowser, ServiceInfo, ServiceStateChange, Zeroconf

        try:
            interfaces = ["127.0.0.1"] if self.bind.startswith("127.") else (
                [self.bind] if self.bind not in ("0.0.0.0", "") else None)
            self._zc = zc = Zeroconf(**({"interfaces": interfaces} if interfaces else {}),
                                     ip_version=IPVersion.V4Only)
        except (OSError, ValueError) as exc:  # no multicast here: lan_peers still work
            log.error("LAN discovery (mDNS) cannot start, so only lan_peers are asked: %s", exc)
            return
        browser = None
        try:
            addresses = [socket.inet_aton(a) for a in (interfaces or _own_addresses())]
            info = ServiceInfo(SERVICE_TYPE, f"{self.device_id}.{SERVICE_TYPE}", port=self.port,
                               addresses=addresses, properties={"dev": self.device_id, "st": self.tag})

            def changed(zeroconf, service_type, name, state_change) -> None:
                if state_change in (ServiceStateChange.Added, ServiceStateChange.Updated):
                    self.queue_name(name)

            browser = ServiceBrowser(zc, SERVICE_TYPE, handlers=[changed])
            zc.register_service(info, allow_name_change=True)
            while (name := self._next_name()) is not None:
                self._resolve(zc, name)
        except Exception:  # discovery is a convenience: its failure leaves lan_peers working
            log.exception("LAN discovery (mDNS) stopped")
        finally:
            if browser is not None:
                browser.cancel()
            try:
                zc.unregister_all_services()
            finally:
                zc.close()

    def _resolve(self, zc, name: str) -> None:
        info = zc.get_service_info(SERVICE_TYPE, name, timeout=RESOLVE_TIMEOUT_MS)
        if info is None or not info.port:
            return
        props = {(k or b"").decode("utf-8", "replace"): (v or b"").decode("utf-8", "replace")
                 for k, v in (info.properties or {}).items()}
        device_id = props.get("dev", "")
        if props.get("st") != self.tag or device_id == self.device_id or not _DEVICE.fullmatch(device_id):
            return  # another store's till, or this one
        for host in info.parsed_addresses()[:4]:
            self.found((host, info.port), device_id)


def _own_addresses() -> list[str]:
    """The address this machine sends multicast from (its LAN's), found without sending anything."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("224.0.0.251", 5353))
            return [probe.getsockname()[0]]
        except OSError:
            return ["127.0.0.1"]
