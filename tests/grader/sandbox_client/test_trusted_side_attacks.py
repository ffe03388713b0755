"""Submissions that attack the trusted side's judgement rather than the sandbox: outputs shaped to crash
a judge, fakes that would earn points for work not done, and floods that would exhaust the grader.
Each is graded through the real Docker sandbox; each must lose exactly what it did not earn, and the
grader must finish, within its bounds, with nothing left behind."""

from __future__ import annotations

import dataclasses
import os
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from grader.assignments import get_assignment
from grader.engine.grading import grade_submission
from grader.engine.report import Report
from grader.intake.uploads import load_submission
from grader.sandbox_client.docker_executor import CONTAINER_LABEL, DockerExecutor
from grader.settings import Settings
from tests.fixtures.submissions.buggy import CORRECT_COURSE, SUBMISSION_FILES, Edit, apply_edits

ASSIGNMENT = get_assignment("cs231n-a2-fc")
OWNER = f"tests-trusted-side-{os.getpid()}"
LAYERS_END = '    elif mode == "test":\n        dx = dout\n    return dx\n'
FC_NET_END = "        return loss, grads\n"


def append_to(file: str, anchor: str, code: str) -> Edit:
    """Code added at the end of `file` (after `anchor`, its last lines): it overrides what came before."""
    return Edit(file, anchor, anchor + "\n\n" + textwrap.dedent(code).strip("\n") + "\n")


def patch_recipe_output(file: str, anchor: str, replacement: str) -> Edit:
    """Student code that rewrites what the sandbox's own recipe records (it runs in the same process)."""
    body = textwrap.indent(textwrap.dedent(replacement).strip("\n"), "    ")
    code = (
        "from sandbox import recipes\n\n_record = recipes.RecipeResult.record\n\n\n"
        f"def _rigged(self, name, value):\n{body}\n    return _record(self, name, value)\n\n\n"
        "recipes.RecipeResult.record = _rigged\n"
    )
    return Edit(file, anchor, anchor + "\n\n" + code)


def grade(tmp_path: Path, edits: tuple[Edit, ...], check_ids: set[str], executor: DockerExecutor) -> Report:
    texts = apply_edits({f: (CORRECT_COURSE / f).read_text() for f in SUBMISSION_FILES}, edits)
    for name, text in texts.items():
        (tmp_path / name).write_text(text)
    assignment = dataclasses.replace(
        ASSIGNMENT, build_checks=lambda seed: [c for c in ASSIGNMENT.build_checks(seed) if c.id in check_ids]
    )
    return grade_submission(load_submission(tmp_path), assignment, seed=5, executor=executor)


@pytest.fixture
def executor(docker_client: Any, sandbox_image: str) -> DockerExecutor:
    return DockerExecutor(docker_client, sandbox_image, Settings().container_limits(), owner=OWNER)


@pytest.fixture(autouse=True)
def nothing_left_behind(docker_client: Any) -> Any:
    yield
    assert docker_client.containers.list(all=True, filters={"label": f"{CONTAINER_LABEL}={OWNER}"}) == []


def test_an_identity_dropout_does_not_pass_the_backward_check(
    tmp_path: Path, executor: DockerExecutor
) -> None:
    # forward returns x, backward returns dout: "consistent", and no dropout at all.
    edits = (
        append_to(
            "layers.py",
            LAYERS_END,
            """
        def dropout_forward(x, dropout_param):
            return x, None

        def dropout_backward(dout, cache):
            return dout
    """,
        ),
    )
    report = grade(
        tmp_path, edits, {"layers.dropout_backward.random", "layers.affine_forward.notebook"}, executor
    )
    checks = {c.id: c for c in report.checks}
    assert checks["layers.dropout_backward.random"].score == 0
    assert "not x times a dropout mask" in checks["layers.dropout_backward.random"].message
    assert checks["layers.affine_forward.notebook"].status == "passed"


def test_a_constant_loss_in_train_mode_earns_no_gradient_points(
    tmp_path: Path, executor: DockerExecutor
) -> None:
    edits = (
        append_to(
            "fc_net.py",
            FC_NET_END,
            """
        _real_loss = FullyConnectedNet.loss

        def _fake_loss(self, X, y=None):
            if y is not None and self.use_dropout:
                return 1.0, {name: np.zeros_like(value) for name, value in self.params.items()}
            return _real_loss(self, X, y)

        FullyConnectedNet.loss = _fake_loss
    """,
        ),
    )
    report = grade(tmp_path, edits, {"fc_net.dropout", "fc_net.loss.regularized"}, executor)
    checks = {c.id: c for c in report.checks}
    dropout = checks["fc_net.dropout"]
    assert dropout.status == "failed"
    assert all(dropout.errors[key] == 1.0 for key in dropout.errors if key.startswith("grad_"))
    assert "the loss does not change when any parameter does" in dropout.message
    assert dropout.score <= dropout.max_score * 0.25  # at most "dropout applied" and test-mode scores
    assert checks["fc_net.loss.regularized"].status == "passed"


def test_misshapen_finite_differences_fail_the_check_without_crashing_the_grader(
    tmp_path: Path, executor: DockerExecutor
) -> None:
    edits = (
        patch_recipe_output(
            "fc_net.py",
            FC_NET_END,
            """
        if name in ("plus", "minus"):
            value = np.zeros(1)
    """,
        ),
    )
    report = grade(tmp_path, edits, {"fc_net.dropout"}, executor)
    (dropout,) = report.checks
    assert dropout.status == "failed" and dropout.score < dropout.max_score
    assert all(dropout.errors[key] == 1.0 for key in dropout.errors if key.startswith("grad_"))


def test_a_flood_of_results_is_cut_at_the_cap_and_the_grader_finishes(
    tmp_path: Path, docker_client: Any, sandbox_image: str
) -> None:
    # Every probe records a 3.8 MB array more (under the per-probe cap); a small per-attempt cap then
    # stops the sandbox mid-stream, which must neither hang the grader nor leave the container behind.
    edits = (
        patch_recipe_output(
            "layers.py",
            LAYERS_END,
            """
        self.arrays["flood"] = np.ones(480_000)
    """,
        ),
    )
    limits = dataclasses.replace(Settings().container_limits(), output_bytes=8 * 1024**2)
    small = DockerExecutor(docker_client, sandbox_image, limits, owner=OWNER)
    ids = {
        "layers.affine_forward.notebook",
        "layers.relu_forward.notebook",
        "layers.relu_forward.random",
        "layers.affine_forward.multidim",
    }
    started = time.monotonic()
    report = grade(tmp_path, edits, ids, small)
    assert time.monotonic() - started < 60
    statuses = {c.id: c.status for c in report.checks}
    assert "error" in statuses.values(), statuses  # at least the probe in flight at the cap
    assert any("output limit" in c.message for c in report.checks)


def test_correct_code_that_returns_lists_gets_full_marks(tmp_path: Path, executor: DockerExecutor) -> None:
    # `return [out, cache]` and `return [next_w, config]` work in the notebook, so they must here.
    edits = (
        append_to(
            "layers.py",
            LAYERS_END,
            """
        _affine_forward, _relu_forward = affine_forward, relu_forward

        def affine_forward(x, w, b):
            return list(_affine_forward(x, w, b))

        def relu_forward(x):
            return list(_relu_forward(x))
    """,
        ),
    )
    ids = {
        "layers.affine_forward.notebook",
        "layers.affine_backward.multidim",
        "layers.relu_backward.notebook",
    }
    report = grade(tmp_path, edits, ids, executor)
    assert [c.id for c in report.checks if c.status != "passed"] == []
