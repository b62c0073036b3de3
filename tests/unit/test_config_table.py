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


def test_every_bad_value_is_reported_together():
    """One start-up names every bad variable, the server's and the rooms' (issue 23 item 2)."""
    import pytest

    from edge.config import Config
    from edge.errors import ConfigError

    bad = {"RS_PORT": "x", "EDGE_SYNC": "sometimes", "EDGE_SMTP_PORT": "0", "EDGE_UPLOADS_MAX_ACTIVE": "0",
           "RS_REPLICATION_TIMEOUT": "soon", "EDGE_AUTH_WINDOW": "b", "EDGE_METRICS_ACCESS": "all",
           "EDGE_LIFECYCLE_MIN_INTERVAL_S": "-1", "RS_DEFAULTS_BUCKET_QUOTA_SIZE": "big"}
    with pytest.raises(ConfigError) as info:
        Config.from_env(bad)
    message = str(info.value)
    assert message.startswith(f"{len(bad)} bad settings: ")
    for var in bad:
        assert var in message, var
    with pytest.raises(ConfigError, match=r"^RS_PORT: 'x' is not an integer$"):   # one: as before
        Config.from_env({"RS_PORT": "x"})
    c = Config.from_env({"RS_REPLICATION_TIMEOUT": "7", "EDGE_AUTH_MAX_FAILURES": "3", "EDGE_UPLOADS_MAX_ACTIVE": "2",
                         "EDGE_SMTP_HOST": "mx.example.com", "EDGE_METRICS_SAMPLE_S": "0.01"})
    assert (c.replication.timeout_s, c.auth_throttle.max_failures, c.uploads.max_active, c.mail.host,
            c.metrics_sample_s) == (7.0, 3, 2, "mx.example.com", 0.2)


def test_describe_masks_the_smtp_password():
    from edge.config import Config

    lines = Config.from_env({"EDGE_SMTP_HOST": "h", "EDGE_SMTP_USER": "u", "EDGE_SMTP_PASSWORD": "hunter2"}).describe()
    assert "mail.password = ***" in lines and not any("hunter2" in line for line in lines)
