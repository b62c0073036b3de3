#!/usr/bin/env bash
# The one test command (README): make or reuse .venv, install edge with its test extras into
# it, then run the whole suite (arguments go to pytest, e.g. ./test.sh tests/unit -x).
#
# Two passes: everything not marked `serial` in parallel (pytest-xdist, one worker per core,
# whole files per worker: a module's shared server stays in one process), then the `serial`
# tests (timing bounds, power-loss cuts) alone, so that neighbours cannot slow them.
#   EDGE_TEST_WORKERS  workers of the parallel pass (default: auto = one per core; 0 = one
#                      plain pass without xdist, serial tests included)
# With your own `-m` expression there is one pass with it (in parallel unless workers are 0).
#
# Before the tests: the type check, mypy over edge/ (settings in pyproject.toml [tool.mypy]; a
# few seconds, less with its cache). A type error fails ./test.sh like a failing test, but the
# tests still run, so one run reports both.
set -euo pipefail
cd "$(dirname "$0")"
. packaging/venv.sh
edge_venv test
echo "test.sh: type check (mypy edge/)" >&2
mrc=0
"$EDGE_PY" -m mypy || mrc=$?
# The exit status: the tests' if they failed, else the type check's.
finish() { if [ "$1" != 0 ]; then exit "$1"; fi; exit "$mrc"; }
workers=${EDGE_TEST_WORKERS:-auto}
pytest=("$EDGE_PY" -m pytest -q -p no:cacheprovider)
if [ "$workers" = 0 ]; then
  rc=0; "${pytest[@]}" -p no:xdist "$@" || rc=$?
  finish "$rc"
fi
parallel=("${pytest[@]}" -n "$workers" --dist loadfile)
for arg in "$@"; do
  case $arg in -m|-m*) rc=0; "${parallel[@]}" "$@" || rc=$?; finish "$rc" ;; esac
done
# pytest exits 5 when a pass selects no test (e.g. ./test.sh tests/unit has no serial test).
rc=0
echo "test.sh: parallel pass (-n $workers --dist loadfile; tests not marked serial)" >&2
"${parallel[@]}" -m "not serial" "$@" || rc=$?
[ "$rc" = 5 ] && rc=0
if [ "$rc" != 0 ]; then
  case " $* " in *" -x "*|*" --exitfirst "*) finish "$rc" ;; esac
fi
src=0
echo "test.sh: serial pass (tests marked serial, one at a time)" >&2
"${pytest[@]}" -p no:xdist -m serial "$@" || src=$?
[ "$src" = 5 ] && src=0
[ "$rc" != 0 ] && finish "$rc"
finish "$src"
