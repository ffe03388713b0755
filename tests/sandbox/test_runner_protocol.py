"""The sandbox runner end to end through LocalProcessExecutor, on tiny hand-written (and hostile) students."""

import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pytest

from grader.engine.outputs import ProbeOutcome
from grader.engine.probes import Probe, build_plan
from grader.sandbox_client.executor import LocalProcessExecutor

LIMITS = {"file_bytes": 1 << 20, "memory_bytes": 0}
X = np.array([[-1.5, 0.0, 2.0], [3.0, -0.25, 0.5]])
W = np.arange(6.0).reshape(3, 2) / 10
B = np.array([0.5, -0.5])

LAYERS = b"""\
import numpy as np


def relu_forward(x):
    return np.maximum(0, x), x


def affine_forward(x, w, b):
    return x.reshape(x.shape[0], -1) @ w + b, (x, w, b)
"""

OPTIM = b"""\
import numpy as np


def sgd_momentum(w, dw, config=None):
    if config is None:
        config = {}
    config.setdefault("learning_rate", 1e-2)
    config.setdefault("momentum", 0.9)
    v = config.get("velocity", np.zeros_like(w))
    v = config["momentum"] * v - config["learning_rate"] * dw
    config["velocity"] = v
    return w + v, config
"""


def layer_probe(function: str, *, time_limit: float = 2.0, extra_args: Sequence[str] = ()) -> Probe:
    inputs = {"x": X, "w": W, "b": B} if extra_args else {"x": X}
    options = {
        "function": function,
        "extra_args": list(extra_args),
        "param": None,
        "passes": [["x", None]],
        "param_outputs": [],
    }
    return Probe(
        label=function,
        recipe="layer",
        modules=("layers",),
        inputs=inputs,
        options=options,
        calls=(f"layers.{function}",),
        time_limit=time_limit,
    )


def relu_probe(time_limit: float = 2.0) -> Probe:
    return layer_probe("relu_forward", time_limit=time_limit)


def affine_probe(time_limit: float = 2.0) -> Probe:
    return layer_probe("affine_forward", time_limit=time_limit, extra_args=("w", "b"))


def momentum_probe(time_limit: float = 2.0) -> Probe:
    w = np.arange(6.0).reshape(2, 3)
    dw = np.stack([np.full((2, 3), 1.0), np.full((2, 3), -0.5), np.arange(6.0).reshape(2, 3)])
    return Probe(
        label="sgd_momentum",
        recipe="optimizer",
        modules=("optim",),
        inputs={"w": w, "dw": dw},
        options={
            "function": "sgd_momentum",
            "config": {"learning_rate": 0.1, "momentum": 0.9},
            "state_keys": ["velocity"],
        },
        calls=("optim.sgd_momentum",),
        time_limit=time_limit,
    )


def expected_momentum() -> tuple[np.ndarray, np.ndarray]:
    """The same arithmetic as OPTIM, in the same order, so the comparison can be exact."""
    probe = momentum_probe()
    w, v = probe.inputs["w"].copy(), np.zeros((2, 3))
    steps = []
    for dw in probe.inputs["dw"]:
        v = 0.9 * v - 0.1 * dw
        w = w + v
        steps.append(w)
    return np.stack(steps), v


def run_plan(
    probes: Mapping[str, Probe],
    files: Mapping[str, bytes],
    *,
    aliases: Sequence[str] = (),
    limits: Mapping[str, int] = LIMITS,
    time_scale: float = 1.0,
) -> dict[str, ProbeOutcome]:
    """Each probe's outcome by its id (import probes are "import.<module>"), as the executor returns them."""
    plan = build_plan(
        list(probes.items()),
        package="cs231n",
        package_aliases=aliases,
        limits=limits,
        time_scale=time_scale,
    )
    outcomes = LocalProcessExecutor().run(plan, files)
    assert len(outcomes) == len(plan.probe_ids)
    return dict(zip(plan.probe_ids, outcomes, strict=True))


def assert_ok(outcome: ProbeOutcome) -> None:
    assert outcome.status == "ok", (outcome.status, outcome.message)
    assert dict(outcome.invalid) == {}


def assert_exact(got: np.ndarray, expected: np.ndarray) -> None:
    assert type(got) is np.ndarray
    assert got.dtype == expected.dtype and got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)


# ------------------------------------------------------------------------------------------- basics


def test_a_correct_relu_forward_returns_the_exact_array() -> None:
    outcomes = run_plan({"relu": relu_probe()}, {"layers.py": LAYERS})

    assert list(outcomes) == ["import.layers", "relu"]
    assert_ok(outcomes["import.layers"])
    assert_ok(outcomes["relu"])
    assert list(outcomes["relu"].arrays) == ["out"]
    assert_exact(outcomes["relu"].arrays["out"], np.maximum(0, X))
    assert 0 < outcomes["relu"].seconds < 2.0


def test_an_optimizer_carries_its_state_between_steps() -> None:
    outcomes = run_plan({"momentum": momentum_probe()}, {"optim.py": OPTIM})

    assert_ok(outcomes["momentum"])
    steps, velocity = expected_momentum()
    assert_exact(outcomes["momentum"].arrays["w"], steps)
    assert_exact(outcomes["momentum"].arrays["config_velocity"], velocity)


def test_a_module_that_was_not_submitted_is_an_error_naming_it() -> None:
    outcomes = run_plan({"relu": relu_probe(), "momentum": momentum_probe()}, {"optim.py": OPTIM})

    assert outcomes["import.layers"].status == "error"
    assert "layers.py was not submitted" in outcomes["import.layers"].message
    assert outcomes["relu"].status == "error"
    assert "layers.py was not submitted" in outcomes["relu"].message
    assert_ok(outcomes["momentum"])


# ------------------------------------------------------------------------------------------ aliases

FC_NET = """\
import numpy as np
{import_line}


class FullyConnectedNet:
    def __init__(self, **kwargs):
        import cs231n.layers
        import daseCV.layers

        out, _ = relu_forward(np.array([-1.0, 2.0]))
        same = daseCV.layers is cs231n.layers and daseCV.layers.relu_forward is relu_forward
        self.params = {{"W1": out, "same": np.array(float(same))}}
"""


@pytest.mark.parametrize(
    "import_line", ["from daseCV.layers import *", "from ..layers import *", "from cs231n.layers import *"]
)
def test_package_aliases_name_the_very_same_modules(import_line: str) -> None:
    probe = Probe(
        label="init",
        recipe="model_init",
        modules=("fc_net",),
        inputs={},
        options={"model": {}},
        calls=("fc_net.FullyConnectedNet",),
        time_limit=2.0,
    )
    files = {"layers.py": LAYERS, "fc_net.py": FC_NET.format(import_line=import_line).encode()}

    outcomes = run_plan({"init": probe}, files, aliases=["daseCV"])

    assert list(outcomes) == ["import.fc_net", "init"]
    for outcome in outcomes.values():
        assert_ok(outcome)
    assert_exact(outcomes["init"].arrays["param_W1"], np.array([0.0, 2.0]))
    assert_exact(outcomes["init"].arrays["param_same"], np.array(1.0))


# --------------------------------------------------------------------------------- failures stay local


def test_a_syntax_error_in_layers_fails_the_layer_probes_only(tmp_path: Path) -> None:
    broken = b"import numpy as np\n\n\ndef relu_forward(x)\n    return x, x\n"

    outcomes = run_plan(
        {"relu": relu_probe(), "affine": affine_probe(), "momentum": momentum_probe()},
        {"layers.py": broken, "optim.py": OPTIM},
    )

    for probe_id in ("import.layers", "relu", "affine"):
        outcome = outcomes[probe_id]
        assert outcome.status == "error", probe_id
        assert "layers.py" in outcome.message and "line 4" in outcome.message
        assert "SyntaxError" in outcome.message
        assert "/tmp" not in outcome.message and "grader-job" not in outcome.message
        assert "scratch" not in outcome.message and "pkg" not in outcome.message
    assert "layers.py could not be imported: SyntaxError" in outcomes["relu"].message
    assert_ok(outcomes["import.optim"])
    assert_ok(outcomes["momentum"])
    assert_exact(outcomes["momentum"].arrays["w"], expected_momentum()[0])


def test_an_exception_reports_the_student_frames_with_relative_paths() -> None:
    layers = (
        LAYERS + b"\n\ndef broken_forward(x):\n    return helper(x)\n\n\ndef helper(x):\n    return 1 / 0\n"
    )

    outcomes = run_plan({"broken": layer_probe("broken_forward")}, {"layers.py": layers})

    message = outcomes["broken"].message
    assert outcomes["broken"].status == "error"
    assert 'File "layers.py", line 13, in broken_forward' in message
    assert 'File "layers.py", line 17, in helper' in message
    assert message.endswith("ZeroDivisionError: division by zero")
    assert not any(part in message for part in ("sandbox/", "recipes", "child.py", "supervisor.py", "/tmp"))


@pytest.mark.slow(reason="waits out a time limit")
def test_a_function_that_loops_forever_times_out_alone() -> None:
    layers = LAYERS.replace(b"    return np.maximum(0, x), x", b"    while True:\n        pass")
    probes = {"relu": relu_probe(1.0), "relu_again": relu_probe(1.0), "affine": affine_probe(1.0)}

    outcomes = run_plan(probes, {"layers.py": layers})

    assert outcomes["relu"].status == "timeout"
    assert 1.0 <= outcomes["relu"].seconds < 2.0
    again = outcomes["relu_again"]
    assert again.status == "timeout"
    assert again.message.startswith("not run")
    assert "layers.relu_forward" in again.message
    assert again.seconds == 0.0  # skipped: it did not spend a second time limit
    assert_ok(outcomes["affine"])
    assert_exact(outcomes["affine"].arrays["out"], X @ W + B)


@pytest.mark.slow(reason="waits out a time limit")
def test_an_endless_loop_at_import_fails_the_probes_of_that_module_only() -> None:
    optim = b"while True:\n    pass\n" + OPTIM
    probes = {"momentum": momentum_probe(5.0), "relu": relu_probe(5.0)}

    outcomes = run_plan(probes, {"layers.py": LAYERS, "optim.py": optim}, time_scale=0.3)

    assert outcomes["import.optim"].status == "timeout"
    assert outcomes["momentum"].status == "timeout"
    assert "optim.py could not be imported" in outcomes["momentum"].message
    assert_ok(outcomes["import.layers"])
    assert_ok(outcomes["relu"])
    assert_exact(outcomes["relu"].arrays["out"], np.maximum(0, X))


@pytest.mark.parametrize(
    "body, status, in_message",
    [
        ("os._exit(0)", "crashed", "exited (code 0)"),
        ("os._exit(3)", "crashed", "exited (code 3)"),
        ("os.kill(os.getpid(), signal.SIGSEGV)", "crashed", "SIGSEGV"),
        ("sys.exit(0)", "error", "SystemExit"),
        ("raise KeyboardInterrupt", "error", "KeyboardInterrupt"),
        ("raise MemoryError", "memory_limit", "MemoryError"),
    ],
)
def test_how_a_probe_ends_is_reported(body: str, status: str, in_message: str) -> None:
    layers = (
        b"import os\nimport signal\nimport sys\n" + LAYERS + f"\n\ndef bad_forward(x):\n    {body}\n".encode()
    )

    outcomes = run_plan({"bad": layer_probe("bad_forward"), "relu": relu_probe()}, {"layers.py": layers})

    assert outcomes["bad"].status == status
    assert in_message in outcomes["bad"].message
    assert_ok(outcomes["relu"])


@pytest.mark.parametrize("memory_bytes, status", [(512 << 20, "memory_limit"), (0, "ok")])
def test_the_memory_limit_applies_to_the_probe(memory_bytes: int, status: str) -> None:
    # 1 GiB of address space, never touched: fine without a limit (the control), refused under 512 MiB.
    layers = LAYERS + b"\n\ndef greedy_forward(x):\n    return np.array(float(np.empty(1 << 27).size)), x\n"
    limits = {"file_bytes": 1 << 20, "memory_bytes": memory_bytes}

    outcomes = run_plan(
        {"greedy": layer_probe("greedy_forward"), "relu": relu_probe()}, {"layers.py": layers}, limits=limits
    )

    assert outcomes["greedy"].status == status, outcomes["greedy"].message
    if status == "ok":
        assert_exact(outcomes["greedy"].arrays["out"], np.array(float(1 << 27)))
    assert_ok(outcomes["relu"])


def test_killing_the_runner_crashes_that_probe_and_the_rest_still_run() -> None:
    layers = (
        b"import os\nimport signal\n"
        + LAYERS
        + b"\n\ndef killer_forward(x):\n    os.kill(os.getppid(), signal.SIGKILL)\n    return x, x\n"
    )
    probes = {"relu": relu_probe(), "killer": layer_probe("killer_forward"), "affine": affine_probe()}
    probes["relu_after"] = relu_probe()

    outcomes = run_plan(probes, {"layers.py": layers})

    assert_ok(outcomes["relu"])
    assert outcomes["killer"].status == "crashed"
    assert_ok(outcomes["affine"])
    assert_exact(outcomes["affine"].arrays["out"], X @ W + B)
    assert_ok(outcomes["relu_after"])
    assert_exact(outcomes["relu_after"].arrays["out"], np.maximum(0, X))


# ------------------------------------------------------------------------------------------- output


def test_printing_fifty_megabytes_is_an_output_limit() -> None:
    layers = LAYERS + b'\n\ndef chatty_forward(x):\n    print("x" * 50_000_000)\n    return x, x\n'

    started = time.monotonic()
    outcomes = run_plan(
        {"chatty": layer_probe("chatty_forward"), "relu": relu_probe()}, {"layers.py": layers}
    )

    assert outcomes["chatty"].status == "output_limit"
    assert len(outcomes["chatty"].stdout) <= 2003
    assert set(outcomes["chatty"].stdout) <= {"x", "."}
    assert_ok(outcomes["relu"])
    assert time.monotonic() - started < 10.0


def test_printed_text_comes_back_without_escapes_or_nuls() -> None:
    layers = LAYERS + (
        b"\n\ndef loud_forward(x):\n"
        b'    print("\\x1b[31mred\\x00\\x07\\x1b[0m done")\n'
        b"    return np.maximum(0, x), x\n"
    )

    outcomes = run_plan({"loud": layer_probe("loud_forward")}, {"layers.py": layers})

    assert_ok(outcomes["loud"])
    assert outcomes["loud"].stdout == "red done\n"
    assert "\x1b" not in outcomes["loud"].stdout and "\x00" not in outcomes["loud"].stdout


# ------------------------------------------------------------------------------- what comes back


def test_values_that_are_not_numeric_arrays_are_reported_invalid() -> None:
    layers = LAYERS + (
        b"\n\ndef none_forward(x):\n    return None, x\n"
        b"\n\ndef list_forward(x):\n    return x.tolist(), x\n"
        b"\n\ndef object_forward(x):\n    return np.array([1.0, 'a', None], dtype=object), x\n"
    )
    probes = {name: layer_probe(f"{name}_forward") for name in ("none", "list", "object")}

    outcomes = run_plan(probes, {"layers.py": layers})

    reasons = {name: outcomes[name].invalid.get("out", "") for name in probes}
    for name in probes:
        assert outcomes[name].status == "ok"
        assert dict(outcomes[name].arrays) == {}
    assert "None" in reasons["none"]
    assert "list" in reasons["list"]
    assert "object" in reasons["object"]


def test_an_ndarray_subclass_comes_back_as_a_plain_array() -> None:
    layers = (
        LAYERS
        + b"""

class Rigged(np.ndarray):
    def __eq__(self, other):
        return True

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        return np.zeros(3)

    def __array_finalize__(self, obj):
        self.note = "rigged"


def rigged_forward(x):
    return np.maximum(0, x).view(Rigged), x
"""
    )

    outcomes = run_plan({"rigged": layer_probe("rigged_forward")}, {"layers.py": layers})

    assert_ok(outcomes["rigged"])
    assert_exact(outcomes["rigged"].arrays["out"], np.maximum(0, X))


# ------------------------------------------------------------------------------------ environment


def test_the_runner_environment_is_an_allowlist(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRADER_CANARY_SECRET", "s3cr3t")
    layers = LAYERS + (
        b"\n\nimport os\n"
        b"\n\ndef env_forward(x):\n"
        b'    return np.array(float(len(os.environ.get("GRADER_CANARY_SECRET", "")))), x\n'
    )

    outcomes = run_plan({"env": layer_probe("env_forward")}, {"layers.py": layers})

    assert_ok(outcomes["env"])
    assert_exact(outcomes["env"].arrays["out"], np.array(0.0))


def test_student_code_does_not_run_in_the_services_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = tmp_path / "service"
    service.mkdir()
    monkeypatch.chdir(service)
    layers = LAYERS + (
        b"\n\nimport os\n"
        b"\n\ndef cwd_forward(x):\n"
        b'    with open("planted.txt", "w") as handle:\n'
        b'        handle.write("hi")\n'
        + f"    return np.array(float(os.getcwd() == {str(service)!r})), x\n".encode()
    )

    outcomes = run_plan({"cwd": layer_probe("cwd_forward")}, {"layers.py": layers})

    assert_ok(outcomes["cwd"])
    assert_exact(outcomes["cwd"].arrays["out"], np.array(0.0))
    assert list(service.iterdir()) == []


def test_files_planted_for_a_later_probe_are_replaced_by_its_real_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    victim = tmp_path / "victim.txt"
    victim.write_text("original")
    # The planting probe is index 1 (after import.layers); the victim of the forgery is index 2.
    layers = LAYERS + (
        b"""

import io
import json
import os
from pathlib import Path


def planter_forward(x):
    fake = io.BytesIO()
    np.savez(fake, out=np.full(x.shape, 42.0))
    header = json.dumps({"status": "ok", "message": "", "invalid": {}}).encode()
    here = Path(__file__).resolve().parent
    folders = {Path(os.getcwd())}
    while True:
        folders.add(here)
        folders.update(child for child in here.iterdir() if child.is_dir())
        if here.name.startswith("grader-job-") or here == here.parent:
            break
        here = here.parent
    planted_in_out = 0.0
    for folder in folders:
        try:
            (folder / "p2.json").write_bytes(header)
            (folder / "p2.npz").symlink_to(VICTIM)
        except OSError:
            continue
        planted_in_out += folder.name == "out" and folder.parent.name.startswith("grader-job-")
    return np.array(planted_in_out), x
"""
        + f"\n\nVICTIM = {str(victim)!r}\n".encode()
    )
    probes = {"planter": layer_probe("planter_forward"), "relu": relu_probe()}

    outcomes = run_plan(probes, {"layers.py": layers})

    assert list(outcomes) == ["import.layers", "planter", "relu"]
    assert_ok(outcomes["planter"])
    assert_exact(outcomes["planter"].arrays["out"], np.array(1.0))  # the forgery reached the out folder
    assert_ok(outcomes["relu"])
    assert_exact(outcomes["relu"].arrays["out"], np.maximum(0, X))
    assert victim.read_text() == "original"


# ------------------------------------------------------------------------------------ infrastructure


def test_a_runner_that_fails_before_its_job_is_ready_is_the_sandbox_failing() -> None:
    """No student code ran: the grader must say the sandbox could not run, never grade the submission."""
    from grader.engine.executor import SandboxUnavailable

    plan = build_plan([("relu", relu_probe())], package="cs231n", package_aliases=(), limits=LIMITS)
    with pytest.raises(SandboxUnavailable, match="before running any probe"):
        LocalProcessExecutor(python="/bin/false").run(plan, {"layers.py": LAYERS})
