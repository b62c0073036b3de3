#!/usr/bin/env bash
# Builds and smoke-tests dist/edge-aarch64-<suite>, the aarch64 one-file executable, on an
# x86_64 host under emulation: qemu-user-static + binfmt_misc run an arm64 Debian chroot
# (debootstrap --arch=arm64), PyInstaller builds natively inside it (PyInstaller cannot
# cross-build), and the result is run in the chroot and smoke-tested from the host with
# QEMU_LD_PREFIX. Needs root. Default suite bookworm (binary needs glibc >= 2.36, ~9 min
# first time on 2 cores); EDGE_ARM64_SUITE=bullseye gives glibc >= 2.30 but compiles
# CPython under qemu (~30 min more, once per chroot). Extra arguments go to
# build-in-chroot.sh (e.g. --prepare-only, --no-smoke, --root DIR).
set -euo pipefail
exec "$(dirname "$0")/build-in-chroot.sh" --arch arm64 --suite "${EDGE_ARM64_SUITE:-bookworm}" "$@"
