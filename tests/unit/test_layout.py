"""The layout stays true to the flow (README, "Architecture"): each package one hop, every
import pointing down it, no module importing itself back through others, the workflow
free of I/O libraries, and no source file doing five jobs."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Down the flow: a package may import those before it (and itself). The two pairs that
# know each other are named in ALLOWED_BOTH_WAYS.
LAYERS = [
    "domain",
    "rules",
    "store",
    "workflows",
    "activities",
    "delivery",
    "projections",
    "replay",
    "intake",
    "api",
    "leadflow",
]
# The pure core is layered module by module (domain.lifecycle uses rules; rules.catalog
# names domain's event types); the API is built by the composition root and reads its
# settings from it.
ALLOWED_BOTH_WAYS = {frozenset({"domain", "rules"}), frozenset({"api", "leadflow"})}
# What the workflow module must never load: it runs in Temporal's sandbox and replays.
IO_LIBRARIES = {
    "sqlalchemy",
    "eventsourcing_sqlalchemy",
    "psycopg",
    "sqlite3",
    "httpx",
    "smtplib",
    "fastapi",
    "uvicorn",
    "store",
    "activities",
    "delivery",
    "api",
}
MAX_LINES = 700


def modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in LAYERS:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def imports_of(path: Path, known: dict[str, Path]) -> set[str]:
    """The project modules `path` imports (a `from package import module` counts too)."""
    imported: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        imported.update(name for name in names if name in known)
    return imported


def test_every_import_points_down_the_flow() -> None:
    known = modules()
    wrong: list[str] = []
    for name, path in known.items():
        package = name.split(".")[0]
        for target in imports_of(path, known):
            other = target.split(".")[0]
            if other == package or frozenset({package, other}) in ALLOWED_BOTH_WAYS:
                continue
            if LAYERS.index(other) > LAYERS.index(package):
                wrong.append(f"{name} imports {target} ({other} is above {package})")
    assert wrong == []


def test_no_module_imports_itself_back() -> None:
    known = modules()
    graph = {name: imports_of(path, known) - {name} for name, path in known.items()}
    cycles: list[list[str]] = []
    # Tarjan's strongly connected components, iterative: a component of two or more
    # modules is an import cycle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))
    assert cycles == []


def test_the_workflow_module_loads_no_io_library() -> None:
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, workflows.lead; print(*sorted(sys.modules))"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert sorted({name.split(".")[0] for name in loaded} & IO_LIBRARIES) == []


def test_no_source_file_grows_past_a_few_jobs() -> None:
    long = {
        name: lines
        for name, path in modules().items()
        if (lines := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_the_layers_are_the_packages_on_disk() -> None:
    packages = defaultdict(list)
    for init in ROOT.glob("*/__init__.py"):
        packages[init.parent.name].append(init)
    assert sorted(packages) == sorted(LAYERS)


def test_every_module_imports() -> None:
    """mypy is told to ignore modules it cannot find (third-party ones without stubs), so a
    first-party import of a module that moved away would pass it: importing catches it."""
    # __main__ runs the CLI; alembic's env.py runs only inside alembic, reading its context.
    names = sorted(
        name for name in modules() if not name.endswith(("__main__", "store.migrations.env"))
    )
    script = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)"
    subprocess.run([sys.executable, "-c", script, *names], cwd=ROOT, check=True)
