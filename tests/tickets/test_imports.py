"""The arrows inside tickets, read from the source: models and rules at the bottom, the actions
above them, the channels (line, email_in, email_out) above the actions, and tasks, webhooks,
views, admin and commands on top. No module imports one above it, there is no loop, and no
import hides inside a function to dodge one."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "tickets"
# What calls the actions: the actions never import these (they queue tasks by name).
ABOVE_ACTIONS = {
    "tickets.line", "tickets.email_in", "tickets.email_out", "tickets.tasks", "tickets.webhooks", "tickets.views",
    "tickets.admin", "tickets.api", "tickets.urls", "tickets.channel_urls", "tickets.management",
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def sources() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py") if "migrations" not in p.parts}


def imports(path: Path, *, nested: bool) -> set[str]:
    """The tickets modules `path` imports at module level (nested=False) or inside functions."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = set(tree.body)
    found = set()
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Import, ast.ImportFrom)) or (node in top) == nested:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
            continue
        base = node.module or ""
        if node.level:
            anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
            base = ".".join(anchor + ([node.module] if node.module else []))
        found.add(base)
        found.update(f"{base}.{alias.name}" for alias in node.names)  # `from . import line`
    known = sources()
    return {m for m in found if m in known}


def test_the_actions_import_nothing_that_calls_them():
    wrong = {
        name: sorted(m for m in imports(path, nested=False) | imports(path, nested=True)
                     if any(m == a or m.startswith(a + ".") for a in ABOVE_ACTIONS))
        for name, path in sources().items() if name.startswith("tickets.actions")
    }
    assert {name: found for name, found in wrong.items() if found} == {}


def test_no_import_loop_among_the_tickets_modules():
    graph = {name: imports(path, nested=False) - {name} for name, path in sources().items()}
    # A package's __init__ is imported with each of its modules: an edge to it is not a loop.
    graph = {name: {m for m in deps if not name.startswith(m + ".")} for name, deps in graph.items()}
    done, active, loops = set(), [], []

    def visit(name):
        if name in active:
            loops.append(active[active.index(name):] + [name])
            return
        if name in done:
            return
        active.append(name)
        for dep in sorted(graph.get(name, ())):
            visit(dep)
        active.pop()
        done.add(name)

    for name in sorted(graph):
        visit(name)
    assert loops == []


def test_no_tickets_import_hides_inside_a_function():
    # AppConfig.ready is Django's place for imports that need the models loaded first.
    nested = {name: sorted(imports(path, nested=True)) for name, path in sources().items() if name != "tickets.apps"}
    assert {name: found for name, found in nested.items() if found} == {}
