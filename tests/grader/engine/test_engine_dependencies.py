"""Dependencies point one way: the engine defines the executor interface and imports no implementation of
it (grader/sandbox_client/), nor the layers built on it (grader.core, grader.cli). Read with ast, so an
import inside a function counts too."""

from __future__ import annotations

import ast
from pathlib import Path

import grader.engine

ENGINE = Path(grader.engine.__file__).resolve().parent
FORBIDDEN = ("grader.sandbox_client", "grader.core", "grader.cli")


def imported_modules(source: str, module: str) -> set[str]:
    """Every module `source` (the text of `module`, dotted) imports, relative imports resolved."""
    names: set[str] = set()
    package = module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def forbidden_imports(source: str, module: str) -> set[str]:
    return {
        name
        for name in imported_modules(source, module)
        if any(name == bad or name.startswith(f"{bad}.") for bad in FORBIDDEN)
    }


def test_the_engine_imports_no_executor_implementation() -> None:
    files = sorted(ENGINE.rglob("*.py"))
    assert len(files) > 5
    found = {}
    for path in files:
        module = "grader." + ".".join(path.relative_to(ENGINE.parent).with_suffix("").parts)
        bad = forbidden_imports(path.read_text(), module)
        if bad:
            found[path.name] = sorted(bad)
    assert found == {}


def test_every_form_of_the_import_is_seen() -> None:
    """The control: each way of writing the import is caught."""
    module = "grader.engine.grading"
    for source in (
        "import grader.sandbox_client.executor",
        "from grader.sandbox_client.executor import LocalProcessExecutor",
        "from grader import sandbox_client",
        "from ..sandbox_client import docker_executor",
        "from .. import core",
        "def f():\n    from grader.cli import app\n",
    ):
        assert forbidden_imports(source, module), source
    assert forbidden_imports("from grader.engine.executor import Executor", module) == set()
    assert forbidden_imports("from . import outputs", module) == set()
