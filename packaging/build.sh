#!/usr/bin/env bash
# Builds dist/edge: a one-file PyInstaller executable of the edge server for the machine it
# runs on (its CPU architecture; it needs at least the glibc of the Python used to build).
# From a clean checkout, no manual step: creates the build venv .venv-build, pip-installs
# the project and PyInstaller into it, freezes packaging/edge.spec (strip, no UPX), checks
# `dist/edge --version`, and prints the size and the glibc floor.
#
#   packaging/build.sh                 # uses Debian's /usr/bin/python3.11 when present
#   PYTHON=/usr/local/bin/python3.11 packaging/build.sh
#   EDGE_GLIBC_MAX=2.31 packaging/build.sh   # fail if the binary needs a newer glibc
#
# For older-glibc and aarch64 binaries see packaging/build-in-chroot.sh and
# packaging/build-aarch64.sh (they run this script inside a Debian chroot).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT_DIR=$PWD

# Debian's interpreter when available: its libpython is stripped (the binary is ~half the
# size of one built with a pyenv/self-built interpreter that keeps debug info).
if [ -z "${PYTHON:-}" ]; then
    for c in /usr/bin/python3.11 /usr/bin/python3.12 /usr/bin/python3.13 /usr/bin/python3 python3; do
        if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import sys, venv; assert sys.version_info >= (3, 11)' 2>/dev/null; then
            PYTHON=$c; break
        fi
    done
fi
: "${PYTHON:?no Python >= 3.11 with the venv module found (apt-get install python3.11-venv libpython3.11)}"
VENV=${EDGE_BUILD_VENV:-$ROOT_DIR/.venv-build}
echo "== build venv $VENV with $PYTHON ($("$PYTHON" -V 2>&1))"
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade ".[packaging]"
command -v objdump >/dev/null || echo "warning: objdump (binutils) missing: PyInstaller needs it" >&2

# Reproducible: same sources + same wheels + same Python -> byte-identical binary.
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
    SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || true)
    SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1700000000}
fi
export SOURCE_DATE_EPOCH PYTHONHASHSEED=0
NAME=${EDGE_BINARY_NAME:-edge}
export EDGE_BINARY_NAME=$NAME

echo "== pyinstaller (one-file, stripped, no UPX)"
t0=$(date +%s)
"$VENV/bin/pyinstaller" --clean --noconfirm --log-level WARN \
    --distpath "$ROOT_DIR/dist" --workpath "$ROOT_DIR/build/pyinstaller" \
    packaging/edge.spec
echo "   took $(( $(date +%s) - t0 )) s"

BIN=$ROOT_DIR/dist/$NAME
"$BIN" --version
size=$(stat -c %s "$BIN")
echo "== $BIN: $size bytes ($(awk -v s="$size" 'BEGIN{printf "%.1f MiB", s/1048576}')), $(uname -m)"
"$VENV/bin/python" packaging/glibc_floor.py "$BIN" ${EDGE_GLIBC_MAX:+--max "$EDGE_GLIBC_MAX"}
