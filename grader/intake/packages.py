"""Which name the student's files give the course's package (cs231n, daseCV, cs682, ...), read, never run.

Courses rename the package, and a student's absolute imports (`from daseCV.fast_layers import *`) must
find the course's modules under that name. The sandbox builds the package under the name the student
uses, so that messages name it too ("No module named 'daseCV.fast_layer'"), and makes every other name
seen an alias of the same modules.
"""

from __future__ import annotations

import ast
import functools
import sys
import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import sandbox

SCAFFOLD_DIR = Path(sandbox.__file__).resolve().parent / "scaffold"
# Modules of the course's package that are graded rather than provided.
GRADED_MODULES = frozenset({"layers", "optim", "classifiers", "layer_utils"})
# Names that must never become the package: the finder that makes an alias would hijack their imports.
# (`recipes` and `runner` were the runner's own top-level modules before it became sandbox.runner; they
# stay refused, so that no upload's package name, and so no grade, changes.)
RESERVED_NAMES = frozenset(sys.stdlib_module_names) | {"numpy", "recipes", "runner", "sandbox", "grader"}
# `layers` and `optim` are common names elsewhere too (torch.optim, keras.layers): imports of them name
# the course's package only when that package is not one of these frameworks.
GENERIC_MODULES = frozenset({"layers", "optim"})
FRAMEWORKS = frozenset(
    {"torch", "keras", "tensorflow", "tf", "jax", "flax", "optax", "sklearn", "mxnet", "paddle", "chainer"}
)


def course_modules() -> frozenset[str]:
    """Every top-level module name of the course's package, as the sandbox provides it."""
    provided = {path.stem for path in SCAFFOLD_DIR.glob("*.py")}
    provided |= {path.name for path in SCAFFOLD_DIR.iterdir() if path.is_dir() and path.name != "__pycache__"}
    return frozenset(provided | GRADED_MODULES | {"im2col_cython"})


@dataclass(frozen=True)
class PackageNames:
    """The package the sandbox builds, and the other names its modules are also imported by."""

    package: str
    aliases: tuple[str, ...]


def package_names(
    files: Mapping[str, bytes], origins: Mapping[str, str], *, default: str, known_aliases: Iterable[str]
) -> PackageNames:
    """The name the student's own imports use (or the folder the files came from), and the aliases."""
    modules = course_modules()
    imported = Counter(name for content in files.values() for name in _imported_packages(content, modules))
    folders = [_package_folder(origin) for origin in origins.values()]
    candidates = [name for name, _ in imported.most_common()]
    candidates += [name for name in folders if name is not None]
    usable = [name for name in dict.fromkeys(candidates) if _usable(name)]
    package = usable[0] if usable else default
    aliases = dict.fromkeys([*usable, default, *known_aliases])
    aliases.pop(package, None)
    return PackageNames(package=package, aliases=tuple(aliases))


_PARSING = threading.Lock()


@functools.lru_cache(maxsize=32)  # the files of one grading are read for their package and their edition
def parse_source(content: bytes) -> ast.Module | None:
    """The syntax tree of an uploaded file, or None when it has none to give; never raises.

    Parsing runs none of the code. One parse at a time: CPython 3.11's parser can fail with a
    SystemError when threads parse at once (graders run in threads); hostile nesting can exhaust the
    recursion limit or memory. Either way the sandbox will report what is wrong with the file.
    """
    try:
        with _PARSING:
            return ast.parse(content)
    except (SyntaxError, ValueError, RecursionError, MemoryError, SystemError):
        return None


def _imported_packages(content: bytes, modules: frozenset[str]) -> list[str]:
    """Names P of every `import P.m` / `from P.m import ...` / `from P import m` with m a course module."""
    tree = parse_source(content)
    if tree is None:
        return []
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [_first_if_course(alias.name, modules) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append(_first_if_course(node.module, modules))
            named = any(alias.name in modules for alias in node.names)
            if named and "." not in node.module and node.module not in FRAMEWORKS:
                found.append(node.module)
    return [name for name in found if name]


def _first_if_course(dotted: str, modules: frozenset[str]) -> str:
    parts = dotted.split(".")
    if len(parts) < 2 or parts[1] not in modules:
        return ""
    return "" if parts[1] in GENERIC_MODULES and parts[0] in FRAMEWORKS else parts[0]


def _package_folder(origin: str) -> str | None:
    """The folder an uploaded file sat in, as the package name: daseCV for assignment2/daseCV/layers.py."""
    folders = origin.split("/")[:-1]
    if folders and folders[-1] == "classifiers":
        folders = folders[:-1]
    return folders[-1] if folders else None


def _usable(name: str) -> bool:
    return (
        name.isidentifier()
        and name.isascii()
        and not name.startswith("__")
        and name not in RESERVED_NAMES | FRAMEWORKS
        and len(name) <= 64
    )
