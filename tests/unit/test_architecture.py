"""The shape the brief asks for, checked on the sources: no import cycles (lazy imports
inside functions count too), no module importing another module's private name, and the
product never importing the sandbox."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "spark_openstack"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(dotted: str) -> bool:
    base = ROOT / dotted.replace(".", "/")
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _imports(path: Path):
    """``(imported module, imported name or None)`` for every import in ``path``."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                full = f"{target}.{alias.name}"
                yield (full, None) if _is_module(full) else (target, alias.name)


def _graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        edges[_module_name(path)] = {target for target, _ in _imports(path)
                                     if target.startswith("spark_openstack")}
    return edges


def test_the_package_has_no_import_cycle():
    edges = _graph()
    state: dict[str, str] = {}
    cycles = []

    def visit(module: str, stack: list[str]) -> None:
        state[module] = "open"
        for target in sorted(edges.get(module, ())):
            if state.get(target) == "open":
                cycles.append(" -> ".join(stack[stack.index(target):] + [target]))
            elif target not in state:
                visit(target, stack + [target])
        state[module] = "done"
    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_a_graph_with_a_cycle_would_be_caught(tmp_path):
    """The cycle check itself finds a cycle (so the test above can fail)."""
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}}
    state: dict[str, str] = {}
    found = []

    def visit(module, stack):
        state[module] = "open"
        for target in sorted(edges.get(module, ())):
            if state.get(target) == "open":
                found.append(stack[stack.index(target):] + [target])
            elif target not in state:
                visit(target, stack + [target])
        state[module] = "done"
    visit("a", ["a"])
    assert found == [["a", "b", "c", "a"]]


def test_no_module_imports_a_private_name_of_another():
    offenders = []
    for path in [*PACKAGE.rglob("*.py"), ROOT / "fabfile.py"]:
        for target, name in _imports(path):
            if name and name.startswith("_") and not name.startswith("__") \
                    and target.startswith("spark_openstack"):
                offenders.append(f"{path.relative_to(ROOT)}: from {target} import {name}")
    assert offenders == []


def test_the_product_never_imports_the_sandbox():
    offenders = [f"{path.relative_to(ROOT)}: {target}"
                 for path in PACKAGE.rglob("*.py") for target, _ in _imports(path)
                 if target == "sandbox" or target.startswith("sandbox.")]
    assert offenders == []


TESTS = ROOT / "tests"


def _test_module_imports(path: Path):
    """Every test module an import in ``path`` names (``test_*``, at any depth of the
    dotted name, lazy imports inside functions included)."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            dotted = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            dotted = [f"{base}.{alias.name}" if base else alias.name for alias in node.names]
        else:
            continue
        for name in dotted:
            if any(part.startswith("test_") for part in name.split(".")):
                yield name


def test_no_test_module_imports_another():
    """What two test modules share lives in tests/support or a conftest.py fixture: a
    test module imported by another would run its tests' module code twice and tie the
    modules' fixtures together."""
    offenders = [f"{path.relative_to(ROOT)}: {name}" for path in sorted(TESTS.rglob("*.py"))
                 for name in _test_module_imports(path)]
    assert offenders == []


def test_the_shared_test_helpers_are_in_tests_support():
    """Besides test modules and conftest.py files, tests/ holds helper modules only in
    the one support package."""
    strays = [str(path.relative_to(ROOT)) for path in sorted(TESTS.rglob("*.py"))
              if not path.name.startswith("test_") and path.name != "conftest.py"
              and TESTS / "support" not in path.parents]
    assert strays == []


def test_the_check_for_test_module_imports_sees_every_form(tmp_path):
    source = tmp_path / "test_x.py"
    source.write_text("import test_a\nfrom test_b import c\nfrom pkg.test_d import e\n"
                      "from . import test_f\ndef g():\n    import test_h\n"
                      "from support import facts\nimport testing\n")
    assert sorted(_test_module_imports(source)) == [
        "pkg.test_d.e", "test_a", "test_b.c", "test_f", "test_h"]
