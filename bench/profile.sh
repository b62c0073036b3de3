#!/usr/bin/env bash
# Profile edge's server under the benchmark workload with py-spy (sampling, no code changes).
#
#   bench/profile.sh [CELLS] [OUTDIR]      e.g. bench/profile.sh 1KB,10MB /tmp/edge-profile
#
# Runs bench/run.py once per cell (no ceilings), attaches `py-spy record --pid <server> -f raw`
# to each fresh `edge serve` for the whole cell, then prints the functions with the most samples
# inside the write and read handlers (bench/profile_summary.py; "self" = on top of the stack).
# The raw files (collapsed stacks) also feed any flamegraph tool.
# Needs: pip install py-spy (and ptrace permission: root, or kernel.yama.ptrace_scope=0).
set -euo pipefail
cd "$(dirname "$0")/.."
CELLS=${1:-1KB,10MB}
OUT=${2:-$(mktemp -d /tmp/edge-profile.XXXXXX)}
PY=${PYTHON:-python3}
command -v py-spy >/dev/null || $PY -m pip install --quiet py-spy
$PY bench/run.py --cells "$CELLS" --reps 1 --no-ceilings --profile "$OUT" --csv "$OUT/results.csv"
for f in "$OUT"/*.txt; do
  echo "=== $f: write handler (POST .../batch)"
  $PY bench/profile_summary.py "$f" --filter "write_batch" --top 25
  echo "=== $f: read handler (GET io/{bucket}/read)"
  $PY bench/profile_summary.py "$f" --filter "read_io_batch" --top 25
done
