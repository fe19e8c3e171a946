"""What an operator command prints: a result as one JSON line on stdout, a refusal as one line on stderr.

Every command prints the same way, so a script reads any of them alike;
kept apart from `__main__` so a command module need not import the entry point.
"""

from __future__ import annotations

import json
import sys


def print_json(data) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")


def print_error(message: str) -> None:
    sys.stderr.write(f"error: {message}\n")
