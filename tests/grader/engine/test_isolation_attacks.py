"""Attacks on "a bug costs points once": wrong code that the isolation rules must not reward.

A backward pass is credited when it is the exact gradient of the student's own forward, and a model is
judged against the course's architecture built from the student's own layers when those fail; each test
here is code that would gain points if those rules were loose, and asserts that it does not.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.assignments import get_assignment
from grader.engine.grading import grade_submission
from grader.engine.report import CheckReport, Report
from grader.intake.packages import package_names
from grader.intake.uploads import load_submission
from grader.sandbox_client.executor import LocalProcessExecutor
from tests.fixtures.submissions import buggy
from tests.fixtures.submissions.buggy import Edit

ASSIGNMENT = get_assignment("cs231n-a2-fc")
FILES = ("layers.py", "optim.py", "fc_net.py")


def graded(tmp_path: Path, *edits: Edit, seed: int = 7) -> Report:
    texts = {name: (buggy.CORRECT_COURSE / name).read_text() for name in FILES}
    texts = buggy.apply_edits(texts, tuple(edits))
    for name, text in texts.items():
        (tmp_path / name).write_text(text)
    submission = load_submission(tmp_path)
    return grade_submission(submission, ASSIGNMENT, seed=seed, executor=LocalProcessExecutor())


def check(report: Report, check_id: str) -> CheckReport:
    return next(c for c in report.checks if c.id == check_id)


def lost(report: Report, prefix: str) -> float:
    return sum(c.max_score - c.score for c in report.checks if c.id.startswith(prefix))


ZERO_AFFINE = Edit("layers.py", "out = x_row.dot(w) + b", "out = np.zeros((x.shape[0], w.shape[1]))")
ZERO_AFFINE_BACKWARD = (
    Edit("layers.py", "dx = dout.dot(w.T).reshape(x.shape)", "dx = np.zeros(x.shape)"),
    Edit("layers.py", "dw = x.reshape(N, -1).T.dot(dout)", "dw = np.zeros(w.shape)"),
    Edit("layers.py", "db = np.sum(dout, axis=0)", "db = np.zeros(b.shape)"),
)


def test_a_constant_forward_does_not_excuse_a_zero_backward(tmp_path: Path) -> None:
    report = graded(tmp_path, ZERO_AFFINE, *ZERO_AFFINE_BACKWARD)
    for check_id in ("layers.affine_backward.notebook", "layers.affine_backward.multidim"):
        assert check(report, check_id).score == 0, check(report, check_id).message
        assert "exact gradient" not in check(report, check_id).message


def test_a_nearly_right_backward_of_a_right_forward_gets_no_credit(tmp_path: Path) -> None:
    report = graded(
        tmp_path,
        Edit(
            "layers.py",
            "dx = dout.dot(w.T).reshape(x.shape)",
            "dx = dout.dot(w.T).reshape(x.shape) * (1 + 4e-6)",
        ),
    )
    backward = check(report, "layers.affine_backward.multidim")
    assert backward.score < backward.max_score and "exact gradient" not in backward.message


def test_a_backward_wrong_in_one_entry_only_is_caught(tmp_path: Path) -> None:
    report = graded(
        tmp_path,
        Edit("layers.py", "    dx = dout * (x > 0)\n", "    dx = dout * (x > 0)\n    dx.flat[-1] += 1.0\n"),
    )
    assert check(report, "layers.relu_backward.random").score == 0


def test_a_nan_model_gains_nothing_from_nan_layers(tmp_path: Path) -> None:
    nan_loss = Edit(
        "layers.py",
        "loss = -np.sum(np.log(probs[np.arange(N), y])) / N",
        "loss = np.nan",
    )
    report = graded(tmp_path, nan_loss)
    for check_id in ("fc_net.initial_loss.notebook", "fc_net.loss.regularized", "fc_net.batchnorm.loss"):
        assert check(report, check_id).score < check(report, check_id).max_score, check_id


def test_layers_that_return_zeros_do_not_hide_a_model_bug(tmp_path: Path) -> None:
    model_bug = buggy.BUGS["model_ignores_normalization"]
    (tmp_path / "alone").mkdir()
    (tmp_path / "both").mkdir()
    alone = graded(tmp_path / "alone", *model_bug)
    both = graded(tmp_path / "both", *model_bug, ZERO_AFFINE)
    for check_id in ("fc_net.batchnorm.loss", "fc_net.batchnorm.running_stats", "fc_net.layernorm.loss"):
        judged = check(both, check_id)
        # Judged against the reference only (whose hidden biases' gradients are exactly zero under batch
        # norm, so zeros there agree with it by themselves): the zeros' composition tells nothing.
        assert "built from your own layer functions" not in judged.message, judged.message
        assert judged.score < judged.max_score and check(alone, check_id).score < judged.max_score


def test_a_model_cannot_reach_into_the_composition_of_its_layers(tmp_path: Path) -> None:
    """layers.py imports fc_net, whose import replaces the grader's composition by one that agrees with
    a made-up model; a layer is off a little so that the composition would be used."""
    forged = (
        "\n\nimport sys as _sys\n"
        "_recipes = _sys.modules.get('sandbox.recipes')\n"
        "if _recipes is not None and hasattr(_recipes, 'ComposedNet'):\n"
        "    def _forged_loss(self, X, y):\n"
        "        return 1.0, {name: 0.5 * value for name, value in self.params.items()}\n"
        "    _recipes.ComposedNet.loss = _forged_loss\n"
    )
    zero_model = Edit(
        "fc_net.py",
        "        X = X.astype(self.dtype)\n",
        "        X = X.astype(self.dtype)\n"
        "        if y is not None:\n"
        "            return 1.0, {name: 0.5 * value for name, value in self.params.items()}\n",
    )
    report = graded(
        tmp_path,
        Edit("layers.py", "out = np.maximum(0, x)", "out = np.maximum(0, x) * (1 + 1e-3)"),
        Edit(
            "layers.py",
            "def affine_forward(x, w, b):",
            "from .classifiers import fc_net as _fc_net\n\n\ndef affine_forward(x, w, b):",
        ),
        Edit("fc_net.py", "from ..layer_utils import *\n", "from ..layer_utils import *\n" + forged),
        zero_model,
    )
    for check_id in ("fc_net.initial_loss.notebook", "fc_net.loss.regularized", "fc_net.batchnorm.loss"):
        judged = check(report, check_id)
        assert "built from your own layer functions" not in judged.message, judged.message
        assert judged.score < 0.5 * judged.max_score, check_id


def test_a_model_that_leaves_out_some_gradients_is_told_so_not_another_mistake(tmp_path: Path) -> None:
    report = graded(
        tmp_path,
        Edit(
            "fc_net.py",
            '                grads["gamma%d" % (i + 1)], grads["beta%d" % (i + 1)] = dgamma, dbeta\n',
            "",
        ),
    )
    loss = check(report, "fc_net.batchnorm.loss")
    assert loss.diagnosis == ["missing_grads"]


def test_a_dropout_that_keeps_everything_is_not_called_a_shared_mask(tmp_path: Path) -> None:
    report = graded(tmp_path, Edit("layers.py", "        out = x * mask\n", "        out = x\n"))
    forward = check(report, "layers.dropout_forward.notebook")
    assert forward.score < forward.max_score and "dropout_mask_shared" not in forward.diagnosis


def test_a_gradient_with_a_trailing_axis_of_one_is_not_the_same(tmp_path: Path) -> None:
    report = graded(
        tmp_path, Edit("layers.py", "db = np.sum(dout, axis=0)", "db = np.sum(dout, axis=0)[:, None]")
    )
    backward = check(report, "layers.affine_backward.notebook")
    assert backward.score < backward.max_score and "compared by value" not in backward.message


@pytest.mark.parametrize(
    "source, expected",
    [
        (b"import torch.optim\nfrom keras.layers import Dense\n", "cs231n"),
        (b"from __main__.layers import *\n", "cs231n"),
        (b"from json.layers import *\n", "cs231n"),
        (b"from cs682.layers import *\nfrom cs682.layer_utils import *\n", "cs682"),
        (b"from daseCV import fast_layers\n", "daseCV"),
    ],
)
def test_the_package_name_comes_from_course_imports_only(source: bytes, expected: str) -> None:
    names = package_names(
        {"fc_net.py": source}, {"fc_net.py": "fc_net.py"}, default="cs231n", known_aliases=()
    )
    assert names.package == expected
    assert "torch" not in names.aliases and "keras" not in names.aliases and "__main__" not in names.aliases
