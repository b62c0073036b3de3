#!/usr/bin/env bash
# Checks systemd/edge.service offline: `systemd-analyze verify` must print nothing (it exits 0
# even on unknown keys and unparsable values, so any output counts as a failure) and
# `systemd-analyze security --offline` must score at most $EDGE_UNIT_MAX_EXPOSURE (default 2.0).
# verify wants ExecStart= to exist, so a copy of the unit points at $1 (default dist/edge, or
# /bin/true when that does not exist yet). Needs systemd's tools (apt-get install systemd).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-$PWD/dist/edge}
[ -x "$BIN" ] || BIN=/bin/true
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
sed "s|^ExecStart=/usr/local/bin/edge|ExecStart=$(readlink -f "$BIN")|" systemd/edge.service >"$TMP/edge.service"
out=$(systemd-analyze verify --man=no "$TMP/edge.service" 2>&1) || true
if [ -n "$out" ]; then echo "systemd-analyze verify:"; echo "$out"; exit 1; fi
echo "ok   systemd-analyze verify: no output"
score=$(systemd-analyze security --offline=yes --man=no "$TMP/edge.service" | tail -1 | grep -oE '[0-9]+\.[0-9]+' | head -1)
max=${EDGE_UNIT_MAX_EXPOSURE:-2.0}
awk -v s="$score" -v m="$max" 'BEGIN{exit !(s <= m)}' || { echo "FAIL exposure $score > $max"; exit 1; }
echo "ok   systemd-analyze security exposure $score (limit $max)"
