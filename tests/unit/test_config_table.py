"""The README's configuration table and the variables edge reads agree, both directions (issue 23).

"Read" = every ``RS_*``/``EDGE_*`` string constant in edge/ (a name, or a prefix ending in ``_``
such as ``"RS_TOKEN_"`` of a family read by pattern). "Documented" = the first cell of the rows
of the README's "Configuration" table (``RS_TOKEN_<ID>_*`` and ``RS_IO_BATCH_*`` are patterns).
A documented name that edge itself does not read must be a knob of the test scripts, said so in
its row ("for tests only", "for `test.sh` only", ...) and named in tests/ or a script.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NAME = re.compile(r"(RS|EDGE)_[A-Z0-9_]*")
SCRIPTS = ("test.sh", "run.sh")


def names_read(root: Path = ROOT / "edge") -> tuple[set[str], set[str]]:
    """(exact names, prefixes ending in ``_``) of the string constants in ``root``'s code."""
    exact: set[str] = set()
    prefixes: set[str] = set()
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and NAME.fullmatch(node.value):
                (prefixes if node.value.endswith("_") else exact).add(node.value)
    return exact, prefixes


def table_rows(readme: str) -> list[tuple[list[str], str]]:
    """(names or patterns of the first cell, the whole row) of the Configuration table."""
    section = readme[readme.index("\n## Configuration"):]
    section = section[:section.index("\n## ", 1)]
    rows = []
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        first = line.split("|")[1]
        names = [n for n in re.findall(r"`([^`]+)`", first) if NAME.match(n)]
        rows.append((names, line))
    return rows


def _pattern(name: str) -> str | None:
    """``RS_TOKEN_<ID>_*`` -> ``RS_TOKEN_``; ``RS_IO_BATCH_*`` -> ``RS_IO_BATCH_``; a plain name -> None."""
    if name.endswith("*"):
        return name.split("<", 1)[0].rstrip("*")
    return None


def disagreements(readme: str, exact: set[str], prefixes: set[str], elsewhere: str) -> list[str]:
    documented: set[str] = set()
    patterns: dict[str, str] = {}
    rows: dict[str, str] = {}
    for names, row in table_rows(readme):
        for n in names:
            p = _pattern(n)
            if p is None:
                documented.add(n)
                rows[n] = row
            else:
                patterns[p] = row
    problems = []
    for n in sorted(exact):
        if n not in documented and not any(n.startswith(p) for p in patterns):
            problems.append(f"{n} is read by edge but missing from the README's configuration table")
    for p in sorted(prefixes):
        if p not in patterns and not any(d.startswith(p) for d in documented):
            problems.append(f"{p}* is read by edge but missing from the README's configuration table")
    for n in sorted(documented):
        if n in exact or any(n.startswith(p) for p in prefixes):
            continue
        only = re.search(r"for (the )?(tests?|test suite|`?(test|run)\.sh`?( ?/ ?`?(test|run)\.sh`?)?) only", rows[n])
        if not only or n not in elsewhere:
            problems.append(f"{n} is in the README's configuration table but edge does not read it"
                            + ("" if only else " (a test-only knob must say 'for tests only')"))
    for p in sorted(patterns):
        if p not in prefixes and not any(n.startswith(p) for n in exact):
            problems.append(f"{p}* is in the README's configuration table but edge reads no such variable")
    return problems


def _elsewhere() -> str:
    texts = [p.read_text(errors="replace") for p in (ROOT / "tests").rglob("*.py")]
    texts += [(ROOT / s).read_text() for s in SCRIPTS if (ROOT / s).exists()]
    return "\n".join(texts)


def test_readme_table_and_variables_read_agree():
    exact, prefixes = names_read()
    assert len(exact) > 50 and "RS_DATA_PATH" in exact and "RS_TOKEN_" in prefixes   # the scan works
    problems = disagreements((ROOT / "README.md").read_text(), exact, prefixes, _elsewhere())
    assert not problems, "\n".join(problems)


def test_the_check_fails_both_ways():
    readme = ("x\n## Configuration\n\n| variable | default | meaning |\n|---|---|---|\n"
              "| `RS_A` | 1 | a |\n| `RS_FAM_<ID>_*` | | family |\n| `EDGE_GONE` | | removed |\n"
              "| `EDGE_KNOB` | | for tests only: a knob |\n\n## Next\n")
    problems = disagreements(readme, {"RS_A", "RS_B", "RS_FAM_X"}, {"RS_OTHER_"}, "EDGE_KNOB")
    assert problems == [
        "RS_B is read by edge but missing from the README's configuration table",
        "RS_OTHER_* is read by edge but missing from the README's configuration table",
        "EDGE_GONE is in the README's configuration table but edge does not read it "
        "(a test-only knob must say 'for tests only')",
    ]
    assert disagreements(readme.replace("| `RS_FAM_<ID>_*` | | family |\n", ""), {"RS_A"}, set(), "EDGE_KNOB") \
        == ["EDGE_GONE is in the README's configuration table but edge does not read it "
            "(a test-only knob must say 'for tests only')"]
