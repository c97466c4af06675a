"""The house's arrows: common and audit import none of the apps; payments and tickets import
neither each other nor console. Read from the source (every import statement, at any depth)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APPS = ("common", "audit", "payments", "tickets", "console")
FORBIDDEN = {
    "common": {"audit", "payments", "tickets", "console"},
    "audit": {"payments", "tickets", "console"},
    "payments": {"tickets", "console"},
    "tickets": {"payments", "console"},
}


def imported_apps(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return {name.split(".")[0] for name in names} & set(APPS)


@pytest.mark.parametrize("app", sorted(FORBIDDEN))
def test_no_arrow_points_the_wrong_way(app):
    wrong = {
        str(path.relative_to(ROOT)): sorted(imported_apps(path) & FORBIDDEN[app])
        for path in (ROOT / app).rglob("*.py")
    }
    assert {path: apps for path, apps in wrong.items() if apps} == {}
