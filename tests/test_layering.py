"""The apps' import graph keeps its layers (README, "Layout"): no arrow runs
back up and there is no cycle between apps. Every import counts, the ones
inside functions too."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APPS = sorted(path.parent.name for path in ROOT.glob("*/apps.py"))
# The ground every domain stands on; audit is its bottom.
GROUND = {"audit": set(), "brands": {"audit"}}
# Adapters at the top: nothing imports them.
TOP = {"api", "dashboard"}
# Wave-2 domains: the ground-floor domains never import them.
ABOVE_THE_FLOOR = {"campaigns", "approvals", "webhooks", "api", "publishing", "dashboard"}
FLOOR = {"audit", "brands", "content", "generation", "avatars"}


def imported_modules(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


def app_imports():
    """{app: {other app it imports: [file, ...]}}."""
    graph = {}
    for app in APPS:
        edges = graph.setdefault(app, {})
        for path in sorted((ROOT / app).rglob("*.py")):
            for module in imported_modules(path):
                target = module.split(".")[0]
                if target in APPS and target != app:
                    edges.setdefault(target, []).append(str(path.relative_to(ROOT)))
    return graph


def test_it_knows_the_apps():
    assert {"audit", "brands", "content", "generation", "avatars", "dashboard"} <= set(APPS)


@pytest.mark.parametrize("app", sorted(GROUND))
def test_the_ground_imports_no_app_above_it(app):
    above = {target: files for target, files in app_imports()[app].items() if target not in GROUND[app]}
    assert not above, f"{app} is ground, yet imports {above}"


def test_no_app_imports_the_adapters_at_the_top():
    offenders = {
        (app, target): files for app, edges in app_imports().items() for target, files in edges.items() if target in TOP
    }
    assert not offenders, offenders


def test_the_floor_imports_no_wave_two_domain():
    graph = app_imports()
    offenders = {
        (app, target): files
        for app in FLOOR & set(graph)
        for target, files in graph[app].items()
        if target in ABOVE_THE_FLOOR
    }
    assert not offenders, offenders


def test_there_is_no_import_cycle_between_apps():
    graph = {app: set(edges) for app, edges in app_imports().items()}

    def path_back(start, node, seen):
        for target in graph[node]:
            if target == start:
                return [node, target]
            if target not in seen:
                seen.add(target)
                rest = path_back(start, target, seen)
                if rest:
                    return [node, *rest]
        return None

    cycles = {app: path_back(app, app, {app}) for app in graph}
    assert not {app: cycle for app, cycle in cycles.items() if cycle}, cycles
