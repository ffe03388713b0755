"""The sandbox's runner: runs a plan's probes on the student's code and writes raw outputs, nothing more.

Each module says which process runs it and what it may trust; protocol.py is the part the trusted side
imports too. Entry: python -I sandbox/runner/__main__.py (see runner.py).
"""
