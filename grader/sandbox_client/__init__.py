"""Executors: run a sandbox plan on a submission and hand back validated probe outcomes."""
