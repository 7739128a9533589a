"""The package's layers, held against its imports: each subpackage imports only from itself and
the layers below it, no import circle, no module over 400 lines, and every layer's
``__init__.py`` is only its docstring."""

from __future__ import annotations

import ast
from pathlib import Path

import kafkascope

PACKAGE = Path(kafkascope.__file__).parent

RANK = {
    "_version": -1,
    "_core": 0,
    "_adapters": 1,
    "_setup": 1,
    "_reports": 1,
    "_propagation": 2,
    "_observe": 2,
    "_testing": 2,
    "_consume": 3,
    "_produce": 3,
    "_clients": 4,
    "cli": 5,
    "instrumentor": 5,
    "testing": 5,
    "faust": 5,
    "__init__": 6,
}
"""Each layer's height: a module may import its own layer's modules and lower layers only."""


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        found[".".join(("kafkascope", *parts))] = path
    return found


def _layer(module: str) -> str:
    return module.split(".")[1] if module != "kafkascope" else "__init__"


def _imports(path: Path, known: set[str]) -> set[str]:
    """The kafkascope modules ``path`` imports (``from kafkascope._x import y`` counts as
    ``kafkascope._x.y`` when that is a module)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            if node.module.split(".")[0] != "kafkascope":
                continue
            for alias in node.names:
                name = f"{node.module}.{alias.name}"
                out.add(name if name in known else node.module)
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == "kafkascope"}
    return {m for m in out if m in known}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules) | {m.rsplit(".", 1)[0] for m in modules if m.endswith("__init__")}
    graph = {}
    for module, path in modules.items():
        name = module.removesuffix(".__init__")
        graph[name] = {m.removesuffix(".__init__") for m in _imports(path, known)} - {name}
    return graph


def test_every_module_belongs_to_a_known_layer():
    assert sorted({_layer(m) for m in _graph()} - set(RANK)) == []


def test_imports_run_downward_only():
    upward = [
        f"{module} -> {target}"
        for module, targets in _graph().items()
        for target in targets
        if _layer(target) != _layer(module) and RANK[_layer(target)] >= RANK[_layer(module)]
    ]
    assert upward == []


def test_there_is_no_import_circle():
    graph = _graph()
    state: dict[str, int] = {}
    circles: list[str] = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph.get(module, ())):
            if state.get(target) == 1:
                circles.append(" -> ".join([*path[path.index(target) :], target]))
            elif target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert circles == []


def test_no_module_is_over_400_lines():
    long = {
        str(path.relative_to(PACKAGE)): n
        for path in PACKAGE.rglob("*.py")
        if (n := len(path.read_text().splitlines())) > 400
    }
    assert long == {}


def test_each_layer_init_is_only_its_docstring():
    for init in PACKAGE.glob("_*/__init__.py"):
        body = ast.parse(init.read_text()).body
        assert len(body) == 1, init
        assert isinstance(body[0], ast.Expr), init
        assert isinstance(body[0].value, ast.Constant), init
        assert isinstance(body[0].value.value, str), init
