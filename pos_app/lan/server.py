"""A small HTTP server for the store's other tills: plumbing only, on worker threads.

It reads a bounded request (a line, headers, a body of at most MAX_BODY_BYTES, each socket read with a
timeout, and all of them within one deadline) and hands it to the service's `app`
(pos_app/lan/service.py), which checks the proofs and asks the service's store thread; the server itself
never touches SQLite. At most `max_threads` requests are served at once, and at most `max_per_client`
from one address: one more is closed at once rather than queued, so a flooding or hostile host costs a
till a few threads, never its memory, and one that sends a request slowly (a header line every few
seconds) holds its threads for the deadline only, and only its own share of them. HTTP/1.0, one request
per connection: a LAN's connect is cheap, and no peer holds a thread open between requests.
"""

from __future__ import annotations

import http.server
import io
import logging
import socket
import socketserver
import threading
import time
from dataclasses import dataclass
from typing import Callable, Mapping

from .wire import FAILED, MAX_BODY_BYTES, TOO_LARGE, MALFORMED, error_body

log = logging.getLogger(__name__)

DEFAULT_MAX_THREADS = 8
DEFAULT_MAX_PER_CLIENT = 2  # a till asks one request at a time of a peer (two: listed at two addresses)
SOCKET_TIMEOUT_S = 5.0
REQUEST_DEADLINE_S = 10.0  # the request line, headers and body together, from the connection's accept


@dataclass(frozen=True)
class Request:
    method: str
    target: str  # path and query, as sent
    headers: Mapping[str, str]  # names lower-case
    body: bytes
    client: str  # the peer's address, for the log


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    headers: Mapping[str, str]


App = Callable[[Request], Answer]


class _DeadlineReader(io.RawIOBase):
    """The connection's reads, each waiting at most until the request's deadline: a per-read timeout alone
    lets a peer that sends a byte every few seconds hold a thread for ever."""

    def __init__(self, sock: socket.socket, deadline: float):
        self.sock, self.deadline = sock, deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the request was not read within its deadline")
        self.sock.settimeout(min(SOCKET_TIMEOUT_S, left))
        return self.sock.recv_into(buffer)


class _Handler(http.server.BaseHTTPRequestHandler):
    server_version = "pika-till-lan"
    sys_version = ""
    timeout = SOCKET_TIMEOUT_S  # every read and write of the connection
    default_request_version = "HTTP/1.0"  # a request line that is not one is still answered with a status

    def setup(self) -> None:
        super().setup()
        self.rfile.close()  # makefile's reader, replaced by one that keeps the deadline
        self.rfile = io.BufferedReader(_DeadlineReader(self.connection,
                                                       time.monotonic() + self.server.deadline_s))

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own refusals (a request line or headers not HTTP), as JSON with a stable code."""
        self.close_connection = True
        self._send(Answer(code, error_body(MALFORMED, f"not an HTTP request this till answers: {message or ''}"),
                          {}))

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        length = self.headers.get("Content-Length", "0")
        if not length.isdigit() or len(length) > 9:
            self._send(Answer(400, error_body(MALFORMED, "Content-Length is not a number"), {}))
            return
        if int(length) > MAX_BODY_BYTES:
            self._send(Answer(413, error_body(TOO_LARGE, f"a body of more than {MAX_BODY_BYTES} bytes"), {}))
            return
        body = self.rfile.read(int(length))
        if len(body) != int(length):
            return  # the peer went away mid-body
        headers = {name.lower(): value for name, value in self.headers.items()}
        try:
            answer = self.server.app(Request(self.command, self.path, headers, body, self.client_address[0]))
        except Exception:  # a bug answers 500, and the server goes on
            log.exception("the LAN request %s %s failed", self.command, self.path[:100])
            answer = Answer(500, error_body(FAILED, "this till could not answer"), {})
        self._send(answer)

    def _send(self, answer: Answer) -> None:
        self.connection.settimeout(SOCKET_TIMEOUT_S)  # the read's deadline was for the peer's part
        self.send_response(answer.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer.body)))
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(answer.body)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - http.server's name
        pass  # each request is not worth a line; refusals are logged by the service, once a minute


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    # The kernel's queue of connections not accepted yet (socketserver's 5 drops a burst, and the peers it
    # dropped wait a second to try again); each accepted one is served or closed at once.
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], app: App, max_threads: int, max_per_client: int,
                 deadline_s: float):
        self.app, self.max_threads, self.max_per_client, self.deadline_s = app, max_threads, max_per_client, deadline_s
        self.serving: dict[str, int] = {}  # client address → its connections being served
        self.serving_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request, client_address) -> None:
        client = client_address[0]
        with self.serving_lock:
            if sum(self.serving.values()) >= self.max_threads or self.serving.get(client, 0) >= self.max_per_client:
                self.shutdown_request(request)  # busy, or this address has its share: closed, not queued
                return
            self.serving[client] = self.serving.get(client, 0) + 1
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._done(client)
            raise

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._done(client_address[0])

    def _done(self, client: str) -> None:
        with self.serving_lock:
            left = self.serving.pop(client) - 1
            if left:
                self.serving[client] = left

    def handle_error(self, request, client_address) -> None:
        log.debug("a LAN connection from %s failed", client_address[0], exc_info=True)


class LanServer:
    """The listening socket and its accept thread. `start()` returns the port it listens on."""

    def __init__(self, bind: str, port: int, app: App, *, max_threads: int = DEFAULT_MAX_THREADS,
                 max_per_client: int = DEFAULT_MAX_PER_CLIENT, deadline_s: float = REQUEST_DEADLINE_S):
        self.bind, self.port, self.app, self.max_threads = bind, port, app, max_threads
        self.max_per_client, self.deadline_s = max_per_client, deadline_s
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> int:
        """Listen (OSError if the address is taken or not this machine's)."""
        self._server = _Server((self.bind, self.port), self.app, self.max_threads, self.max_per_client,
                               self.deadline_s)
        self._server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="lan-server", daemon=True)
        self._thread.start()
        return self.port

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
