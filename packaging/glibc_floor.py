"""Prints the highest GLIBC_x.y symbol version needed by anything inside a PyInstaller
one-file executable (the bootloader and every bundled .so), i.e. the oldest glibc the
binary can run on. Usage: python glibc_floor.py dist/edge [--max 2.31]
Run it with the build venv's Python (it uses PyInstaller's archive reader) on a host with
binutils (objdump reads foreign-architecture ELF files too). Exit 1 if --max is exceeded.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile

from PyInstaller.archive.readers import CArchiveReader

_VER = re.compile(r"GLIBC_(\d+)\.(\d+)")


def _needs(path: str) -> tuple[int, int]:
    out = subprocess.run(["objdump", "-T", path], capture_output=True, text=True).stdout
    return max((tuple(map(int, v)) for v in _VER.findall(out)), default=(0, 0))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--max", help="fail if the floor is above this glibc version, e.g. 2.31")
    args = ap.parse_args()
    best, worst = _needs(args.binary), "bootloader"
    arc = CArchiveReader(args.binary)
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "x.so")
        for name in arc.toc:
            if ".so" not in name:
                continue
            with open(p, "wb") as f:
                f.write(arc.extract(name))
            v = _needs(p)
            if v > best:
                best, worst = v, name
    print(f"GLIBC_{best[0]}.{best[1]} (from {worst})")
    if args.max:
        limit = tuple(map(int, args.max.split(".")))
        if best > limit:
            print(f"glibc floor {best[0]}.{best[1]} is above the allowed {args.max}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
