"""Trusted reference implementation of CS231n assignment 2 (fully-connected nets), with the course's API."""

from pathlib import Path

import sandbox

# The course-provided files (layer_utils.py, solver.py, gradient_check.py) exist once, in sandbox/scaffold,
# because the same files are copied into every student's package. Adding that folder to this package's
# search path makes reference.layer_utils, reference.solver and reference.gradient_check those very files,
# and their relative imports (`from .layers import *`, `from . import optim`) resolve to reference.layers and
# reference.optim. sandbox/scaffold has no __init__.py on purpose: it is never imported as a package itself.
__path__.append(str(Path(sandbox.__file__).parent / "scaffold"))
