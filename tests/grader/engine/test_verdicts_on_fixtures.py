"""Exact verdicts on the fixture submissions: correct code gets full marks, each bug loses points exactly
where it should and carries its mistake code, broken code fails with the right status."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from grader.assignments import get_assignment
from grader.engine.executor import Executor
from grader.engine.grading import grade_submission
from grader.engine.report import Report
from grader.intake.uploads import load_submission
from grader.sandbox_client.docker_executor import DockerExecutor
from grader.sandbox_client.executor import LocalProcessExecutor
from grader.settings import Settings
from tests.fixtures.submissions import buggy

ASSIGNMENT = get_assignment("cs231n-a2-fc")
SEED = 7
CORRECT = {
    "correct_course": buggy.CORRECT_COURSE,
    "correct_alt": buggy.CORRECT_ALT,
    "correct_dasecv_zip": buggy.CORRECT_DASECV_ZIP,
}

# Every check that does not pass, with its status and diagnosis ("status" or "status:code,code").
# Checks not listed must pass with full marks.
EXPECTED_FAILURES: dict[str, dict[str, str]] = {
    "bn_eps_outside_sqrt": {
        "layers.batchnorm_forward.small_variance": "failed:bn_eps_outside_sqrt",
        "layers.batchnorm_forward.test_mode": "failed:bn_eps_outside_sqrt",
    },
    "bn_running_average_swapped": {
        "layers.batchnorm_forward.notebook": "failed:bn_running_average_swapped",
        "layers.batchnorm_forward.small_variance": "failed:bn_running_average_swapped",
        "layers.batchnorm_forward.notebook_test_mode": "failed:bn_running_average_swapped",
        "layers.batchnorm_forward.test_mode": "failed:bn_running_average_swapped",
    },
    "bn_test_uses_batch_stats": {
        "layers.batchnorm_forward.notebook_test_mode": "failed:bn_test_uses_batch_stats",
        "layers.batchnorm_forward.test_mode": "failed:bn_test_uses_batch_stats",
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
    },
    "bn_running_stats_not_stored": {
        "layers.batchnorm_forward.notebook": "failed:bn_running_stats_not_stored",
        "layers.batchnorm_forward.small_variance": "failed:bn_running_stats_not_stored",
        "layers.batchnorm_forward.notebook_test_mode": "failed:bn_running_stats_not_stored",
        "layers.batchnorm_forward.test_mode": "failed:bn_running_stats_not_stored",
    },
    "ln_normalizes_over_batch": {
        "layers.layernorm_forward.notebook": "failed:ln_normalizes_over_batch",
        "layers.layernorm_forward.small_variance": "failed:ln_normalizes_over_batch",
        "layers.layernorm_backward.notebook": "failed",
        "layers.layernorm_backward.small_variance": "failed",
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
    },
    "dropout_backward_ignores_mask": {
        "layers.dropout_backward.notebook": "failed:dropout_backward_ignores_mask",
        "layers.dropout_backward.random": "failed:dropout_backward_ignores_mask",
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
    "l2_skips_last_layer": {
        "fc_net.initial_loss.notebook": "failed:l2_skips_last_layer",
        "fc_net.loss.regularized": "failed:l2_skips_last_layer",
        "fc_net.batchnorm.loss": "failed:l2_skips_last_layer",
        "fc_net.layernorm.loss": "failed:l2_skips_last_layer",
    },
    "l2_regularizes_bias__hidden_layers": {
        "fc_net.loss.regularized": "failed:l2_regularizes_bias",
        "fc_net.batchnorm.loss": "failed:l2_regularizes_bias",
        "fc_net.layernorm.loss": "failed:l2_regularizes_bias",
    },
    "bn_test_mode_skips_affine": {
        "layers.batchnorm_forward.test_mode": "failed:bn_test_mode_skips_affine",
    },
    "model_ignores_normalization": {
        "fc_net.batchnorm.loss": "failed:model_ignores_normalization",
        "fc_net.batchnorm.running_stats": "failed:model_ignores_normalization",
        "fc_net.layernorm.loss": "failed:model_ignores_normalization",
    },
    "adam_eps_inside_sqrt": {
        "optim.adam.steps": "failed:adam_eps_inside_sqrt",
    },
    "dropout_mask_shared": {
        "layers.dropout_forward.notebook": "failed:dropout_mask_shared",
        "layers.dropout_forward.random": "failed:dropout_mask_shared",
        "layers.dropout_backward.notebook": "failed",
    },
    "dropout_mask_shared__rows": {
        "layers.dropout_forward.notebook": "failed:dropout_mask_shared",
        "layers.dropout_forward.random": "failed:dropout_mask_shared",
        "layers.dropout_backward.notebook": "failed",
    },
    "relu_backward_masks_dout": {
        "layers.relu_backward.notebook": "failed:relu_backward_masks_dout",
        "layers.relu_backward.random": "failed:relu_backward_masks_dout",
        "fc_net.training": "failed",
    },
    "softmax_not_stable__log_sum_exp": {
        "layers.softmax_loss.large_scores": "failed:softmax_not_stable",
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
    return DockerExecutor(docker_client, sandbox_image, Settings().container_limits())


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
    assert {buggy.mistake_code(name) for name in buggy.BUGS} == set(ASSIGNMENT.mistakes)
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
        code = buggy.mistake_code(name)
        diagnosed = {c.target for c in report.checks if code in c.diagnosis}
        assert diagnosed & set(buggy.BUG_TARGETS[name]), "the mistake is named on the function it is in"
        explained = [c.message for c in report.checks if code in c.diagnosis]
        assert all(ASSIGNMENT.mistakes[code] in message for message in explained)


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


def test_a_failing_integration_check_names_the_failing_layers(graded: Callable[[str], Report]) -> None:
    report = graded("relu_backward_masks_dout")
    training = next(c for c in report.checks if c.id == "fc_net.training")
    assert training.status == "failed"
    assert "fail their own checks: layers.relu_backward" in training.message
    assert "layers.affine_forward" not in training.message.split("fail their own checks:")[-1]


def test_hidden_checks_never_show_expected_values(graded: Callable[[str], Report]) -> None:
    report = graded("bn_unbiased_variance")
    hidden = next(c for c in report.checks if c.id == "layers.batchnorm_forward.small_variance")
    visible = next(c for c in report.checks if c.id == "layers.batchnorm_forward.notebook")
    assert "expected" not in hidden.message.split("likely mistake")[0]
    assert "(expected " in visible.message


# A bug costs points once, where it lives.

INTEGRATION_CHECKS = frozenset({"fc_net.training"})


def allowed_targets(bug_targets: tuple[str, ...]) -> set[str]:
    """The functions a bug may cost points in: its own, and the backward pass its forward's cache feeds."""
    allowed = set(bug_targets)
    for target in bug_targets:
        if target.endswith("_forward"):
            stem = target[: -len("_forward")]
            allowed |= {f"{stem}_backward", f"{stem}_backward_alt"}
    return allowed


@pytest.mark.parametrize("name", sorted(buggy.BUGS))
def test_a_single_bug_costs_points_only_where_it_lives(name: str, graded: Callable[[str], Report]) -> None:
    report = graded(name)
    losing = [c for c in report.checks if c.score < c.max_score]
    assert losing, "the bug costs points somewhere"
    allowed = allowed_targets(buggy.BUG_TARGETS[name])
    for check in losing:
        assert check.target in allowed or check.id in INTEGRATION_CHECKS, (check.id, check.target)
        if check.id in INTEGRATION_CHECKS and check.target not in allowed:
            assert "fail their own checks: " in check.message, "an integration check names the culprit"


def test_a_model_on_wrong_layers_is_judged_against_those_layers(graded: Callable[[str], Report]) -> None:
    report = graded("relu_backward_masks_dout")
    loss = next(c for c in report.checks if c.id == "fc_net.loss.regularized")
    assert loss.status == "passed" and loss.score == loss.max_score
    assert "built from your own layer functions" in loss.message
    assert "layers.relu_backward" in loss.message


def test_a_backward_pass_exact_for_its_own_wrong_forward_keeps_its_points(
    graded: Callable[[str], Report],
) -> None:
    report = graded("bn_eps_outside_sqrt")
    forward = next(c for c in report.checks if c.id == "layers.batchnorm_forward.small_variance")
    backward = next(c for c in report.checks if c.id == "layers.batchnorm_backward.small_variance")
    assert forward.score < forward.max_score
    assert backward.status == "passed" and backward.score == backward.max_score
    assert "exact gradient of your own batchnorm_forward" in backward.message


def test_a_backward_pass_wrong_for_its_own_forward_still_fails(graded: Callable[[str], Report]) -> None:
    report = graded("relu_backward_masks_dout")
    backward = next(c for c in report.checks if c.id == "layers.relu_backward.notebook")
    assert backward.score == 0 and "exact gradient" not in backward.message


# Feedback says what happened, once.


def test_a_mistake_made_in_some_places_only_is_named_with_where(graded: Callable[[str], Report]) -> None:
    report = graded("l2_regularizes_bias__hidden_layers")
    check = next(c for c in report.checks if c.id == "fc_net.loss.regularized")
    assert check.diagnosis == ["l2_regularizes_bias"]
    assert "likely mistake [l2_regularizes_bias] (in grad_b2, grad_b1 only)" in check.message


def test_outputs_with_extra_singleton_axes_get_full_credit_and_a_note(
    graded: Callable[[str], Report],
) -> None:
    report = graded("running_stats_keep_dims")
    assert report.score == report.max_score
    noted = next(c for c in report.checks if c.id == "layers.batchnorm_forward.notebook")
    assert "running_mean, running_var: shape (1, 3), where the docstring asks for (3,)" in noted.message


def cause_of(line: str) -> str:
    """A message line without the output it names: "grad_W1 missing" and "grad_b1 missing" share one."""
    return line.split(" ", 1)[-1] if line and not line.startswith(" ") else line


@pytest.mark.parametrize("name", buggy.ALL_NAMES)
def test_no_message_says_the_same_cause_twice(name: str, graded: Callable[[str], Report]) -> None:
    for check in graded(name).checks:
        causes = [cause_of(line) for line in check.message.splitlines() if line.strip()]
        repeated = {cause for cause in causes if causes.count(cause) > 1}
        assert not repeated, (check.id, repeated, check.message)


def test_a_module_that_fails_to_import_says_so_in_one_line_and_nothing_else(
    graded: Callable[[str], Report],
) -> None:
    report = graded("missing_optim")
    training = next(c for c in report.checks if c.id == "fc_net.training")
    first, *rest = training.message.splitlines()
    assert first.startswith("exception: optim.py could not be imported"), first
    assert "NaN" not in training.message and "classifies" not in training.message
    assert not [line for line in rest if not line.startswith(" ")], training.message


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


@pytest.mark.parametrize(
    "name, cascading_check",
    [
        ("relu_backward_masks_dout", "fc_net.loss.regularized"),
        pytest.param(  # two gradings each: this case in the full run only
            "bn_eps_outside_sqrt", "layers.batchnorm_backward.small_variance", marks=pytest.mark.slow
        ),
    ],
)
def test_cascading_is_an_assignment_option(name: str, cascading_check: str, tmp_path: Path) -> None:
    """With cascading, the same bug costs points again in the checks that rely on its function."""
    folder = buggy.materialize(name, tmp_path)
    isolated = grade(folder, LocalProcessExecutor())
    cascading = grade_submission(
        load_submission(folder),
        dataclasses.replace(ASSIGNMENT, cascading=True),
        seed=SEED,
        executor=LocalProcessExecutor(),
    )
    by_id = {c.id: c for c in cascading.checks}
    assert next(c for c in isolated.checks if c.id == cascading_check).status == "passed"
    assert by_id[cascading_check].score < by_id[cascading_check].max_score
    assert cascading.score < isolated.score


def test_the_own_layers_note_appears_only_where_they_were_used(graded: Callable[[str], Report]) -> None:
    dropout = next(c for c in graded("relu_backward_masks_dout").checks if c.id == "fc_net.dropout")
    assert dropout.status == "passed" and "built from your own layer functions" in dropout.message
    # softmax_loss fails its own checks on huge scores only: the dropout model agrees with its own loss.
    unneeded = next(c for c in graded("softmax_not_stable").checks if c.id == "fc_net.dropout")
    assert unneeded.status == "passed" and "built from your own layer functions" not in unneeded.message
