"""The backend's group-commit writer alone: threads inserting durable rows.

Each of --threads threads inserts its share of --rows rows through
`Writer.insert_row` (synchronous=FULL), with a little Python work between
writes as a request would have. Prints process CPU per row (steadier than
wall time on a shared machine), wall time per row and rows per commit.

    .venv/bin/python bench/writer_group_commit.py [--threads 16] [--rows 4000]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from server_stub.storage.writer import Writer  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--rows", type=int, default=4000)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="pika-writer-"))
    try:
        path = str(folder / "t.db")
        db = sqlite3.connect(path)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, k TEXT UNIQUE, j TEXT, at REAL, v TEXT)")
        db.execute("CREATE INDEX t_at ON t (at)")
        db.commit()
        db.close()
        writer = Writer(path)
        rows = [(uuid.uuid4().hex, uuid.uuid4().hex, time.time(), "x" * 200) for _ in range(args.rows)]

        def insert(share):
            for row in share:
                writer.insert_row("t", ("k", "j", "at", "v"), row)
                sum(range(200))  # the rest of a request, holding the GIL

        threads = [threading.Thread(target=insert, args=(rows[i::args.threads],)) for i in range(args.threads)]
        cpu, wall, batches = time.process_time(), time.perf_counter(), writer.batches
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        print(json.dumps({"threads": args.threads, "rows": args.rows,
                          "cpu_us_per_row": round(1e6 * cpu / args.rows, 1),
                          "wall_us_per_row": round(1e6 * wall / args.rows, 1),
                          "rows_per_commit": round(args.rows / (writer.batches - batches), 1)}))
        writer.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
