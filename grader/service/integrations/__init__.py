"""Other systems' formats of the service's data: Gradescope's results.json (gradescope.py)."""
