"""Exact verdicts on the fixture submissions: correct code gets full marks, each bug loses points exactly
where it should and carries its mistake code, broken code fails with the right status."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from grader.assignments import get_assignment
from grader.engine.grading import grade_submission
from grader.engine.report import Report
from grader.sandbox_client.docker_executor import DockerExecutor
from grader.sandbox_client.executor import Executor, LocalProcessExecutor
from grader.submissions.intake import load_submission

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "submissions"
sys.path.insert(0, str(FIXTURES))
import buggy  # noqa: E402

ASSIGNMENT = get_assignment("cs231n-a2-fc")
SEED = 7
CORRECT = {
    "correct_course": FIXTURES / "correct_course",
    "correct_alt": FIXTURES / "correct_alt",
    "correct_dasecv_zip": buggy.CORRECT_DASECV_ZIP,
}

# Every check that does not pass, with its status and diagnosis ("status" or "status:code,code").
# Checks not listed must pass with full marks.
EXPECTED_FAILURES: dict[str, dict[str, str]] = {
    "bn_eps_outside_sqrt": {
        "layers.batchnorm_forward.small_variance": "failed:bn_eps_outside_sqrt",
        "layers.batchnorm_forward.test_mode": "failed:bn_eps_outside_sqrt",
        "layers.batchnorm_backward.notebook": "failed",
        "layers.batchnorm_backward.small_variance": "failed",
        "layers.batchnorm_backward_alt.notebook": "failed",
        "layers.batchnorm_backward_alt.small_variance": "failed",
        "fc_net.batchnorm.loss": "failed",
        "fc_net.batchnorm.running_stats": "failed",
    },
    "bn_running_average_swapped": {
        "layers.batchnorm_forward.notebook": "failed:bn_running_average_swapped",
        "layers.batchnorm_forward.small_variance": "failed:bn_running_average_swapped",
        "layers.batchnorm_forward.notebook_test_mode": "failed:bn_running_average_swapped",
        "layers.batchnorm_forward.test_mode": "failed:bn_running_average_swapped",
        "fc_net.batchnorm.running_stats": "failed",
    },
    "bn_test_uses_batch_stats": {
        "layers.batchnorm_forward.notebook_test_mode": "failed:bn_test_uses_batch_stats",
        "layers.batchnorm_forward.test_mode": "failed:bn_test_uses_batch_stats",
        "fc_net.batchnorm.running_stats": "failed",
    },
    "bn_unbiased_variance": {
        "layers.batchnorm_forward.notebook": "failed:bn_unbiased_variance",
        "layers.batchnorm_forward.small_variance": "failed:bn_unbiased_variance",
        "layers.batchnorm_forward.notebook_test_mode": "failed:bn_unbiased_variance",
        "layers.batchnorm_forward.test_mode": "failed:bn_unbiased_variance",
        "layers.batchnorm_backward.notebook": "failed",
        "layers.batchnorm_backward.small_variance": "failed",
        "layers.batchnorm_backward_alt.notebook": "failed",
        "layers.batchnorm_backward_alt.small_variance": "failed",
        "fc_net.batchnorm.loss": "failed",
        "fc_net.batchnorm.running_stats": "failed",
    },
    "bn_running_stats_not_stored": {
        "layers.batchnorm_forward.notebook": "failed:bn_running_stats_not_stored",
        "layers.batchnorm_forward.small_variance": "failed:bn_running_stats_not_stored",
        "layers.batchnorm_forward.notebook_test_mode": "failed:bn_running_stats_not_stored",
        "layers.batchnorm_forward.test_mode": "failed:bn_running_stats_not_stored",
        "fc_net.batchnorm.running_stats": "failed",
    },
    "ln_normalizes_over_batch": {
        "layers.layernorm_forward.notebook": "failed:ln_normalizes_over_batch",
        "layers.layernorm_forward.small_variance": "failed:ln_normalizes_over_batch",
        "layers.layernorm_backward.notebook": "failed",
        "layers.layernorm_backward.small_variance": "failed",
        "fc_net.layernorm.loss": "failed",
    },
    "dropout_p_is_drop_probability": {
        "layers.dropout_forward.notebook": "failed:dropout_p_is_drop_probability",
        "layers.dropout_forward.random": "failed:dropout_p_is_drop_probability",
    },
    "dropout_not_inverted": {
        "layers.dropout_forward.notebook": "failed:dropout_not_inverted",
        "layers.dropout_forward.random": "failed:dropout_not_inverted",
    },
    "dropout_test_mode_scaled": {
        "layers.dropout_forward.notebook": "failed:dropout_test_mode_scaled",
        "layers.dropout_forward.random": "failed:dropout_test_mode_scaled",
        "fc_net.dropout": "failed",
    },
    "dropout_backward_ignores_mask": {
        "layers.dropout_backward.notebook": "failed:dropout_backward_ignores_mask",
        "layers.dropout_backward.random": "failed:dropout_backward_ignores_mask",
        "fc_net.dropout": "failed",
    },
    "softmax_not_stable": {
        "layers.softmax_loss.large_scores": "failed:softmax_not_stable",
    },
    "momentum_formula": {
        "optim.sgd_momentum.notebook": "failed:momentum_formula",
        "optim.sgd_momentum.steps": "failed:momentum_formula",
    },
    "optimizer_state_not_saved": {
        "optim.adam.notebook": "failed:optimizer_state_not_saved",
        "optim.adam.steps": "failed:optimizer_state_not_saved",
    },
    "adam_t_incremented_late": {
        "optim.adam.notebook": "failed:adam_t_incremented_late",
        "optim.adam.steps": "failed:adam_t_incremented_late",
    },
    "adam_no_bias_correction": {
        "optim.adam.notebook": "failed:adam_no_bias_correction",
        "optim.adam.steps": "failed:adam_no_bias_correction",
    },
    "rmsprop_eps_inside_sqrt": {
        "optim.rmsprop.small_gradients": "failed:rmsprop_eps_inside_sqrt",
    },
    "l2_missing_half": {
        "fc_net.initial_loss.notebook": "failed:l2_missing_half",
        "fc_net.loss.regularized": "failed:l2_missing_half",
        "fc_net.batchnorm.loss": "failed:l2_missing_half",
        "fc_net.layernorm.loss": "failed:l2_missing_half",
    },
    "l2_regularizes_bias": {
        "fc_net.loss.regularized": "failed:l2_regularizes_bias",
        "fc_net.batchnorm.loss": "failed:l2_regularizes_bias",
        "fc_net.layernorm.loss": "failed:l2_regularizes_bias",
    },
    "weight_init_scale": {
        "fc_net.init": "failed:weight_init_scale",
        "fc_net.init_normalization": "failed:weight_init_scale",
    },
    "missing_params": {
        "fc_net.init_normalization": "failed:missing_params",
        "fc_net.batchnorm.loss": "failed:missing_grads",
        "fc_net.batchnorm.running_stats": "failed",
        "fc_net.layernorm.loss": "failed:missing_grads",
    },
    "missing_grads": {
        "fc_net.initial_loss.notebook": "failed:missing_grads",
        "fc_net.loss.regularized": "failed:missing_grads",
        "fc_net.training": "error",
        "fc_net.batchnorm.loss": "failed:missing_grads",
        "fc_net.layernorm.loss": "failed:missing_grads",
        "fc_net.dropout": "failed:missing_grads",
    },
    "raises": {
        "layers.batchnorm_forward.notebook": "error",
        "layers.batchnorm_forward.small_variance": "error",
        "layers.batchnorm_forward.notebook_test_mode": "error",
        "layers.batchnorm_forward.test_mode": "error",
        "layers.batchnorm_backward.notebook": "error",
        "layers.batchnorm_backward.small_variance": "error",
        "layers.batchnorm_backward_alt.notebook": "error",
        "layers.batchnorm_backward_alt.small_variance": "error",
        "fc_net.batchnorm.loss": "error",
        "fc_net.batchnorm.running_stats": "error",
    },
    "loop_in_function": {
        "optim.adam.notebook": "timeout",
        "optim.adam.steps": "timeout",
    },
    "loop_at_import": {
        "optim.sgd_momentum.notebook": "timeout",
        "optim.sgd_momentum.steps": "timeout",
        "optim.rmsprop.notebook": "timeout",
        "optim.rmsprop.small_gradients": "timeout",
        "optim.adam.notebook": "timeout",
        "optim.adam.steps": "timeout",
        "fc_net.training": "timeout",
    },
    "missing_optim": {
        "optim.sgd_momentum.notebook": "error",
        "optim.sgd_momentum.steps": "error",
        "optim.rmsprop.notebook": "error",
        "optim.rmsprop.small_gradients": "error",
        "optim.adam.notebook": "error",
        "optim.adam.steps": "error",
        "fc_net.training": "error",
    },
}


def grade(folder: Path, executor: Executor, seed: int = SEED) -> Report:
    return grade_submission(load_submission(folder), ASSIGNMENT, seed=seed, executor=executor)


@pytest.fixture(scope="module")
def docker_executor(docker_client: Any, sandbox_image: str) -> Executor:
    """The production sandbox: verdicts are asserted through the real Docker executor."""
    return DockerExecutor(docker_client, sandbox_image)


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory, docker_executor: Executor) -> Callable[[str], Report]:
    """Grade a fixture submission once per module, by name."""
    root = tmp_path_factory.mktemp("fixtures")
    reports: dict[str, Report] = {}

    def grade_fixture(name: str) -> Report:
        if name not in reports:
            reports[name] = grade(buggy.materialize(name, root), docker_executor)
        return reports[name]

    return grade_fixture


def verdicts(report: Report) -> dict[str, str]:
    return {
        c.id: c.status + (":" + ",".join(c.diagnosis) if c.diagnosis else "")
        for c in report.checks
        if c.status != "passed"
    }


@pytest.mark.parametrize("sandbox", ["docker", "process"])
@pytest.mark.parametrize("seed", [SEED, 20261122])
@pytest.mark.parametrize("name", sorted(CORRECT))
def test_correct_submissions_get_full_marks(
    name: str, seed: int, sandbox: str, docker_executor: Executor
) -> None:
    executor = docker_executor if sandbox == "docker" else LocalProcessExecutor()
    report = grade(CORRECT[name], executor, seed)
    assert verdicts(report) == {}
    assert report.score == report.max_score == sum(c.max_score for c in report.checks)
    assert all(c.diagnosis == [] and c.score == c.max_score for c in report.checks)


def test_every_mistake_code_has_a_buggy_fixture() -> None:
    assert set(buggy.BUGS) == set(ASSIGNMENT.mistakes)
    assert set(EXPECTED_FAILURES) >= set(buggy.BUGS)


@pytest.mark.parametrize("name", sorted(EXPECTED_FAILURES))
def test_buggy_submission_fails_exactly_where_it_should(name: str, graded: Callable[[str], Report]) -> None:
    report = graded(name)
    assert verdicts(report) == EXPECTED_FAILURES[name]
    expected_failing = set(EXPECTED_FAILURES[name])
    for check in report.checks:
        if check.id in expected_failing:
            assert check.score < check.max_score, check.id
        else:
            assert check.score == check.max_score, check.id
    if name in buggy.BUGS:
        diagnosed = {c.target for c in report.checks if name in c.diagnosis}
        assert diagnosed & set(buggy.BUG_TARGETS[name]), "the mistake is named on the function it is in"
        explained = [c.message for c in report.checks if name in c.diagnosis]
        assert all(ASSIGNMENT.mistakes[name] in message for message in explained)


def test_syntax_error_fails_everything_that_imports_layers(graded: Callable[[str], Report]) -> None:
    report = graded("syntax_error")
    for check in report.checks:
        if check.target.startswith(("layers.", "fc_net.")):
            assert check.status == "error" and check.score == 0, check.id
            assert "layers.py" in check.message and "SyntaxError" in check.message
            assert "/tmp/" not in check.message and "/scratch" not in check.message, "no paths in feedback"
        else:
            assert check.status == "passed", check.id


def test_unfinished_starter_scores_zero(graded: Callable[[str], Report]) -> None:
    report = graded("not_implemented")
    assert report.score == 0
    assert all(check.status in ("failed", "error") for check in report.checks)
    stub = next(c for c in report.checks if c.id == "layers.affine_forward.notebook")
    assert "is the function still a stub?" in stub.message


def test_a_failing_model_check_names_the_failing_layers(graded: Callable[[str], Report]) -> None:
    report = graded("bn_eps_outside_sqrt")
    model = next(c for c in report.checks if c.id == "fc_net.batchnorm.loss")
    assert "layers.batchnorm_forward" in model.message
    assert "layers.affine_forward" not in model.message.split("fail their own checks:")[-1]


def test_hidden_checks_never_show_expected_values(graded: Callable[[str], Report]) -> None:
    report = graded("bn_eps_outside_sqrt")
    hidden = next(c for c in report.checks if c.id == "layers.batchnorm_forward.small_variance")
    visible = next(c for c in report.checks if c.id == "layers.batchnorm_backward.notebook")
    assert "expected" not in hidden.message.split("likely mistake")[0]
    assert "(expected " in visible.message


def test_same_seed_same_report_and_other_seed_other_hidden_inputs(
    tmp_path: Path, docker_executor: Executor
) -> None:
    folder = buggy.materialize("bn_unbiased_variance", tmp_path)
    first, second = grade(folder, docker_executor, 11), grade(folder, docker_executor, 11)
    other = grade(folder, docker_executor, 12)
    assert first.to_dict() == second.to_dict()
    hidden = {c.id: c.errors for c in first.checks if c.visibility == "hidden"}
    hidden_other = {c.id: c.errors for c in other.checks if c.visibility == "hidden"}
    assert hidden != hidden_other
    visible = {c.id: c.errors for c in first.checks if c.visibility == "visible"}
    assert visible == {c.id: c.errors for c in other.checks if c.visibility == "visible"}


def test_hidden_inputs_depend_on_the_seed_and_visible_ones_do_not() -> None:
    first, second = ASSIGNMENT.build_checks(1), ASSIGNMENT.build_checks(2)
    for a, b in zip(first, second, strict=True):
        for pa, pb in zip(a.probes, b.probes, strict=True):
            same = all(pa.inputs[k].tobytes() == pb.inputs[k].tobytes() for k in pa.inputs)
            assert same == (a.visibility == "visible") or not pa.inputs, a.id
