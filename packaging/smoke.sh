#!/usr/bin/env bash
# End-to-end check of the one-file executable on this machine: builds dist/edge with
# packaging/build.sh (unless EDGE_SKIP_BUILD=1), runs packaging/smoke.py against it (start on a
# free port, write/read with reduct-py, SIGTERM -> exit 0, restart, data intact), and checks
# systemd/edge.service with packaging/check-unit.sh when systemd-analyze is installed.
# About 30 s on 2 cores. Usage: packaging/smoke.sh [extra smoke.py args]
set -euo pipefail
cd "$(dirname "$0")/.."
[ "${EDGE_SKIP_BUILD:-0}" = 1 ] || packaging/build.sh
"${SMOKE_PYTHON:-python3}" packaging/smoke.py --binary dist/edge --max-start-s "${EDGE_MAX_START_S:-1.5}" "$@"
if command -v systemd-analyze >/dev/null; then packaging/check-unit.sh dist/edge; fi
