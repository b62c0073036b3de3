#!/usr/bin/env bash
# The one test command (README): make or reuse .venv, install edge with its test extras into
# it, then run the whole suite (arguments go to pytest, e.g. ./test.sh tests/unit -x).
set -euo pipefail
cd "$(dirname "$0")"
. packaging/venv.sh
edge_venv test
exec "$EDGE_PY" -m pytest -q -p no:cacheprovider "$@"
