#!/usr/bin/env bash
# The one install-and-start command (README): make or reuse .venv, install edge into it, and
# serve on port 8383 with data in ./edge-data. Flags go to `edge serve` (e.g. --port 9000).
# With no auth setting, the first start creates a device token and prints where it is.
set -euo pipefail
cd "$(dirname "$0")"
. packaging/venv.sh
edge_venv ""
exec "$EDGE_PY" -m edge serve "$@"
