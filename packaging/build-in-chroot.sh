#!/usr/bin/env bash
# Builds the one-file `edge` executable inside a debootstrap'ed Debian chroot, so that the
# binary gets that Debian's glibc floor and/or another CPU architecture (arm64 runs under
# qemu-user-static via binfmt_misc), then runs it inside the chroot (start, GET
# /api/v1/alive, SIGTERM, exit code 0) and, unless --no-smoke, the full packaging/smoke.py
# from the host. Runs packaging/build.sh in the chroot, so the build recipe is the same.
#
#   packaging/build-in-chroot.sh --arch amd64 --suite bullseye  # x86_64, needs glibc >= 2.30 (CPython 3.11 self-built: ~7 min first time, then ~25 s)
#   packaging/build-in-chroot.sh --arch arm64 --suite bookworm  # aarch64, glibc >= 2.36 (~9 min first time under qemu, then ~2 min)
#   packaging/build-in-chroot.sh --arch arm64 --suite bullseye  # aarch64, glibc >= 2.30 (~40 min first time: CPython under qemu)
#
# Options: --root DIR (chroot; default /var/tmp/edge-chroot-ARCH-SUITE, reused between runs),
# --prepare-only (debootstrap + Python + build venv only), --no-smoke, --mirror URL.
# Output: dist/edge-<uname -m>-<suite>. Needs root (debootstrap, chroot, mount).
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$PWD
ARCH=amd64 SUITE=bookworm ROOT="" PREPARE_ONLY=0 SMOKE=1 MIRROR=""
while [ $# -gt 0 ]; do
    case "$1" in
        --arch) ARCH=$2; shift 2 ;;
        --suite) SUITE=$2; shift 2 ;;
        --root) ROOT=$2; shift 2 ;;
        --mirror) MIRROR=$2; shift 2 ;;
        --prepare-only) PREPARE_ONLY=1; shift ;;
        --no-smoke) SMOKE=0; shift ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
case "$ARCH" in amd64) UNAME_M=x86_64 ;; arm64) UNAME_M=aarch64 ;; *) echo "arch must be amd64 or arm64" >&2; exit 2 ;; esac
case "$SUITE" in bookworm|bullseye) ;; *) echo "suite must be bookworm or bullseye" >&2; exit 2 ;; esac
ROOT=${ROOT:-/var/tmp/edge-chroot-$ARCH-$SUITE}
[ "$(id -u)" = 0 ] || { echo "needs root (debootstrap/chroot/mount)" >&2; exit 1; }
log() { echo "== [$(date +%H:%M:%S)] $*"; }
T0=$(date +%s)

# --- host tools ------------------------------------------------------------------------------
need_pkgs=()
command -v debootstrap >/dev/null || need_pkgs+=(debootstrap)
if [ "$UNAME_M" != "$(uname -m)" ]; then
    [ -e /usr/libexec/qemu-binfmt/aarch64-binfmt-P ] || [ -x /usr/bin/qemu-aarch64-static ] || need_pkgs+=(qemu-user-static)
    command -v update-binfmts >/dev/null || need_pkgs+=(binfmt-support)
fi
if [ ${#need_pkgs[@]} -gt 0 ]; then
    log "apt-get install ${need_pkgs[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi
if [ "$UNAME_M" != "$(uname -m)" ]; then
    mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
    update-binfmts --enable qemu-aarch64 2>/dev/null || true
    grep -q '^enabled' /proc/sys/fs/binfmt_misc/qemu-aarch64 || { echo "binfmt qemu-aarch64 not enabled" >&2; exit 1; }
fi
# Debian's mirror as the ordinary apt clients reach it (override with --mirror or
# EDGE_DEBIAN_MIRROR); apt-get/debootstrap use plain http, so no CA is involved there.
MIRROR=${MIRROR:-${EDGE_DEBIAN_MIRROR:-http://deb.debian.org/debian}}

# --- rootfs ----------------------------------------------------------------------------------
if [ "$SUITE" = bookworm ]; then
    INCLUDE=python3,python3-venv,python3-pip,libpython3.11,binutils,ca-certificates,curl,file,git
    CHROOT_PYTHON=/usr/bin/python3.11
else
    INCLUDE=build-essential,binutils,ca-certificates,curl,file,git,libssl-dev,zlib1g-dev,libffi-dev,libbz2-dev,liblzma-dev,libsqlite3-dev,uuid-dev,xz-utils
    CHROOT_PYTHON=/usr/local/bin/python3.11
fi
if [ ! -e "$ROOT/.edge-debootstrap-ok" ]; then
    rm -rf "$ROOT"; mkdir -p "$ROOT"
    log "debootstrap --arch=$ARCH $SUITE -> $ROOT ($MIRROR)"
    debootstrap --arch="$ARCH" --variant=minbase --include="$INCLUDE" "$SUITE" "$ROOT" "$MIRROR" >"$ROOT.debootstrap.log" 2>&1 \
        || { tail -20 "$ROOT.debootstrap.log"; exit 1; }
    touch "$ROOT/.edge-debootstrap-ok"
fi
cleanup() {
    umount -l "$ROOT/dev" 2>/dev/null || true
    umount -l "$ROOT/proc" 2>/dev/null || true
}
trap cleanup EXIT
mountpoint -q "$ROOT/proc" || mount -t proc proc "$ROOT/proc"
mountpoint -q "$ROOT/dev" || mount --bind /dev "$ROOT/dev"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
# pip inside the chroot must trust what the host trusts (the registries may sit behind a CA
# that only the host bundle has).
cp /etc/ssl/certs/ca-certificates.crt "$ROOT/etc/ssl/certs/ca-certificates.crt"
printf '127.0.0.1 localhost\n::1 localhost\n' >"$ROOT/etc/hosts"
# A clean environment; pip gets the host's CA bundle explicitly (a self-built CPython's pip
# uses its own certifi bundle, not the system one).
CHROOT_ENV=(/usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin HOME=/root LANG=C.UTF-8
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
    PIP_DISABLE_PIP_VERSION_CHECK=1)
inroot() { chroot "$ROOT" "${CHROOT_ENV[@]}" "$@"; }
[ "$(inroot uname -m)" = "$UNAME_M" ] || { echo "chroot is not $UNAME_M" >&2; exit 1; }

# --- Python >= 3.11 --------------------------------------------------------------------------
if [ ! -x "$ROOT$CHROOT_PYTHON" ]; then
    # bullseye ships only 3.9: build CPython 3.11 from Debian bookworm's source package
    # (upstream tarball 3.11.2), shared libpython, into /usr/local of the chroot.
    log "building CPython 3.11 in the chroot (x86_64 ~3.5 min, under qemu ~30 min)"
    echo "deb-src $MIRROR bookworm main" >"$ROOT/etc/apt/sources.list.d/edge-src.list"
    inroot apt-get update -qq
    inroot sh -c 'mkdir -p /src && cd /src && apt-get source --download-only python3.11 >/dev/null'
    inroot sh -c 'cd /src && rm -rf Python-3.11.* && tar xzf python3.11_3.11.*.orig.tar.gz && cd Python-3.11.* &&
        ./configure --enable-shared --prefix=/usr/local --with-ensurepip=install >/src/configure.log 2>&1 &&
        make -j"$(nproc)" >/src/make.log 2>&1 && make install >/src/install.log 2>&1 && ldconfig' \
        || { tail -30 "$ROOT"/src/*.log; exit 1; }
fi
log "python in chroot: $(inroot "$CHROOT_PYTHON" -V)"

# --- sources (the working tree as it is, without build outputs) ------------------------------
rm -rf "$ROOT/build/src"; mkdir -p "$ROOT/build/src"
if git -C "$SRC" rev-parse --git-dir >/dev/null 2>&1; then
    git -C "$SRC" ls-files -z -co --exclude-standard | grep -zvE '^(dist|build|\.venv[^/]*)/' \
        | tar -C "$SRC" --null -T - -cf - | tar -C "$ROOT/build/src" -xf -
else
    tar -C "$SRC" --exclude=./dist --exclude=./build --exclude='./.venv*' --exclude=.git -cf - . | tar -C "$ROOT/build/src" -xf -
fi
SDE=$(git -C "$SRC" log -1 --format=%ct 2>/dev/null || echo 1700000000)

if [ "$PREPARE_ONLY" = 1 ]; then
    log "preparing the build venv only"
    inroot sh -c "[ -x /build/venv/bin/python ] || $CHROOT_PYTHON -m venv /build/venv;
        cd /build/src && /build/venv/bin/python -m pip install -q --disable-pip-version-check '.[packaging]'"
    log "prepared in $(( $(date +%s) - T0 )) s"
    exit 0
fi

# --- build -----------------------------------------------------------------------------------
log "packaging/build.sh inside the chroot"
inroot env PYTHON="$CHROOT_PYTHON" EDGE_BUILD_VENV=/build/venv SOURCE_DATE_EPOCH="$SDE" \
    bash /build/src/packaging/build.sh
OUT=$SRC/dist/edge-$UNAME_M-$SUITE
mkdir -p "$SRC/dist"
cp "$ROOT/build/src/dist/edge" "$OUT"
log "built $OUT ($(stat -c %s "$OUT") bytes): $(file -b "$OUT" | cut -d, -f1-2)"

# --- run it on the chroot's own glibc --------------------------------------------------------
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
log "in-chroot run on 127.0.0.1:$PORT"
rm -rf "$ROOT/tmp/edge-smoke"
# chroot and env exec, so $! is the server's bootloader itself
chroot "$ROOT" "${CHROOT_ENV[@]}" RS_HOST=127.0.0.1 RS_PORT="$PORT" RS_DATA_PATH=/tmp/edge-smoke \
    /build/src/dist/edge serve >"$ROOT/tmp/edge-run.log" 2>&1 &
PID=$!
t_start=$(date +%s.%N); ok=0
for _ in $(seq 1 600); do
    if curl -fsS -o /dev/null "http://127.0.0.1:$PORT/api/v1/alive" 2>/dev/null; then ok=1; break; fi
    kill -0 $PID 2>/dev/null || break
    sleep 0.1
done
t_alive=$(date +%s.%N)
if [ $ok = 1 ]; then
    echo "   alive after $(awk -v a="$t_start" -v b="$t_alive" 'BEGIN{printf "%.2f", b-a}') s"
fi
kill -TERM $PID 2>/dev/null || true
for _ in $(seq 1 300); do kill -0 $PID 2>/dev/null || break; sleep 0.1; done
kill -0 $PID 2>/dev/null && { echo "   no exit 30 s after SIGTERM: SIGKILL"; pkill -KILL -P $PID || true; kill -KILL $PID; }
rc=0; wait $PID || rc=$?
[ $ok = 1 ] && [ $rc = 0 ] || { echo "in-chroot run failed (alive=$ok rc=$rc)"; cat "$ROOT/tmp/edge-run.log"; exit 1; }
echo "   SIGTERM -> exit 0"

# --- full smoke test from the host -----------------------------------------------------------
if [ "$SMOKE" = 1 ]; then
    if [ "$UNAME_M" != "$(uname -m)" ]; then
        # binfmt runs the foreign binary; QEMU_LD_PREFIX (inherited by the bootloader's
        # re-exec'd child, unlike qemu -L) points the loader at the chroot's libraries.
        QEMU_LD_PREFIX=$ROOT ${SMOKE_PYTHON:-python3} packaging/smoke.py --binary "$OUT" --alive-timeout 60 --stop-timeout 30
    else
        ${SMOKE_PYTHON:-python3} packaging/smoke.py --binary "$OUT"
    fi
fi
log "done in $(( $(date +%s) - T0 )) s"
