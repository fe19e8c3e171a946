"""How long one small durable SQLite transaction takes beside busy Python threads.

Every SQLite call releases the GIL; getting it back means waiting behind the
runnable threads of the process. This is why a writer thread inside a busy
server process is slow, whatever SQLite itself costs.

    .venv/bin/python bench/sqlite_gil_convoy.py
"""

from __future__ import annotations

import json
import os
import sqlite3
import statistics
import sys
import tempfile
import threading
import time

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec


def main() -> int:
    path = tempfile.mktemp(dir=os.getcwd(), suffix=".sqlite3")
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE t (x)")
    key = ec.generate_private_key(ec.SECP256R1())
    public, algorithm = key.public_key(), ec.ECDSA(hashes.SHA256())
    signature = key.sign(b"x" * 300, algorithm)
    stop = threading.Event()

    def python_work():
        while not stop.is_set():
            sum(range(200))

    def verify_work():
        while not stop.is_set():
            public.verify(signature, b"x" * 300, algorithm)

    def json_work():
        data = {"a": list(range(50)), "b": "x" * 500}
        while not stop.is_set():
            json.dumps(data)

    def measure(label: str, threads: int = 0, work=None, switch: float = 0.005) -> None:
        sys.setswitchinterval(switch)
        stop.clear()
        busy = [threading.Thread(target=work) for _ in range(threads)]
        for t in busy:
            t.start()
        times = []
        for i in range(200):
            t0 = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO t VALUES (?)", (i,))
            conn.execute("COMMIT")
            times.append(time.perf_counter() - t0)
        stop.set()
        for t in busy:
            t.join()
        times.sort()
        print(json.dumps({"beside": label, "p50_ms": round(statistics.median(times) * 1e3, 3),
                          "p90_ms": round(times[int(len(times) * 0.9)] * 1e3, 3)}))

    try:
        measure("nothing")
        measure("2 threads checking ES256 signatures", 2, verify_work)
        measure("8 threads checking ES256 signatures", 8, verify_work)
        measure("8 threads encoding JSON", 8, json_work)
        measure("8 threads of pure Python", 8, python_work)
        measure("8 threads of pure Python, switch interval 0.1 ms", 8, python_work, 0.0001)
    finally:
        conn.close()
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(path + suffix):
                os.remove(path + suffix)
    return 0


if __name__ == "__main__":
    sys.exit(main())
