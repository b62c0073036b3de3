"""Summarise py-spy raw (collapsed) stacks: the functions with the most samples, self and total.

``python bench/profile_summary.py FILE [--top 30] [--filter TEXT]``: one line per function
("name (file:line)" folded to "name (file)"), with the share of samples where it is on top of
the stack (self) and anywhere in it (total). ``--filter`` keeps only stacks containing TEXT.
"""

from __future__ import annotations

import argparse
import collections
import re

FRAME = re.compile(r"^(.*) \((.*?)(?::\d+)?\)$")


def fold(frame: str) -> str:
    m = FRAME.match(frame)
    if not m:
        return frame
    name, path = m.groups()
    parts = path.split("/")
    short = "/".join(parts[-2:]) if len(parts) > 1 else path
    return f"{name} ({short})"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--filter", default=None)
    a = ap.parse_args()
    self_c: collections.Counter = collections.Counter()
    total_c: collections.Counter = collections.Counter()
    n = 0
    for line in open(a.file):
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if not stack or (a.filter and a.filter not in stack):
            continue
        k = int(count)
        frames = [fold(f) for f in stack.split(";")]
        n += k
        self_c[frames[-1]] += k
        for f in set(frames):
            total_c[f] += k
    print(f"{n} samples")
    print("-- self")
    for f, k in self_c.most_common(a.top):
        print(f"{100 * k / n:5.1f} %  {f}")
    print("-- total")
    for f, k in total_c.most_common(a.top):
        print(f"{100 * k / n:5.1f} %  {f}")


if __name__ == "__main__":
    main()
