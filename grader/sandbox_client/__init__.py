"""Executors: run a sandbox plan on a submission and hand back validated probe outcomes.

They implement grader/engine/executor.py's interface; grader/core.py's Grader builds them from Settings.
"""
