"""The layering of the package, read from the source (nothing is imported or run).

- ``tensorflow`` is imported only under ``occcodec/encoder/``;
- ``occcodec/format/`` imports only numpy, msgpack, zstandard, the standard library,
  ``occcodec.errors`` and itself;
- nothing under ``format/``, ``shapes/``, ``coding/`` or the decoder imports ``encoder/``,
  ``batch/``, ``tools/`` or ``cli/``;
- only ``cli/`` imports argparse (the only place arguments are parsed);
- there is no import circle among the package's modules (imports inside functions count:
  a circle through a lazy import is still a circle in the design).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "occcodec"
STDLIB = set(sys.stdlib_module_names)


def _module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> list[str]:
    """Absolute names of every module ``path`` imports, at any depth of its code."""
    tree = ast.parse(path.read_text(), filename=str(path))
    me = _module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            names.append(mod)
            # "from occcodec.x import y" may import the submodule occcodec.x.y
            names += [f"{mod}.{a.name}" for a in node.names]
    return names


MODULES = {_module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def _internal(name: str) -> str | None:
    """The package module that an imported name refers to, or None if external."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def _under(module: str, *prefixes: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_tensorflow_only_in_the_encoder(module: str) -> None:
    tops = {n.split(".")[0] for n in _imports(MODULES[module])}
    if "tensorflow" in tops or "keras" in tops:
        assert _under(module, "occcodec.encoder"), f"{module} imports TensorFlow"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _under(m, "occcodec.format")))
def test_format_imports_only_its_dependencies(module: str) -> None:
    allowed_external = {"numpy", "msgpack", "zstandard"}
    for name in _imports(MODULES[module]):
        top = name.split(".")[0]
        if top == "occcodec":
            target = _internal(name)
            assert target is not None and (
                _under(target, "occcodec.format") or target == "occcodec.errors"
                or target == "occcodec"  # "from occcodec.format import x" resolves via occcodec
            ), f"{module} imports {name}"
        else:
            assert top in allowed_external or top in STDLIB or top == "__future__", (
                f"{module} imports {name}")


LOWER = ("occcodec.format", "occcodec.shapes", "occcodec.coding", "occcodec.decoder",
         "occcodec.sparse")
UPPER = ("occcodec.encoder", "occcodec.batch", "occcodec.tools", "occcodec.cli")


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _under(m, *LOWER)))
def test_lower_layers_never_import_upper_ones(module: str) -> None:
    for name in _imports(MODULES[module]):
        target = _internal(name)
        if target is not None:
            assert not _under(target, *UPPER), f"{module} imports {target}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_only_the_cli_parses_arguments(module: str) -> None:
    if _under(module, "occcodec.cli"):
        return
    assert "argparse" not in {n.split(".")[0] for n in _imports(MODULES[module])}, module


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        deps = set()
        for name in _imports(path):
            target = _internal(name)
            # a package's __init__ is not a dependency of its own submodules' design
            if target and target != module and target != "occcodec" and not (
                    module.startswith(target + ".") and MODULES[target].name == "__init__.py"):
                deps.add(target)
        graph[module] = deps
    return graph


def test_no_import_circle() -> None:
    graph = _graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                cycle = [*stack[stack.index(dep):], dep]
                pytest.fail("import circle: " + " -> ".join(cycle))
            if dep not in state:
                visit(dep)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_the_contract_sees_imports() -> None:
    """The reader itself: a known import is found, so the tests above can fail."""
    assert "occcodec.format.header" in {_internal(n) for n in _imports(MODULES["occcodec.decoder"])}
    assert "tensorflow" in {n.split(".")[0] for n in _imports(MODULES["occcodec.encoder.tf"])}
