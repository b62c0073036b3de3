#!/usr/bin/env bash
# The one test command (README): install edge with its test extras, then run the whole suite.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
$PY -m pip install --quiet --disable-pip-version-check -e '.[test]'
exec $PY -m pytest -q -p no:cacheprovider "$@"
