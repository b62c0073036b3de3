#!/usr/bin/env bash
# The one install-and-start command (README): install edge and serve on port 8383 with data in ./edge-data.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
$PY -m pip install --quiet --disable-pip-version-check .
exec $PY -m edge serve "$@"
