"""The grading engine: probes and plans, trusted reading of outputs, verdicts, diagnosis and reports."""
