"""The structure the design promises, checked on the source: the runtime knows no
domain, and one module (the composition root) knows them all."""

from __future__ import annotations

import ast
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
