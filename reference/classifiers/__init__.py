"""Reference classifiers: fc_net is the reference's own; cnn is the course-provided one from the scaffold."""

from pathlib import Path

import sandbox

# As in reference/__init__.py: the course-provided classifiers (cnn.py) exist once, in
# sandbox/scaffold/classifiers, and appending that folder to this package's search path makes
# reference.classifiers.cnn that very file, its `from ..layers import *` resolving to reference.layers.
# The reference's own modules come first on the path, so reference.classifiers.fc_net stays the reference's.
__path__.append(str(Path(sandbox.__file__).parent / "scaffold" / "classifiers"))
