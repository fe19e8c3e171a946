"""Serving the WSGI app: granian in production, the standard library when embedded.

granian runs the HTTP side in Rust and the app in a few Python threads per
worker process, one process a core: ES256 verification and JSON then use both
cores, while each process's writer groups its commits and the processes take
turns at SQLite's write lock (over PostgreSQL, each request's write is a
transaction of its own and the database groups the commits). A till that embeds the backend (the demo) uses
wsgiref on a thread instead.
"""

from __future__ import annotations

import os
import socket
import threading
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server


def serve_granian(data_dir: str, host: str, port: int, *, threads: int = 8, workers: int = 2,
                  database: str | None = None) -> None:
    from granian import Granian
    from granian.constants import Interfaces
    from granian.http import HTTP1Settings

    from .metrics import prepare_folder

    # Every worker counts for /metrics in this folder (emptied now: a previous run's counts would add up),
    # named in the environment they inherit; prometheus_client is first imported in the workers, after this.
    prepare_folder(data_dir)
    # The workers are processes of their own: they learn the folder (and a database given on the
    # command line) from the environment, which only this user can read.
    os.environ["PIKA_DATA"] = str(data_dir)
    if database:
        os.environ["PIKA_DATABASE"] = database
    Granian(
        "server_stub.app:make_app", factory=True, interface=Interfaces.WSGI,
        address=host, port=port, workers=workers, blocking_threads=threads,
        backpressure=max(64, threads * 4), log_access=False, websockets=False,
        # A second line behind the nginx front (which sends a request's headers at once): headers still
        # arriving after 10 s close the connection, not 30. A slow body granian cannot cut: it is read on
        # a request thread, which is why the front buffers bodies (docs/operating.md, "TLS and the front").
        http1_settings=HTTP1Settings(header_read_timeout=10_000),
    ).serve()


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _QuietHandler(WSGIRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # the till logs its own way
        pass

    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class EmbeddedServer:
    """The backend on a loopback port inside another process (demo, tests)."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0):
        self._server = make_server(host, port, app, server_class=_ThreadingServer, handler_class=_QuietHandler)
        self.url = f"http://{host}:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="embedded-backend", daemon=True)

    def start(self) -> "EmbeddedServer":
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted: `serve --stdlib`, where nothing else runs."""
        self._server.serve_forever()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread.ident is not None:  # not started when its owner ran serve_forever instead
            self._thread.join(timeout=5)
