"""The student's package: laid out and compiled by the runner (before any student code runs), imported in
a probe's process (where the student's code runs: these finders must hold whatever that code does).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import py_compile
import shutil
import sys
import types
from collections.abc import Collection
from pathlib import Path
from typing import Any

from sandbox.runner.protocol import MODULE_FILES, STUDENT_FILES, PlanDocument, dotted, file_name


def build_package(submission: Path, scaffold: Path, root: Path, package: str) -> None:
    """Lay out the package the student's imports expect: the course's every module, then the uploads.

    The scaffold holds course-compatible copies of every module of the course's package (fast_layers,
    im2col, solver, classifiers/cnn, ...), so that any of them a student's file imports is there; the
    graded files uploaded replace the scaffold's copies of the same name (layer_utils.py is optional).
    """
    pkg = root / package
    (pkg / "classifiers").mkdir(parents=True)
    for provided in sorted(scaffold.rglob("*.py")):
        target = pkg / provided.relative_to(scaffold)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(provided, target)
    for init in (pkg / "__init__.py", pkg / "classifiers" / "__init__.py"):
        if not init.exists():
            init.write_text("")
    for uploaded, place in STUDENT_FILES.items():
        if (submission / uploaded).is_file():
            shutil.copyfile(submission / uploaded, pkg / place)


def compile_package(root: Path) -> None:
    """Byte-compile every file of the package, so that no probe compiles it again (run in a child with a
    time limit: supervisor.run_in_child). Compiling runs none of the code; a file that does not compile
    gets no .pyc, and its import reports the SyntaxError in the probes as usual."""
    for source in sorted(root.rglob("*.py")):
        py_compile.compile(str(source), doraise=False, quiet=2)


class _ExistingModule(importlib.abc.Loader):
    def __init__(self, module: types.ModuleType) -> None:
        self.module = module

    def create_module(self, spec: Any) -> types.ModuleType:
        return self.module

    def exec_module(self, module: types.ModuleType) -> None:
        """Already executed under its primary name."""


class PackageAlias(importlib.abc.MetaPathFinder):
    """Make `alias.x.y` the very same module object as `package.x.y` (courses renamed cs231n to daseCV)."""

    def __init__(self, alias: str, package: str) -> None:
        self.alias, self.package = alias, package

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname != self.alias and not fullname.startswith(self.alias + "."):
            return None
        module = importlib.import_module(self.package + fullname[len(self.alias) :])
        return importlib.util.spec_from_loader(fullname, _ExistingModule(module))


class ForbiddenModules(importlib.abc.MetaPathFinder):
    """Refuse to import some modules of the package under any of its names: the course's architecture
    composed from the student's layers must run where the student's model cannot (fc_net)."""

    def __init__(self, names: Collection[str]) -> None:
        self.names = frozenset(names)

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname in self.names:
            raise ImportError(f"{fullname} cannot be imported by this probe, which runs your layers only")
        return None


def install_aliases(plan: PlanDocument) -> None:
    for alias in plan.get("package_aliases", []):
        sys.meta_path.insert(0, PackageAlias(alias, plan["package"]))


def forbid_imports(plan: PlanDocument, modules: Collection[str]) -> None:
    """Install ForbiddenModules for `modules` (e.g. fc_net) under the package's name and its aliases."""
    if modules:
        packages = [plan["package"], *plan.get("package_aliases", [])]
        sys.meta_path.insert(0, ForbiddenModules({f"{p}.{dotted(m)}" for p in packages for m in modules}))


def import_modules(package: str, names: list[str], pkg_root: Path) -> types.SimpleNamespace:
    """The student's modules, imported by their names in the package (`layers`, `fc_net`, ...)."""
    namespace = types.SimpleNamespace()
    for name in names:
        if not (pkg_root / package / MODULE_FILES[name]).is_file():
            raise ModuleNotFoundError(f"{file_name(name)} was not submitted")
        setattr(namespace, name, importlib.import_module(f"{package}.{dotted(name)}"))
    return namespace
