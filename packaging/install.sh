#!/usr/bin/env bash
# Installs everything Pika Till needs on a Debian machine: system packages,
# a virtual environment in .venv with the exact versions of requirements.lock
# (hash-checked), and the project itself. Idempotent: re-running installs only
# what is missing. packaging/lock.sh refreshes the lock.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  # PySide6 (QtCore, QtGui, QtWidgets, QtMultimedia)
  libglib2.0-0 libgl1 libegl1 libxkbcommon0 libfontconfig1 libdbus-1-3
  libpulse0 libxrandr2
  # a real window under Xvfb
  xvfb xauth libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-image0
  libxcb-keysyms1 libxcb-render-util0 libxcb-shape0
  # real X11 key events in the USB-scanner tests (keys typed into Xvfb, layouts by setxkbmap)
  xdotool x11-xkb-utils
  # decoders, fonts, reading PDFs back, load testing
  libzbar0 zbar-tools fonts-dejavu-core poppler-utils wrk
  # the backend past one machine, and the throwaway clusters its tests start (tests/pg_fixtures.py)
  postgresql
  # the buffering, TLS-terminating front (packaging/nginx/, docs/operating.md) and its tests
  nginx
  # the web console's tests: Playwright drives Debian's Chromium (never a browser it downloads itself)
  chromium
)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "install: apt packages: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --require-hashes -r requirements.lock
.venv/bin/python -m pip install -q --no-deps -e .
echo "install: ready (.venv)"
