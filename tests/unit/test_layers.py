"""The import directions of docs/interfaces.md and the arrows of docs/architecture.md, checked over
the source (like Trio's export test)."""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

EDGE = Path(__file__).resolve().parents[2] / "edge"

# module prefix -> imports it must never make (top-level package names or edge sub-packages)
FORBIDDEN = {
    "edge.errors": {"trio", "edge.store", "edge.http", "edge.server", "edge.services", "edge.query", "edge.formats"},
    "edge.model": {"trio", "edge.store", "edge.http", "edge.server", "edge.services", "edge.query"},
    "edge.config": {"trio", "edge.store", "edge.http", "edge.server", "edge.services", "edge.query"},
    "edge.formats": {"trio", "edge.store", "edge.http", "edge.server", "edge.services", "edge.query", "edge.auth", "edge.links"},
    "edge.query.when": {"trio", "edge.store", "edge.http", "edge.server", "edge.services"},
    "edge.links": {"trio", "edge.store", "edge.http", "edge.server", "edge.services"},
    "edge.mail": {"trio", "edge.store", "edge.http", "edge.server", "edge.services", "edge.query"},
    "edge.uploadlinks": {"trio", "edge.store", "edge.http", "edge.server", "edge.services"},
    "edge.attachments": {"trio", "edge.http", "edge.server", "edge.services"},
    "edge.attachments.sniff": {"edge.store", "edge.durable"},
    "edge.auth.tokens": {"trio", "edge.store", "edge.http", "edge.server", "edge.services"},
    "edge.auth.policy": {"trio", "edge.store", "edge.http", "edge.server", "edge.services"},
    "edge.store": {"trio", "edge.http", "edge.server", "edge.services", "edge.query", "edge.links", "edge.auth"},
    "edge.query": {"trio", "edge.http", "edge.server", "edge.services"},
    "edge.services": {"edge.http", "edge.server", "edge.main", "edge.cli"},
    "edge.http": {"edge.main", "edge.cli"},
    # The HTTP server apart from the API: the wire knows nothing of storage, auth, services or links.
    "edge.server": {"edge.store", "edge.auth", "edge.services", "edge.links", "edge.http", "edge.query",
                    "edge.main", "edge.cli"},
}

# Pure modules: values and bytes in, values out. No file I/O, so not even edge.durable.
PURE = ("edge.formats", "edge.query.when", "edge.links.seal", "edge.links.rules", "edge.links.tar",
        "edge.links.tickets", "edge.links.wire", "edge.attachments.sniff", "edge.server.multipart",
        "edge.mail.compose", "edge.mail.settings", "edge.auth.tokens", "edge.auth.policy")
IO_IMPORTS = {"edge.durable", "edge.store", "os", "shutil", "io", "tempfile", "pathlib", "psutil", "trio"}
IO_CALLS = ("open(", "os.write(", "os.fsync(", "os.fdatasync(", "os.replace(", "os.rename(", "os.unlink(",
            ".read_bytes(", ".write_bytes(", ".read_text(", ".write_text(", ".mkdir(", ".unlink(")


def _module_name(path: Path) -> str:
    rel = path.relative_to(EDGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, module: str) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
                found.add(target)
                if not node.module:
                    found.update(f"{target}.{alias.name}" for alias in node.names)
            elif node.module:
                found.add(node.module)
    return found


def _banned(imported: str, banned: set[str]) -> bool:
    return any(imported == b or imported.startswith(b + ".") for b in banned)


def test_imports_point_downwards():
    problems = []
    for path in EDGE.rglob("*.py"):
        module = _module_name(path)
        for prefix, banned in FORBIDDEN.items():
            if module == prefix or module.startswith(prefix + "."):
                for imported in _imports(path, module):
                    if _banned(imported, banned):
                        problems.append(f"{module} imports {imported}")
    assert not problems, "\n".join(sorted(problems))


def test_only_files_module_touches_the_os_in_the_store():
    offenders = []
    for path in (EDGE / "store").glob("*.py"):
        if path.name in ("files.py", "__init__.py"):
            continue
        text = path.read_text()
        for call in ("os.write(", "os.writev(", "os.fsync(", "os.fdatasync(", "os.pread(", "os.rename(",
                     "os.replace(", "os.unlink(", "open("):
            if call in text.replace("os.open(", "").replace(".open(", ""):
                offenders.append(f"{path.name}: {call}")
    assert not offenders, offenders


def _is_pure(module: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in PURE)


def test_durable_is_the_bottom_layer():
    """edge.durable (atomic file replacement, directory fsync) may be imported by every layer but the
    pure one, and itself imports only the standard library and edge.errors."""
    import sys

    path = EDGE / "durable.py"
    problems = []
    for imported in _imports(path, "edge.durable"):
        top = imported.partition(".")[0]
        if top == "edge":
            if imported not in ("edge", "edge.errors"):
                problems.append(f"edge.durable imports {imported}")
        elif top not in sys.stdlib_module_names and top != "__future__":
            problems.append(f"edge.durable imports {imported}")
    assert not problems, problems


def test_pure_modules_do_no_io():
    offenders = []
    for path in EDGE.rglob("*.py"):
        module = _module_name(path)
        if not _is_pure(module):
            continue
        for imported in _imports(path, module):
            if _banned(imported, IO_IMPORTS):
                offenders.append(f"{module} imports {imported}")
        text = path.read_text()
        for call in IO_CALLS:
            if call in text:
                offenders.append(f"{module}: {call}")
    assert not offenders, "\n".join(sorted(offenders))


# The one rule for blocking work (edge/blocking.py): nothing else starts worker threads.
THREAD_CALLS = ("to_thread", "start_thread_soon", "CapacityLimiter", "threading.Thread", "ThreadPoolExecutor")
# edge/http/payload.py: the detached crc check of a big payload streamed while it is verified
# (its own bounded limiter, it must start without waiting, see its header).
THREAD_EXCEPTIONS = {"edge.blocking": set(THREAD_CALLS), "edge.http.payload": {"start_thread_soon", "CapacityLimiter"}}


def _thread_uses(text: str) -> set[str]:
    """Names of THREAD_CALLS used in code (attribute chains and names; comments/strings ignored)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Attribute):
            chain = [node.attr]
            value = node.value
            while isinstance(value, ast.Attribute):
                chain.append(value.attr)
                value = value.value
            if isinstance(value, ast.Name):
                chain.append(value.id)
            dotted = ".".join(reversed(chain))
            found.update(c for c in THREAD_CALLS if c in chain or dotted.endswith(c))
        elif isinstance(node, ast.Name) and node.id in THREAD_CALLS:
            found.add(node.id)
        elif isinstance(node, ast.ImportFrom):
            found.update(c for c in THREAD_CALLS if c in (node.module or "").split(".")
                         or any(a.name == c for a in node.names))
    return found


def test_worker_threads_only_through_blocking():
    bad = []
    for path in EDGE.rglob("*.py"):
        module = _module_name(path)
        extra = _thread_uses(path.read_text()) - THREAD_EXCEPTIONS.get(module, set())
        if extra:
            bad.append(f"{module}: {sorted(extra)} (use edge.blocking.run_disk/run_cpu/run_net)")
    assert not bad, "\n".join(bad)


def test_thread_lint_sees_a_direct_call():
    """The check above can fail: each way of starting a thread is seen."""
    assert _thread_uses("import trio\nasync def f():\n    await trio.to_thread.run_sync(g)\n") == {"to_thread"}
    assert _thread_uses("from trio import to_thread\n") == {"to_thread"}
    assert _thread_uses("from trio.to_thread import run_sync\n") == {"to_thread"}
    assert _thread_uses("trio.lowlevel.start_thread_soon(a, b)\n") == {"start_thread_soon"}
    assert _thread_uses("x = trio.CapacityLimiter(3)\n") == {"CapacityLimiter"}
    assert _thread_uses("# trio.to_thread.run_sync in a comment\ns = 'to_thread'\n") == set()


# --- the store draws as a tree ---------------------------------------------------------------
# Every import between modules of edge/store counts, annotations under TYPE_CHECKING and imports
# inside functions included: the entry modules take entry_state.EntryState and see their bucket
# and engine through its Protocols, so no store module needs one above it (docs/architecture.md).


def _store_graph(package: Path = EDGE / "store", name: str = "edge.store") -> dict[str, set[str]]:
    modules = {(name if p.name == "__init__.py" else f"{name}.{p.stem}"): p for p in package.glob("*.py")}
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        found = set()
        names = _imports(path, module)
        for node in ast.walk(ast.parse(path.read_text())):  # ``from edge.store import files``
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
        for imported in names:
            if imported in modules and imported not in (module, name):
                found.add(imported)
        graph[module] = found
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), or a module importing itself."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_store_imports_draw_as_a_tree():
    graph = _store_graph()
    assert "edge.store.entry_state" in graph and "edge.store.entry" in graph
    cycles = _cycles(graph)
    assert not cycles, "import cycles in edge/store (annotations count too): " + "; ".join(
        " <-> ".join(c) for c in cycles)


def test_cycle_finder_sees_a_cycle():
    """The check above can fail: a two-module and a three-module cycle are both found."""
    graph = {"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"e"}, "e": {"c", "a"}, "f": set()}
    assert _cycles(graph) == [["a", "b"], ["c", "d", "e"]]
    # and an import under TYPE_CHECKING or inside a function is an edge
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        pkg = Path(tmp) / "edge" / "store"
        pkg.mkdir(parents=True)
        (pkg / "__init__.py").write_text("")
        (pkg / "low.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from edge.store.high import X\n")
        (pkg / "high.py").write_text("def f():\n    from edge.store import low\n")
        assert _cycles(_store_graph(pkg)) == [["edge.store.high", "edge.store.low"]]


# --- docs/architecture.md: the arrows between rooms, both ways --------------------------------
ARCHITECTURE = EDGE.parent / "docs" / "architecture.md"


def _room(module: str) -> str | None:
    """``edge.store.entry`` -> ``store``; ``edge.main`` -> ``main``; the package root -> None."""
    parts = module.split(".")
    if parts[0] != "edge" or len(parts) < 2:
        return None
    name = parts[1]
    return name if (EDGE / name).is_dir() or (EDGE / f"{name}.py").exists() else None


@functools.lru_cache(maxsize=None)
def _room_arrows() -> dict[str, set[str]]:
    arrows: dict[str, set[str]] = {}
    for path in EDGE.rglob("*.py"):
        module = _module_name(path)
        room = _room(module)
        if room is None:
            continue
        names = _imports(path, module)
        for node in ast.walk(ast.parse(path.read_text())):  # ``from edge import durable``
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
        targets = {_room(n) for n in names} - {None, room}
        arrows.setdefault(room, set()).update(t for t in targets if t)
    return arrows


def _documented_arrows(text: str) -> dict[str, set[str]]:
    block = text.split("```arrows\n", 1)[1].split("```", 1)[0]
    doc: dict[str, set[str]] = {}
    for line in block.strip().splitlines():
        source, arrow, targets = line.partition(" -> ")
        assert arrow, f"not 'room -> rooms': {line!r}"
        doc[source.strip()] = set(targets.split())
    return doc


def _arrow_problems(code: dict[str, set[str]], doc: dict[str, set[str]]) -> list[str]:
    named = set(doc) | set().union(*doc.values())
    problems = [f"a room in the doc that edge/ does not have: {r}" for r in sorted(named - set(code))]
    problems += sorted(f"imported, not in the doc: {a} -> {b}" for a, bs in code.items() for b in bs
                       if b not in doc.get(a, set()))
    problems += sorted(f"in the doc, not imported: {a} -> {b}" for a, bs in doc.items() for b in bs
                       if b not in code.get(a, set()))
    return problems


def test_architecture_arrows():
    """Every arrow docs/architecture.md lists is an import between rooms, and every such import
    is listed; the rooms it names exist, and they import one another without a cycle."""
    code = _room_arrows()
    problems = _arrow_problems(code, _documented_arrows(ARCHITECTURE.read_text()))
    assert not problems, "docs/architecture.md's arrows disagree with the code:\n" + "\n".join(problems)
    assert not _cycles(code), _cycles(code)


def _picture_rows(text: str, rooms: set[str]) -> dict[str, int]:
    """Room -> its row in the first picture of docs/architecture.md (rows: lines naming rooms)."""
    picture = text.split("## The rooms", 1)[1].split("```\n", 2)[1]
    rows: dict[str, int] = {}
    row = 0
    for line in picture.splitlines():
        named = [w for w in re.findall(r"[A-Za-z_]+", line) if w in rooms]
        for room in named:
            assert room not in rows, f"{room} drawn twice"
            rows[room] = row
        row += bool(named)
    return rows


def _row_problems(arrows: dict[str, set[str]], rows: dict[str, int], chain: set[str]) -> list[str]:
    problems = [f"not in the picture: {r}" for r in sorted(set(arrows) - set(rows))]
    problems += sorted(f"{a} -> {b} does not point down the picture" for a, bs in arrows.items() for b in bs
                       if a in rows and b in rows and rows[b] <= rows[a] and not {a, b} <= chain)
    return problems


def test_architecture_picture_rows():
    """Every room is drawn once, and every arrow points to a lower row of the picture (the
    process row is one chain: __main__ -> cli -> main)."""
    code = _room_arrows()
    rows = _picture_rows(ARCHITECTURE.read_text(), set(code))
    problems = _row_problems(code, rows, {"__main__", "cli", "main"})
    assert not problems, "docs/architecture.md's picture disagrees with the imports:\n" + "\n".join(problems)


def test_architecture_arrows_check_can_fail():
    """A listed arrow that is not imported, an import not listed and an unknown room are all seen."""
    code = {"store": {"errors"}, "http": {"store", "errors"}, "errors": set()}
    doc = _documented_arrows("x\n```arrows\nstore -> errors http\nhttp -> store\nghost -> errors\n```\n")
    assert _arrow_problems(code, doc) == ["a room in the doc that edge/ does not have: ghost",
                                          "imported, not in the doc: http -> errors",
                                          "in the doc, not imported: ghost -> errors",
                                          "in the doc, not imported: store -> http"]
    assert "store" in _room_arrows() and "http" not in _room_arrows()["store"]   # forbidden stays absent
    rows = _picture_rows("## The rooms\n```\n top   http\n       |\n low   store  errors\n```\n",
                         {"http", "store", "errors"})
    assert rows == {"http": 0, "store": 1, "errors": 1}
    assert _row_problems(code, rows, set()) == ["store -> errors does not point down the picture"]
