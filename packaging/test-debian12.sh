#!/usr/bin/env bash
# Proves the README's two commands on a stock Debian 12: debootstraps bookworm (minbase) with
# only Debian's python3 and python3-venv, copies the checkout in (tracked and untracked files,
# no .venv/dist/build) and, inside the chroot with PATH=/usr/bin:/bin and a clean environment:
#   1. ./run.sh serves: makes .venv, installs edge, answers GET /api/v1/alive; a request without
#      a token gets 401 and the generated device token (edge-data/.edge/device-token) gets 200;
#      SIGTERM -> exit 0; a second ./run.sh reuses .venv (no install) and serves again.
#   2. .ci/run: apt-installs what the suite drives (Chromium, systemd, binutils, libpython3.11,
#      as on CI), then runs ./test.sh, the README's test command (with EDGE_BINARY_SMOKE=1).
# Prints the time of each step and pytest's closing line. A documented command, not part of
# ./test.sh: ~15-25 min on a 2-core machine (debootstrap once, then pip + apt + the suite).
#
#   packaging/test-debian12.sh                 # both steps
#   packaging/test-debian12.sh --serve-only    # step 1 only (~2-4 min)
#   packaging/test-debian12.sh -- tests/unit   # step 2 runs ./test.sh tests/unit instead of .ci/run
#
# Options: --root DIR (default /var/tmp/edge-debian12; DIR.base keeps the pristine debootstrap
# and every run starts from a fresh copy of it), --mirror URL (or EDGE_DEBIAN_MIRROR).
# Needs root (debootstrap, chroot, mount). The host's CA bundle is copied in and named by
# PIP_CERT, so pip trusts what the host trusts (a registry behind a TLS-inspecting proxy).
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$PWD
ROOT=/var/tmp/edge-debian12 MIRROR=${EDGE_DEBIAN_MIRROR:-http://deb.debian.org/debian} SERVE_ONLY=0
PYTEST_ARGS=()
while [ $# -gt 0 ]; do
    case "$1" in
        --root) ROOT=$2; shift 2 ;;
        --mirror) MIRROR=$2; shift 2 ;;
        --serve-only) SERVE_ONLY=1; shift ;;
        --) shift; PYTEST_ARGS=("$@"); break ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" = 0 ] || { echo "needs root (debootstrap/chroot/mount)" >&2; exit 1; }
log() { echo "== [$(date +%H:%M:%S)] $*"; }
T0=$(date +%s)

# --- a pristine Debian 12 with python3 + python3-venv, kept as ROOT.base -----------------------
command -v debootstrap >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
BASE=$ROOT.base
if [ ! -e "$BASE/.edge-debootstrap-ok" ]; then
    rm -rf "$BASE"; mkdir -p "$BASE"
    log "debootstrap bookworm (minbase + python3 python3-venv) -> $BASE ($MIRROR)"
    debootstrap --variant=minbase --include=python3,python3-venv bookworm "$BASE" "$MIRROR" >"$BASE.log" 2>&1 \
        || { tail -20 "$BASE.log"; exit 1; }
    touch "$BASE/.edge-debootstrap-ok"
fi
cleanup() {
    for m in dev/shm dev sys proc; do umount -l "$ROOT/$m" 2>/dev/null || true; done
}
trap cleanup EXIT
cleanup
rm -rf "$ROOT"
cp -a "$BASE" "$ROOT"
mount -t proc proc "$ROOT/proc"
mount -t sysfs sysfs "$ROOT/sys"
mount --bind /dev "$ROOT/dev"
mount -t tmpfs -o size=512m tmpfs "$ROOT/dev/shm"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
printf '127.0.0.1 localhost\n::1 localhost\n' >"$ROOT/etc/hosts"
mkdir -p "$ROOT/etc/ssl/certs"
cp /etc/ssl/certs/ca-certificates.crt "$ROOT/etc/ssl/edge-host-ca.crt"
# Packages installed in a chroot must not start services on the host's kernel.
printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"; chmod 0755 "$ROOT/usr/sbin/policy-rc.d"
log "chroot: $(chroot "$ROOT" /usr/bin/python3 -V), $(chroot "$ROOT" /usr/bin/dpkg-query -W -f '${Package} ${Version}' python3-venv)"

# --- the checkout ------------------------------------------------------------------------------
mkdir -p "$ROOT/src"
git -C "$SRC" ls-files -z -co --exclude-standard | grep -zvE '^(dist|build|\.venv[^/]*|edge-data)/' \
    | tar -C "$SRC" --null -T - -cf - | tar -C "$ROOT/src" -xf -
CHROOT_ENV=(/usr/bin/env -i PATH=/usr/bin:/bin HOME=/root LANG=C.UTF-8 TMPDIR=/tmp
    PIP_CERT=/etc/ssl/edge-host-ca.crt PIP_DISABLE_PIP_VERSION_CHECK=1)
inroot() { chroot "$ROOT" "${CHROOT_ENV[@]}" "$@"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
http_code() { curl -s -o /dev/null -w '%{http_code}' "$@" || true; }

# --- step 1: ./run.sh serves ---------------------------------------------------------------------
serve_once() {  # $1: label; starts ./run.sh, checks, stops
    local port t1 pid ok=0 rc=0
    port=$(free_port)
    t1=$(date +%s)
    chroot "$ROOT" "${CHROOT_ENV[@]}" RS_HOST=127.0.0.1 RS_PORT="$port" /bin/bash -c 'cd /src && exec ./run.sh' \
        >"$ROOT/tmp/run-$1.log" 2>&1 &
    pid=$!
    for _ in $(seq 1 1200); do
        [ "$(http_code "http://127.0.0.1:$port/api/v1/alive")" = 200 ] && { ok=1; break; }
        kill -0 $pid 2>/dev/null || break
        sleep 0.5
    done
    [ $ok = 1 ] || { cat "$ROOT/tmp/run-$1.log"; echo "FAIL ./run.sh ($1) did not serve"; exit 1; }
    echo "ok   ./run.sh ($1) answers /api/v1/alive after $(( $(date +%s) - t1 )) s on 127.0.0.1:$port"
    [ "$(http_code "http://127.0.0.1:$port/api/v1/info")" = 401 ] || { echo "FAIL /info without a token is not 401"; exit 1; }
    local token
    token=$(cat "$ROOT/src/edge-data/.edge/device-token")
    [ "$(stat -c %a "$ROOT/src/edge-data/.edge/device-token")" = 600 ] || { echo "FAIL device token file is not 0600"; exit 1; }
    [ "$(http_code -H "Authorization: Bearer $token" "http://127.0.0.1:$port/api/v1/info")" = 200 ] \
        || { echo "FAIL the generated token is refused"; exit 1; }
    echo "ok   no token -> 401; generated token from edge-data/.edge/device-token (0600) -> 200"
    kill -TERM $pid; wait $pid || rc=$?
    [ $rc = 0 ] || { echo "FAIL ./run.sh exit code $rc after SIGTERM"; exit 1; }
    echo "ok   SIGTERM -> exit 0"
}
log "step 1: ./run.sh in the chroot (PATH=/usr/bin:/bin)"
serve_once first
grep -q "creating /src/.venv" "$ROOT/tmp/run-first.log" || { echo "FAIL ./run.sh did not make .venv"; exit 1; }
serve_once second
if grep -q "installing\|creating" "$ROOT/tmp/run-second.log"; then echo "FAIL the second ./run.sh installed again"; exit 1; fi
echo "ok   second ./run.sh reused .venv without installing"
[ "$SERVE_ONLY" = 1 ] && { log "done in $(( $(date +%s) - T0 )) s"; exit 0; }

# --- step 2: the suite -------------------------------------------------------------------------
t2=$(date +%s)
if [ ${#PYTEST_ARGS[@]} -gt 0 ]; then
    log "step 2: ./test.sh ${PYTEST_ARGS[*]} in the chroot (PATH=/usr/bin:/bin)"
    cmd=(./test.sh "${PYTEST_ARGS[@]}")
else
    log "step 2: .ci/run in the chroot (PATH=/usr/bin:/bin): apt installs, then ./test.sh"
    cmd=(.ci/run)
fi
rc=0
chroot "$ROOT" "${CHROOT_ENV[@]}" CI=true /bin/bash -c 'cd /src && exec "$@"' bash "${cmd[@]}" \
    </dev/null 2>&1 | tee "$ROOT/tmp/suite.log" | grep -E '^(ci:|edge:)|passed|failed|error' || true
rc=${PIPESTATUS[0]}
summary=$(grep -E '[0-9]+ (passed|failed)' "$ROOT/tmp/suite.log" | tail -1)
echo "   ${cmd[*]}: exit $rc in $(( $(date +%s) - t2 )) s: $summary (log: $ROOT/tmp/suite.log)"
[ "$rc" = 0 ] || { echo "FAIL ${cmd[*]} in the chroot"; exit 1; }
log "Debian 12 chroot: ./run.sh serves and ${cmd[*]} passes; done in $(( $(date +%s) - T0 )) s"
