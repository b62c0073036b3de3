# packaging/venv.sh: sourced by run.sh and test.sh; the one place that picks a Python and
# makes (and then reuses) the checkout's virtual environment.
#
# Why a venv: Debian 12, Ubuntu 23.04+ and Raspberry Pi OS mark their Python "externally
# managed" (PEP 668), so `pip install` into it is refused; a venv is the supported way, and it
# keeps edge's dependencies apart from the system's on any other distribution too.
#
#   edge_venv ""       # edge installed (editable), for run.sh
#   edge_venv test     # edge with its test extras, for test.sh
#   -> EDGE_PY = the venv's python
#
# Settings (environment):
#   PYTHON     the interpreter to build the venv with (default: python3 when it is 3.11+, else
#              the newest python3.1x on PATH). A venv's own python is used as it is (no new venv).
#   EDGE_VENV  where the venv lives (default: .venv in the checkout).
# The install is skipped when pyproject.toml and the extras are unchanged since the last one
# (a stamp in the venv), so a second start needs no network.

_edge_fail() { printf 'edge: %s\n' "$@" >&2; exit 1; }

_edge_version_of() { "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null; }

_edge_new_enough() { "$1" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; }

_edge_pick_python() {
  if [ -n "${PYTHON:-}" ]; then
    command -v "$PYTHON" >/dev/null 2>&1 || _edge_fail "PYTHON=$PYTHON: no such interpreter"
    _edge_new_enough "$PYTHON" || _edge_fail "PYTHON=$PYTHON is Python $(_edge_version_of "$PYTHON"); edge needs 3.11 or newer"
    echo "$PYTHON"; return
  fi
  local c
  for c in python3 python3.14 python3.13 python3.12 python3.11; do
    if command -v "$c" >/dev/null 2>&1 && _edge_new_enough "$c"; then echo "$c"; return; fi
  done
  local found="none on PATH"
  command -v python3 >/dev/null 2>&1 && found="python3 is $(_edge_version_of python3)"
  _edge_fail "edge needs Python 3.11 or newer ($found). Install one:" \
    "  Debian 12, Raspberry Pi OS (bookworm), Ubuntu 24.04:  sudo apt install python3 python3-venv" \
    "  Ubuntu 22.04:  sudo apt install python3.11 python3.11-venv" \
    "  elsewhere: any Python 3.11+, then  PYTHON=/path/to/python3.11 $0"
}

_edge_check_venv_module() {
  # Debian and Ubuntu ship `venv` but split `ensurepip` (which puts pip into a new venv) into
  # python3.X-venv; without it `python3 -m venv` leaves a venv without pip.
  local py=$1 ver
  "$py" -c 'import venv, ensurepip' 2>/dev/null && return 0
  ver=$(_edge_version_of "$py")
  if [ "$(command -v "$py")" = /usr/bin/python3 ] || [ "$(readlink -f "$(command -v "$py")")" = "$(readlink -f /usr/bin/python3 2>/dev/null)" ]; then
    _edge_fail "$py (Python $ver) has no working 'venv' module. Install it:" \
      "  sudo apt install python3-venv      (the same as python$ver-venv)"
  fi
  _edge_fail "$py (Python $ver) has no working 'venv' module. Install it:" \
    "  sudo apt install python$ver-venv    (Debian/Ubuntu/Raspberry Pi OS; elsewhere the package that provides ensurepip)"
}

edge_venv() {
  local extras=$1 root py venv spec stamp want
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  py=$(_edge_pick_python)
  if "$py" -c 'import sys; sys.exit(sys.prefix == sys.base_prefix)' 2>/dev/null; then
    EDGE_PY=$py                       # already a venv's python (e.g. PYTHON=.venv/bin/python)
    venv=$("$py" -c 'import sys; print(sys.prefix)')
  else
    venv=${EDGE_VENV:-$root/.venv}
    EDGE_PY=$venv/bin/python
    if ! { [ -x "$EDGE_PY" ] && "$EDGE_PY" -c 'import pip, sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; }; then
      # Missing, or broken (an interrupted creation, a Python removed by a system upgrade).
      if [ -e "$venv" ]; then
        [ -f "$venv/pyvenv.cfg" ] || _edge_fail "$venv exists but is not a virtual environment; move it away or set EDGE_VENV"
        echo "edge: $venv is not usable; recreating it" >&2
        rm -rf "$venv"
      fi
      _edge_check_venv_module "$py"
      echo "edge: creating $venv with $py (Python $(_edge_version_of "$py"))" >&2
      "$py" -m venv "$venv" || { rm -rf "$venv"; _edge_fail "could not create $venv with $py"; }
    fi
  fi
  spec=$root${extras:+[$extras]}
  want="$("$EDGE_PY" -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest())' "$root/pyproject.toml") $root"
  stamp=$venv/.edge-installed
  # One stamp line per installed extras set; "test" includes everything "" needs.
  if [ -f "$stamp" ] && { grep -qxF "$want [$extras]" "$stamp" || { [ -z "$extras" ] && grep -qxF "$want [test]" "$stamp"; }; }; then
    return 0
  fi
  echo "edge: installing ${extras:+the $extras extras of }edge into $venv" >&2
  "$EDGE_PY" -m pip install --quiet --disable-pip-version-check -e "$spec" \
    || _edge_fail "pip install -e '$spec' failed (see above)"
  { grep -F "$want [" "$stamp" 2>/dev/null || true; echo "$want [$extras]"; } | sort -u >"$stamp.new"
  mv "$stamp.new" "$stamp"
}
