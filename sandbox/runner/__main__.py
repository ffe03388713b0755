"""Entry of the runner, as a script: `python -I /opt/grader/sandbox/runner/__main__.py ...` (runner.py)."""

import sys
from pathlib import Path

if __name__ == "__main__":  # not when student code imports sandbox.runner.__main__
    if not __package__:
        # python -I leaves the script's folder out of sys.path: the folder that holds `sandbox` goes
        # there (in the image /opt/grader, which holds nothing else).
        sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from sandbox.runner.runner import main

    main()
