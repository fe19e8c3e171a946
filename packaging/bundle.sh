#!/usr/bin/env bash
# Builds the one-folder Linux till with PyInstaller (build/bundle/dist/pika-till/), smoke-tests it
# and measures it: size, and start times against the same commands from .venv.
#
# PyInstaller (exact version) lives in its own venv, .venv-bundle/; the till's dependencies are the
# ones .venv installed from requirements.lock (a .pth line, nothing downloaded twice). The bundle is
# made from the wheel's files (unpacked), so it carries what the wheel carries. Needs .venv
# (packaging/install.sh), xvfb-run and pdftotext. RUNS=N sets the timing runs (default 5, 0: none).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PYINSTALLER_VERSION=6.22.3
HOOKS_VERSION=2026.9
RUNS=${RUNS:-5}
OUT=build/bundle

if [ ! -x .venv-bundle/bin/python ]; then
  python3 -m venv .venv-bundle
fi
.venv-bundle/bin/python -m pip install -q "pyinstaller==$PYINSTALLER_VERSION" \
  "pyinstaller-hooks-contrib==$HOOKS_VERSION"
# Same interpreter version in both venvs, so .venv's packages load in .venv-bundle.
.venv/bin/python -c "import sys; print(sys.version)" | cmp -s - <(.venv-bundle/bin/python -c "import sys; print(sys.version)") \
  || { echo "bundle: .venv and .venv-bundle run different pythons: remove .venv-bundle" >&2; exit 1; }
SITE=$(.venv/bin/python -c "import sysconfig; print(sysconfig.get_path('purelib'))")
BUNDLE_SITE=$(.venv-bundle/bin/python -c "import sysconfig; print(sysconfig.get_path('purelib'))")
echo "$SITE" > "$BUNDLE_SITE/pika_till_locked.pth"

echo "bundle: wheel"
rm -rf "$OUT"
mkdir -p "$OUT/src" "$OUT/site"
cp -r pyproject.toml setup.py MANIFEST.in README.md pos_app server_stub assets translations "$OUT/src/"
find "$OUT/src" -name __pycache__ -prune -exec rm -rf {} +
(cd "$OUT/src" && ../../../.venv/bin/python -m pip wheel -q --no-deps --no-build-isolation -w ../wheel .)
.venv/bin/python -m zipfile -e "$OUT"/wheel/pika_till-*.whl "$OUT/site"

echo "bundle: PyInstaller $PYINSTALLER_VERSION"
PIKA_BUNDLE_SITE="$PWD/$OUT/site" .venv-bundle/bin/python -m PyInstaller --noconfirm --log-level WARN \
  --distpath "$OUT/dist" --workpath "$OUT/work" packaging/pika-till.spec
TILL="$PWD/$OUT/dist/pika-till/pika-till"

# Smoke tests, from a folder that is not the checkout.
SMOKE=$(mktemp -d)
trap 'rm -rf "$SMOKE"' EXIT
cd "$SMOKE"
"$TILL" --demo --headless > demo.txt
grep -q "That was the till's work, end to end." demo.txt || { cat demo.txt; echo "bundle: demo failed" >&2; exit 1; }
echo "bundle: headless demo ok"
# The window, offscreen and on a real X server (xcb), grabbed and quit by the till's own timer.
QT_QPA_PLATFORM=offscreen timeout 60 "$TILL" --demo --quit-after 3 --screenshot offscreen.png 2> window.err \
  || { cat window.err; echo "bundle: the window (offscreen) failed" >&2; exit 1; }
xvfb-run -a timeout 60 "$TILL" --demo --quit-after 3 --screenshot xcb.png 2>> window.err \
  || { cat window.err; echo "bundle: the window (xcb) failed" >&2; exit 1; }
for png in offscreen.png xcb.png; do
  [ "$(stat -c %s "$png")" -gt 100000 ] || { echo "bundle: $png is empty" >&2; exit 1; }
done
! grep -q Traceback window.err || { cat window.err; echo "bundle: the window raised" >&2; exit 1; }
echo "bundle: window ok (offscreen and xcb)"
# A Guaraní day report from an enrolled till (made by .venv: the bundle has no python to script it).
"$ROOT/.venv/bin/python" -c "import sys; from pathlib import Path; from pos_app.cli.demo import prepare_demo
d = prepare_demo(Path(sys.argv[1])); d.stop()" "$SMOKE/demo"
"$TILL" report --data demo/till --date "$(TZ=America/Asuncion date +%F)" --format pdf --lang gn --out report.pdf
pdftotext -enc UTF-8 report.pdf - | grep -q "ÁRA MARANDU" || { echo "bundle: no Guaraní in the report" >&2; exit 1; }
echo "bundle: Guaraní PDF report ok"
cd "$ROOT"

echo "bundle: size $(du -sh "$OUT/dist/pika-till" | cut -f1) ($(du -sb "$OUT/dist/pika-till" | cut -f1) bytes)"
[ "$RUNS" -gt 0 ] || exit 0
VENV_TILL=(.venv/bin/python -m pos_app)
# Median wall time of RUNS runs of a command, in seconds.
median() {
  local times=() start
  for _ in $(seq "$RUNS"); do
    start=$(date +%s.%N)
    "$@" > /dev/null 2>&1
    times+=("$(echo "$(date +%s.%N) - $start" | bc)")
  done
  printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.2f s (runs: %d, min %.2f, max %.2f)", m, NR, a[1], a[NR]}'
}
echo "bundle: headless demo, to its end: bundle $(median "$TILL" --demo --headless); venv $(median "${VENV_TILL[@]}" --demo --headless)"
# --quit-after 0 grabs the window as soon as the event loop runs, i.e. just after its first show.
SHOT=$(mktemp --suffix .png)
export QT_QPA_PLATFORM=offscreen
echo "bundle: window to its first show and out (offscreen): bundle $(median "$TILL" --demo --quit-after 0 --screenshot "$SHOT"); venv $(median "${VENV_TILL[@]}" --demo --quit-after 0 --screenshot "$SHOT")"
rm -f "$SHOT"
