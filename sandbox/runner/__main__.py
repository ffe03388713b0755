"""Entry of the runner, run as a script: `python -I /opt/sandbox/runner/__main__.py ...` (runner.py)."""

import sys
from pathlib import Path

if not __package__:
    # python -I leaves the script's folder out of sys.path: the folder that holds `sandbox` goes there.
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sandbox.runner.runner import main

main()
