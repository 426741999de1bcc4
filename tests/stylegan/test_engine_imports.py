"""The engine's import graph, read from its source with ``ast`` (nothing is imported):
no import cycle inside ``generation/stylegan`` (every import, module level or inside a
function, points one way), and no Django or other project app imported from it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENGINE = ROOT / "generation" / "stylegan"
PACKAGE = "generation.stylegan"


def module_names(directory: Path, package: str) -> dict[str, Path]:
    """Dotted module name -> source file, for every module of the package tree."""
    modules = {}
    for path in sorted(directory.rglob("*.py")):
        parts = path.relative_to(directory).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join((package, *parts))] = path
    return modules


def imported_names(path: Path, module: str) -> list[str]:
    """The absolute names ``path`` (module ``module``) imports anywhere in its body: for
    ``from X import a``, ``X.a`` (which may be a submodule or an attribute of X)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            names += [f"{target}.{alias.name}" for alias in node.names] or [target]
    return names


def resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The engine module that importing ``name`` runs: the longest known prefix."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def import_graph(directory: Path, package: str) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(edges between the package's modules, every other name each module imports)."""
    modules = module_names(directory, package)
    edges: dict[str, set[str]] = {name: set() for name in modules}
    external: dict[str, set[str]] = {name: set() for name in modules}
    for module, path in modules.items():
        for name in imported_names(path, module):
            target = resolve(name, modules) if name.startswith(package + ".") or name == package else None
            if target is None:
                external[module].add(name)
            elif target != module:
                edges[module].add(target)
    return edges, external


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import cycle [a, b, ..., a], or None."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for successor in sorted(edges.get(node, ())):
            if state.get(successor) == "open":
                return stack[stack.index(successor) :] + [successor]
            if successor not in state:
                cycle = visit(successor)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(edges):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def project_packages() -> set[str]:
    """The repository's own top-level packages (the Django project and its apps)."""
    return {path.parent.name for path in ROOT.glob("*/__init__.py")} - {"tests"}


def test_the_engine_has_no_import_cycle():
    edges, _ = import_graph(ENGINE, PACKAGE)
    assert f"{PACKAGE}.ops.modulated_conv2d" in edges and f"{PACKAGE}.training.loop" in edges  # it saw the tree
    cycle = find_cycle(edges)
    assert cycle is None, "import cycle in the engine: " + " -> ".join(cycle)


def test_the_ops_layers_import_downwards_only():
    edges, _ = import_graph(ENGINE, PACKAGE)
    ops = f"{PACKAGE}.ops"
    layers = [
        {f"{ops}.bias_act", f"{ops}.upfirdn2d"},
        {f"{ops}.fast_cpu", f"{ops}.cuda.locking"},
        {f"{ops}.cuda.build"},
        {f"{ops}.cuda", f"{ops}.cuda.functions"},
        {f"{ops}.dispatch"},
        {f"{ops}.modulated_conv2d"},
    ]
    level = {module: i for i, layer in enumerate(layers) for module in layer}
    assert set(level) == {name for name in edges if name.startswith(ops + ".")}, "a new ops module needs a layer here"
    for module, targets in edges.items():
        for target in targets:
            if module in level and target in level:
                assert level[target] <= level[module], f"{module} imports {target}, which sits above it"


def test_the_engine_imports_no_django_and_no_project_app():
    _, external = import_graph(ENGINE, PACKAGE)
    forbidden = project_packages() | {"django"}
    assert {"brands", "avatars", "generation", "config"} <= forbidden
    offenders = sorted(
        f"{module} imports {name}" for module, names in external.items() for name in names
        if name.split(".")[0] in forbidden
    )  # fmt: skip
    assert offenders == []


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_the_checker_finds_the_cycle_the_ops_had(tmp_path):
    # The layout before the ops were layered: dispatch -> fast_cpu -> modulated_conv2d -> dispatch.
    ops = tmp_path / "ops"
    write(ops / "__init__.py", "from .dispatch import modulated_conv2d\n")
    write(ops / "dispatch.py", "from .fast_cpu import modulated_conv2d_fast\n")
    write(ops / "fast_cpu.py", "from .modulated_conv2d import demodulation_coefficients\n")
    write(ops / "modulated_conv2d.py", "from . import dispatch\n")
    edges, _ = import_graph(ops, "pkg.ops")
    assert find_cycle(edges) == ["pkg.ops.dispatch", "pkg.ops.fast_cpu", "pkg.ops.modulated_conv2d", "pkg.ops.dispatch"]


@pytest.mark.parametrize(
    "source,imports",
    [
        ("def f():\n    from ..b import x\n", "pkg.b"),  # inside a function too
        ("from .. import b\n", "pkg.b"),  # a submodule by name
        ("import pkg.b\n", "pkg.b"),
        ("from pkg.b import x\n", "pkg.b"),
    ],
)
def test_the_checker_follows_every_form_of_import(tmp_path, source, imports):
    write(tmp_path / "__init__.py", "")
    write(tmp_path / "b.py", "")
    write(tmp_path / "sub" / "__init__.py", "")
    write(tmp_path / "sub" / "a.py", source)
    edges, _ = import_graph(tmp_path, "pkg")
    assert edges["pkg.sub.a"] == {imports}
