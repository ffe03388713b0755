"""Entry of the runner, as a script: `python -I /opt/grader/sandbox/runner/__main__.py ...` (runner.py)."""

import os
import sys
from pathlib import Path

# Written by the image's build (sandbox/Dockerfile): the CPU-specific loops of its numpy.
NUMPY_DISPATCH = Path("/etc/grader/numpy-dispatch")


def baseline_numpy() -> None:
    """numpy uses its baseline x86-64 loops only, as on any CPU: the same digits on every worker.
    Before numpy is imported, here or in any child."""
    if NUMPY_DISPATCH.is_file():
        os.environ["NPY_DISABLE_CPU_FEATURES"] = NUMPY_DISPATCH.read_text().strip()


if __name__ == "__main__":  # not when student code imports sandbox.runner.__main__
    baseline_numpy()
    if not __package__:
        # python -I leaves the script's folder out of sys.path: the folder that holds `sandbox` goes
        # there (in the image /opt/grader, which holds nothing else).
        sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from sandbox.runner.runner import main

    main()
