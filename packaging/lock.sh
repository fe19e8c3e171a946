#!/usr/bin/env bash
# Refreshes requirements.lock, the exact versions (with hashes) that installs and
# CI use: the newest that pyproject.toml's ranges allow, for CPython 3.11 on
# x86-64 Linux (Debian 12, glibc 2.36). Run it, run the tests, commit both.
# Extra arguments go to `uv pip compile` (e.g. --upgrade-package babel).
set -euo pipefail
cd "$(dirname "$0")/.."
UV=${UV:-.venv-lock/bin/uv}
if [ ! -x "$UV" ]; then
  python3 -m venv .venv-lock
  .venv-lock/bin/python -m pip install -q 'uv==0.13.9'
fi
"$UV" pip compile pyproject.toml --extra dev --generate-hashes \
  --python-version 3.11 --python-platform x86_64-manylinux_2_36 \
  --custom-compile-command "bash packaging/lock.sh" "$@" -o requirements.lock
