"""The old name of grader.intake, kept for the imports of two tests only (tests/sandbox/test_probe_servers.py
and tests/sandbox/test_protocol.py): delete it once they import grader.intake.uploads."""
