"""Gradescope, both ways: reports in its results.json format (results.py), and an autograder zip for it
that grades with this grader inside Gradescope's container (bundle.py builds it; install.py and
autograder.py run there)."""
