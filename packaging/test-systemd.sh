#!/usr/bin/env bash
# Runs systemd/edge.service under a real systemd: boots a debootstrap'ed Debian bookworm
# container with systemd-nspawn (host network), installs the one-file executable as
# /usr/local/bin/edge and the unit as the README says, and checks: Type=notify start reaches
# "active (running)" with the server's STATUS text, GET /api/v1/alive answers, a request without
# a token is refused and the device token the first start generated (0600, owned by the
# service's dynamic user, path in the journal) works, a SIGKILLed
# server is restarted (Restart=on-failure), `systemctl stop` ends with result "success",
# and the data directory survives. Needs root; ~2 min the first time (rootfs is reused).
#   packaging/test-systemd.sh [BINARY]   (default dist/edge)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(readlink -f "${1:-dist/edge}")
ROOT=${EDGE_NSPAWN_ROOT:-/var/tmp/edge-nspawn-bookworm}
MIRROR=${EDGE_DEBIAN_MIRROR:-http://deb.debian.org/debian}
log() { echo "== [$(date +%H:%M:%S)] $*"; }
command -v systemd-nspawn >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd-container >/dev/null; }
command -v debootstrap >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
if [ ! -e "$ROOT/.edge-debootstrap-ok" ]; then
    rm -rf "$ROOT"; log "debootstrap bookworm (systemd) -> $ROOT"
    debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus bookworm "$ROOT" "$MIRROR" >"$ROOT.log" 2>&1 || { tail "$ROOT.log"; exit 1; }
    touch "$ROOT/.edge-debootstrap-ok"
fi
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# install as the README says
install -m 0755 "$BIN" "$ROOT/usr/local/bin/edge"
install -m 0644 systemd/edge.service "$ROOT/etc/systemd/system/edge.service"
mkdir -p "$ROOT/etc/edge"
printf 'RS_HOST=127.0.0.1\nRS_PORT=%s\n' "$PORT" >"$ROOT/etc/edge/edge.env"; chmod 0600 "$ROOT/etc/edge/edge.env"
mkdir -p "$ROOT/etc/systemd/system/multi-user.target.wants"
ln -sf /etc/systemd/system/edge.service "$ROOT/etc/systemd/system/multi-user.target.wants/edge.service"
rm -rf "$ROOT/var/lib/private/edge" "$ROOT/var/lib/edge"

log "booting the container"
systemd-nspawn -q -D "$ROOT" -b -M edgetest --register=no --keep-unit >/tmp/edge-nspawn.log 2>&1 &
NSPAWN=$!
INIT=""
cleanup() {
    [ -n "$INIT" ] && nsenter -t "$INIT" -a systemctl poweroff >/dev/null 2>&1 || true
    for _ in $(seq 1 100); do kill -0 $NSPAWN 2>/dev/null || break; sleep 0.2; done
    kill $NSPAWN 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 1 100); do INIT=$(pgrep -P $NSPAWN -x systemd || true); [ -n "$INIT" ] && break; sleep 0.2; done
[ -n "$INIT" ] || { cat /tmp/edge-nspawn.log; exit 1; }
ctl() { nsenter -t "$INIT" -a systemctl "$@"; }
show() { ctl show edge -p "$1" --value; }
for _ in $(seq 1 150); do [ "$(show ActiveState 2>/dev/null)" = active ] && break; sleep 0.2; done
fail() { echo "FAIL $*"; nsenter -t "$INIT" -a journalctl -u edge --no-pager | tail -30; exit 1; }
[ "$(show ActiveState)" = active ] || fail "edge.service not active: $(show ActiveState)/$(show SubState)"
echo "ok   active ($(show SubState)), status: $(show StatusText)"
curl -fsS -o /dev/null "http://127.0.0.1:$PORT/api/v1/alive" || fail "alive did not answer"
echo "ok   GET /api/v1/alive on 127.0.0.1:$PORT"
code=$(curl -sS -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$PORT/api/v1/b/unit-test")
[ "$code" = 401 ] || fail "create bucket without a token answered $code, not 401"
echo "ok   no token -> 401 (secure by default)"
SECRET_FILE=$ROOT/var/lib/private/edge/.edge/device-token
[ "$(stat -c %a "$SECRET_FILE")" = 600 ] || fail "device token file mode $(stat -c %a "$SECRET_FILE")"
nsenter -t "$INIT" -a journalctl -u edge --no-pager | grep -q "/var/lib/edge/.edge/device-token\|/var/lib/private/edge/.edge/device-token" \
    || fail "the journal does not say where the device token is"
TOKEN=$(cat "$SECRET_FILE")
AUTH=(-H "Authorization: Bearer $TOKEN")
echo "ok   device token in /var/lib/edge/.edge/device-token (mode 600), path in the journal"
curl -fsS -o /dev/null "${AUTH[@]}" -X POST "http://127.0.0.1:$PORT/api/v1/b/unit-test" || fail "create bucket"
echo "ok   bucket created with the device token"
echo "info MainPID (bootloader) $(show MainPID), tasks $(show TasksCurrent)"
# crash: SIGKILL the serving child -> the bootloader dies of it -> restart
MAIN=$(show MainPID)
CHILD=$(nsenter -t "$INIT" -a cat "/proc/$MAIN/task/$MAIN/children" | xargs)
[ -n "$CHILD" ] || fail "no server child under the bootloader (pid $MAIN)"
nsenter -t "$INIT" -a sh -c "kill -KILL $CHILD"
for _ in $(seq 1 100); do [ "$(show NRestarts)" -ge 1 ] && [ "$(show ActiveState)" = active ] && break; sleep 0.2; done
[ "$(show NRestarts)" -ge 1 ] && [ "$(show ActiveState)" = active ] || fail "not restarted after SIGKILL (restarts $(show NRestarts), $(show ActiveState))"
echo "ok   restarted after SIGKILL of the server (NRestarts=$(show NRestarts))"
curl -fsS -o /dev/null "${AUTH[@]}" "http://127.0.0.1:$PORT/api/v1/b/unit-test" || fail "bucket lost after restart (or token changed)"
echo "ok   bucket still there"
t0=$(date +%s.%N); ctl stop edge; t1=$(date +%s.%N)
[ "$(show Result)" = success ] || fail "stop result $(show Result)"
echo "ok   systemctl stop -> result success in $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}') s"
[ -d "$ROOT/var/lib/private/edge/unit-test" ] && echo "ok   data in /var/lib/private/edge (symlinked as /var/lib/edge)" || fail "no data dir"
nsenter -t "$INIT" -a journalctl -u edge --no-pager | tail -8
echo "systemd test: all checks passed"
