"""Probe servers (sandbox/runner/: probe_servers.py, child.py, snapshot.py): a process imports the
student's modules once and runs probes one after
another, and is replaced as soon as a probe leaves it different from how it found it.

These tests show that the shortcut is taken, that nothing a probe does to its process reaches a later
probe (and, with the check weakened, that it would), and that grading gives the same reports with and
without servers.
"""

from __future__ import annotations

import gc
import shutil
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from grader.assignments import get_assignment
from grader.engine.grading import grade_submission
from grader.engine.outputs import ProbeOutcome, read_probe_outcome
from grader.engine.probes import Probe, build_plan
from grader.intake.uploads import load_submission
from grader.sandbox_client import executor as executor_module
from grader.sandbox_client.executor import RUNNER, LocalProcessExecutor, write_job
from sandbox.runner import runner as runner_module
from sandbox.runner import snapshot
from sandbox.runner.emit import FileEmitter
from tests.fixtures.submissions import buggy
from tests.sandbox.test_runner_protocol import (
    LAYERS,
    LIMITS,
    OPTIM,
    X,
    assert_exact,
    assert_ok,
    layer_probe,
    momentum_probe,
    relu_probe,
)

# A student module whose dirty_forward makes one change to its process ({change}) and whose witness_forward
# reports what it sees of that change ({observation}); both return [observation, pid].
STATEFUL = """\
import builtins
import os
import signal
import sys
import threading
import time
import warnings

import numpy as np

counter = 0
seen = []
settings = {{"eps": 1e-5}}
running = np.zeros(3)
nested = {{"items": []}}
big = np.zeros(1 << 14)


class Layer:
    scale = 1.0


class Liar:  # calls like `real`, and claims to equal anything

    def __init__(self, real):
        self.real = real

    def __eq__(self, other):
        return True

    __hash__ = object.__hash__

    def __call__(self, *args, **kwargs):
        return self.real(*args, **kwargs)


def remember(value, memo=[]):
    memo.append(value)


def current_umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def children():
    with open(f"/proc/self/task/{{os.getpid()}}/children") as listing:
        return len(listing.read().split())


def leave_a_child():
    if os.fork() == 0:
        os.closerange(3, 1 << 16)  # nothing of the probe's: its result pipe is not held open
        time.sleep(60)
        os._exit(0)


def pid_forward(x):
    return np.array(float(os.getpid())), x


def observe():
    return float({observation})


def witness_forward(x):
    return np.array([observe(), float(os.getpid())]), x


def dirty_forward(x):
    global counter
    {change}
    return np.array([observe(), float(os.getpid())]), x
"""

# What a probe may do to its process, as (change, observation of it).
CHANGES = {
    "module global rebound": ("counter += 1", "counter"),
    "module list appended to": ("seen.append(1)", "len(seen)"),
    "numpy function replaced": ("np.maximum = np.minimum", "np.maximum(0.0, 1.0)"),
    "numpy check faked": ("np.allclose = lambda *a, **k: True", "np.allclose(0.0, 1.0)"),
    "builtin replaced": ("builtins.abs = lambda v: 7", "abs(-1)"),
    "class attribute set": ("Layer.scale = 2.0", "Layer.scale"),
    "signal handler installed": (
        "signal.signal(signal.SIGUSR1, lambda *a: None)",
        "signal.getsignal(signal.SIGUSR1) is signal.SIG_DFL",
    ),
    "interval timer armed": (
        "signal.setitimer(signal.ITIMER_REAL, 100)",
        "signal.getitimer(signal.ITIMER_REAL)[0] > 0",
    ),
    "working directory changed": ("os.chdir('/')", "os.getcwd() == '/'"),
    "environment variable set": ("os.environ['X'] = '1'", "'X' in os.environ"),
    "numpy errors raise": ("np.seterr(all='raise')", "np.geterr()['divide'] == 'raise'"),
    "warnings are errors": ("warnings.simplefilter('error')", "len(warnings.filters)"),
    "recursion limit raised": (
        "sys.setrecursionlimit(sys.getrecursionlimit() + 7)",
        "sys.getrecursionlimit()",
    ),
    "import path extended": ("sys.path.append('/nowhere')", "'/nowhere' in sys.path"),
    "stdout replaced": ("sys.stdout = sys.stderr", "sys.stdout is sys.stderr"),
    "daemon thread left running": (
        "threading.Thread(target=time.sleep, args=(60,), daemon=True).start()",
        "threading.active_count()",
    ),
    "descriptor left open": ("os.open(os.devnull, os.O_RDONLY)", "len(os.listdir('/proc/self/fd'))"),
    # The same name, the same size of dict: only the server's memory check sees this one (80 MiB kept).
    "memory left allocated": ("settings['eps'] = np.ones(10 << 20)", "np.size(settings['eps'])"),
    "module dict value changed": ("settings['eps'] = 1.0", "settings['eps']"),
    "module array changed in place": ("running[:] = 1.0", "running.sum()"),
    "mutable default argument": ("remember(1)", "len(remember.__defaults__[0])"),
    "function attribute set": ("pid_forward.calls = 1", "getattr(pid_forward, 'calls', 0)"),
    "attribute set on sys": ("sys.stash = 1", "getattr(sys, 'stash', 0)"),
    "module added to sys.modules": ("sys.modules['stash'] = sys", "'stash' in sys.modules"),
    "umask changed": ("os.umask(0o077)", "current_umask()"),
    "child process left running": ("leave_a_child()", "children()"),
    # Objects that claim to equal anything: the check compares identities, never asks them.
    "numpy function replaced by a liar": ("np.maximum = Liar(np.minimum)", "np.maximum(0.0, 1.0)"),
    "signal handler that lies": (
        "signal.signal(signal.SIGUSR1, Liar(lambda *a: None))",
        "signal.getsignal(signal.SIGUSR1) is signal.SIG_DFL",
    ),
    "module dict value replaced by a liar": ("settings['eps'] = Liar(None)", "type(settings['eps']) is Liar"),
}

# Changes the servers do not notice: in-place changes deeper than the values of a student module's
# namespace, and large arrays (compared by shape only). Each leaks into the next probe of the server.
UNNOTICED = {
    "nested list changed in place": ("nested['items'].append(1)", "len(nested['items'])"),
    "large module array changed in place": ("big[:] = 1.0", "big.sum()"),
}


def stateful(change: str, observation: str) -> bytes:
    return STATEFUL.format(change=change, observation=observation).encode()


def run(
    probes: Mapping[str, Probe], files: Mapping[str, bytes], *, use_servers: bool = True
) -> dict[str, ProbeOutcome]:
    plan = build_plan(list(probes.items()), package="cs231n", package_aliases=(), limits=LIMITS)
    outcomes = LocalProcessExecutor(use_servers=use_servers).run(plan, files)
    return dict(zip(plan.probe_ids, outcomes, strict=True))


def seen_and_pid(outcome: ProbeOutcome) -> tuple[float, int]:
    """What a witness or dirty probe observed, and the process it ran in."""
    assert_ok(outcome)
    observed, pid = outcome.arrays["out"]
    return float(observed), int(pid)


def pid_of(outcome: ProbeOutcome) -> int:
    assert_ok(outcome)
    return int(outcome.arrays["out"])


def witness_around_dirty() -> dict[str, Probe]:
    """A witness in a new server (what a fresh process sees), the dirty probe, a witness after it, and
    one more probe, so that the second witness too has a server (one probe alone runs in a child)."""
    return {
        "before": layer_probe("witness_forward"),
        "dirty": layer_probe("dirty_forward"),
        "after": layer_probe("witness_forward"),
        "last": layer_probe("pid_forward"),
    }


# ----------------------------------------------------------------------------------------- the shortcut


@pytest.mark.parametrize("use_servers", [True, False])
def test_consecutive_probes_share_one_process_only_with_servers(use_servers: bool) -> None:
    probes = {"first": layer_probe("pid_forward"), "second": layer_probe("pid_forward")}

    outcomes = run(probes, {"layers.py": stateful("pass", "0")}, use_servers=use_servers)

    assert (pid_of(outcomes["first"]) == pid_of(outcomes["second"])) == use_servers


# --------------------------------------------------------------------------------------- isolation


@pytest.mark.slow(reason="a runner per change")
@pytest.mark.parametrize("change, observation", CHANGES.values(), ids=CHANGES.keys())
def test_a_probe_that_changes_its_process_does_not_reach_the_next(change: str, observation: str) -> None:
    outcomes = run(witness_around_dirty(), {"layers.py": stateful(change, observation)})

    fresh, server = seen_and_pid(outcomes["before"])
    dirty, dirty_pid = seen_and_pid(outcomes["dirty"])
    after, after_pid = seen_and_pid(outcomes["after"])
    assert dirty != fresh  # the change was made...
    assert dirty_pid == server  # ...in the server that ran the first witness
    assert after == fresh  # the next probe sees a fresh process...
    assert after_pid != dirty_pid  # ...because the server was replaced


@pytest.mark.parametrize(
    "change, observation",
    [
        pytest.param(
            *case, marks=pytest.mark.xfail(strict=True, reason="process_state does not look this deep")
        )
        for case in UNNOTICED.values()
    ],
    ids=UNNOTICED.keys(),
)
def test_changes_the_server_does_not_notice(change: str, observation: str) -> None:
    outcomes = run(witness_around_dirty(), {"layers.py": stateful(change, observation)})

    fresh, server = seen_and_pid(outcomes["before"])
    dirty, dirty_pid = seen_and_pid(outcomes["dirty"])
    after, _ = seen_and_pid(outcomes["after"])
    assert dirty != fresh and dirty_pid == server
    assert after == fresh


# What another module does at its import, when the probe's own modules do not import it.
OTHER_IMPORTS = {
    "numpy's RNG seeded": ("np.random.seed(5)", "np.random.rand()"),
    "numpy function replaced": ("np.maximum = np.minimum", "np.maximum(0.0, 1.0)"),
}


@pytest.mark.parametrize("change, observation", OTHER_IMPORTS.values(), ids=OTHER_IMPORTS.keys())
def test_another_modules_import_does_not_reach_a_probe_that_does_not_import_it(
    change: str, observation: str
) -> None:
    optim = f"import numpy as np\n\n{change}\n".encode() + OPTIM
    files = {"layers.py": stateful("pass", observation), "optim.py": optim}
    probes = {"witness": layer_probe("witness_forward"), "momentum": momentum_probe()}

    with_servers, without = run(probes, files), run(probes, files, use_servers=False)

    assert_ok(with_servers["momentum"])
    assert seen_and_pid(with_servers["witness"])[0] == seen_and_pid(without["witness"])[0]


def test_numpy_random_state_is_reset_for_each_probe_in_the_same_server() -> None:
    change, observation = "np.random.rand(5)", "np.random.rand()"
    outcomes = run(witness_around_dirty(), {"layers.py": stateful(change, observation)})

    fresh, server = seen_and_pid(outcomes["before"])
    after, after_pid = seen_and_pid(outcomes["after"])
    assert fresh == np.random.RandomState(0).rand()  # the seed every probe process starts from
    assert after == fresh
    assert after_pid == server  # the RNG is reset, not the server replaced


# ------------------------------------------------------------------------- the control: a weak check


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """The runner run in this process; what it yields is the module of the servers' state check."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield snapshot
    gc.unfreeze()  # run_plan freezes the heap of the process it runs in


def run_in_process(
    runner: ModuleType, probes: Mapping[str, Probe], files: Mapping[str, bytes], tmp_path: Path
) -> dict[str, ProbeOutcome]:
    plan = build_plan(list(probes.items()), package="cs231n", package_aliases=(), limits=LIMITS)
    job, out, scratch = tmp_path / "job", tmp_path / "out", tmp_path / "scratch"
    for folder in (job, out, scratch):
        folder.mkdir(parents=True)
    write_job(job, plan, files)
    runner_module.run_plan(job, scratch, runner_module.SCAFFOLD, FileEmitter(out), use_servers=True)
    outcomes: dict[str, ProbeOutcome] = {}
    for index, probe_id in enumerate(plan.probe_ids):
        outcome = read_probe_outcome(out, index)
        assert outcome is not None, probe_id
        outcomes[probe_id] = outcome
    return outcomes


@pytest.mark.slow(reason="a runner per change, twice")
@pytest.mark.parametrize("weakened", [True, False])
@pytest.mark.parametrize("change, observation", CHANGES.values(), ids=CHANGES.keys())
def test_with_the_state_check_weakened_the_witness_sees_the_change(
    runner: ModuleType,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    change: str,
    observation: str,
    weakened: bool,
) -> None:
    if weakened:
        # One thread, and nothing else: every probe leaves the process "as it found it", whatever it kept.
        weak = runner.ProcessState(plain=[1])
        monkeypatch.setattr(runner, "process_state", lambda *args, **kwargs: weak)
        monkeypatch.setattr(runner, "MAX_GROWTH_PAGES", 1 << 60)

    outcomes = run_in_process(
        runner, witness_around_dirty(), {"layers.py": stateful(change, observation)}, tmp_path
    )

    fresh, _ = seen_and_pid(outcomes["before"])
    dirty, dirty_pid = seen_and_pid(outcomes["dirty"])
    after, after_pid = seen_and_pid(outcomes["after"])
    assert (after == dirty != fresh) == weakened
    assert (after_pid == dirty_pid) == weakened


# An object that notes in a file every time the runner's side asks anything of it (compares, hashes,
# measures or tests it), put where the server's state check looks, in place of existing values: in
# numpy's namespace and in a module-level dict.
SPY = """

class Spy:
    def _seen(self, *args):
        with open({marker!r}, "a") as note:
            note.write("asked\\n")
        return NotImplemented

    __eq__ = __ne__ = _seen

    def __hash__(self):
        self._seen()
        return 1

    def __len__(self):
        self._seen()
        return 1

    def __bool__(self):
        self._seen()
        return True


def spy_forward(x):
    np.e = Spy()
    settings["eps"] = Spy()
    return np.maximum(0, x), x
"""


def spied_layers(marker: Path) -> bytes:
    return stateful("pass", "0") + SPY.format(marker=str(marker)).encode()


def spy_probes() -> dict[str, Probe]:
    return {"spy": layer_probe("spy_forward"), "relu": layer_probe("pid_forward"), "last": relu_probe()}


@pytest.mark.parametrize("weakened", [True, False])
def test_the_state_check_runs_none_of_the_students_code(
    runner: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, weakened: bool
) -> None:
    marker = tmp_path / "asked"
    if weakened:  # compare objects with ==, which lets them answer
        monkeypatch.setattr(
            runner.ProcessState,
            "same_as",
            lambda self, other: self.plain == other.plain and self.objects == other.objects,
        )
    files = {"layers.py": spied_layers(marker) + LAYERS.split(b"\n", 1)[1]}

    outcomes = run_in_process(runner, spy_probes(), files, tmp_path / "run")

    assert marker.exists() == weakened
    assert_ok(outcomes["spy"])
    assert_ok(outcomes["last"])
    assert_exact(outcomes["last"].arrays["out"], np.maximum(0, X))


# ----------------------------------------------------------------------------------- failing probes


@pytest.mark.parametrize(
    "body, status",
    [
        ("raise RuntimeError(f'in process {os.getpid()}')", "error"),
        ("raise MemoryError", "memory_limit"),
        ("os._exit(3)", "crashed"),
        ("while True:\n        pass", "timeout"),
    ],
)
def test_a_failing_probe_ends_its_server(body: str, status: str) -> None:
    layers = stateful("pass", "0").replace(b"    global counter\n    pass\n", f"    {body}\n".encode())
    probes = {
        "pid": layer_probe("pid_forward"),
        "failing": layer_probe("dirty_forward", time_limit=1.0),
        "pid_after": layer_probe("pid_forward"),
        "pid_again": layer_probe("pid_forward"),
        "relu": layer_probe("relu_forward"),
    }

    outcomes = run(probes, {"layers.py": layers + LAYERS.split(b"\n", 1)[1]})

    assert outcomes["failing"].status == status, outcomes["failing"].message
    server, replacement = pid_of(outcomes["pid"]), pid_of(outcomes["pid_after"])
    if status == "error":  # the exception names the process it was raised in
        assert outcomes["failing"].message.endswith(f"RuntimeError: in process {server}")
    assert replacement != server
    assert pid_of(outcomes["pid_again"]) == replacement  # the new server serves on
    assert_ok(outcomes["relu"])
    assert_exact(outcomes["relu"].arrays["out"], np.maximum(0, X))


# ----------------------------------------------------------------------- an import that starts a thread


def test_an_import_that_starts_a_thread_runs_each_probe_in_its_own_process() -> None:
    layers = (
        b"import threading\nimport time\n\n"
        b"threading.Thread(target=time.sleep, args=(60,), daemon=True).start()\n\n"
        + stateful("pass", "threading.active_count()")
        + LAYERS.split(b"\n", 1)[1]
    )
    probes = {f"pid{i}": layer_probe("pid_forward") for i in range(3)}
    probes["witness"] = layer_probe("witness_forward")
    probes["relu"] = layer_probe("relu_forward")

    outcomes = run(probes, {"layers.py": layers})

    assert_ok(outcomes["import.layers"])
    pids = [pid_of(outcomes[f"pid{i}"]) for i in range(3)]
    threads, witness_pid = seen_and_pid(outcomes["witness"])
    assert len({*pids, witness_pid}) == 4
    assert threads == 2  # the import's thread runs beside the probe, as in any fresh process
    assert_ok(outcomes["relu"])
    assert_exact(outcomes["relu"].arrays["out"], np.maximum(0, X))


# ------------------------------------------------------------------------------ real submissions

ASSIGNMENT = get_assignment("cs231n-a2-fc")
SUBMISSIONS = [
    "correct_course",
    "dropout_backward_ignores_mask",
    "dropout_test_mode_scaled",
    "optimizer_state_not_saved",
    "bn_running_stats_not_stored",
    "raises",
]


def report_without_sandbox(folder: Path, use_servers: bool) -> dict[str, Any]:
    executor = LocalProcessExecutor(use_servers=use_servers)
    report = grade_submission(load_submission(folder), ASSIGNMENT, seed=7, executor=executor).to_dict()
    del report["sandbox"]
    return report


@pytest.mark.slow(reason="grades six submissions twice")
@pytest.mark.parametrize("name", SUBMISSIONS)
def test_grading_with_and_without_servers_gives_the_same_report(name: str, tmp_path: Path) -> None:
    folder = buggy.CORRECT_COURSE if name == "correct_course" else buggy.materialize(name, tmp_path)

    with_servers = report_without_sandbox(folder, use_servers=True)
    without = report_without_sandbox(folder, use_servers=False)

    assert with_servers == without
    assert with_servers["score"] < with_servers["max_score"] or name == "correct_course"


def differing_probes(folder: Path, executor: LocalProcessExecutor) -> list[str]:
    """The probes of a whole grading plan whose outcome under `executor` is not bit for bit the one of a
    new process per probe (status, message, invalid outputs, printed text and every array)."""
    files = load_submission(folder).files
    probes = [(f"{c.id}/{p.label}", p) for c in ASSIGNMENT.build_checks(7) for p in c.probes]
    plan = build_plan(probes, package="cs231n", package_aliases=("daseCV",), limits=LIMITS)
    ours, theirs = executor.run(plan, files), LocalProcessExecutor(use_servers=False).run(plan, files)
    return [
        probe_id
        for probe_id, a, b in zip(plan.probe_ids, ours, theirs, strict=True)
        if (a.status, a.message, dict(a.invalid), a.stdout, list(a.arrays))
        != (b.status, b.message, dict(b.invalid), b.stdout, list(b.arrays))
        or any(a.arrays[key].tobytes() != b.arrays[key].tobytes() for key in a.arrays)
    ]


@pytest.mark.slow(reason="two submissions' probes, twice")
@pytest.mark.parametrize("name", ["correct_course", "dropout_backward_ignores_mask"])
def test_every_probe_outcome_is_the_same_with_and_without_servers(name: str, tmp_path: Path) -> None:
    """Dropout masks included: each probe starts from numpy's RNG state right after the import."""
    folder = buggy.CORRECT_COURSE if name == "correct_course" else buggy.materialize(name, tmp_path)

    assert differing_probes(folder, LocalProcessExecutor()) == []


def test_without_the_rng_reset_the_dropout_outcomes_would_differ(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The control of the test above: a copy of the runner whose servers do not reset numpy's RNG."""
    sandbox = tmp_path / "sandbox"
    shutil.copytree(RUNNER.parents[1], sandbox, ignore=shutil.ignore_patterns("__pycache__"))
    source = (sandbox / "runner" / "child.py").read_text()
    reset = "np.random.set_state(self.snapshot.random_state)"
    assert source.count(reset) == 1
    (sandbox / "runner" / "child.py").write_text(source.replace(reset, "pass"))
    monkeypatch.setattr(executor_module, "RUNNER", sandbox / "runner" / "__main__.py")

    differing = differing_probes(buggy.CORRECT_COURSE, LocalProcessExecutor())

    assert differing and all("dropout" in probe_id for probe_id in differing)


# ------------------------------------------------------------------- found by review: each was a defect


def test_an_import_that_replaces_stdout_costs_nothing() -> None:
    """Taking a server's snapshot must never fail the probe: a plain child would not have taken one."""
    tee = b"import sys\n\n\nclass Tee:\n    def __init__(self):\n        self.terminal = sys.stdout\n\n"
    tee += b"    def write(self, text):\n        self.terminal.write(text)\n\n\nsys.stdout = Tee()\n"
    probes = {"relu": relu_probe(), "relu_again": relu_probe(), "pid": layer_probe("pid_forward")}
    files = {"layers.py": tee + stateful("pass", "0") + LAYERS.split(b"\n", 1)[1]}

    with_servers, without = run(probes, files), run(probes, files, use_servers=False)

    for outcomes in (with_servers, without):
        assert_ok(outcomes["import.layers"])
        for name in ("relu", "relu_again"):
            assert_ok(outcomes[name])
            assert_exact(outcomes[name].arrays["out"], np.maximum(0, X))


def test_files_the_import_writes_are_there_for_every_probe() -> None:
    """What the import wrote is removed after a probe like anything else left behind; the servers
    whose import made it end with it, and the next import makes it again."""
    layers = stateful("pass", "0") + LAYERS.split(b"\n", 1)[1]
    layers = layers.replace(b"counter = 0\n", b'counter = 0\nnp.save("table.npy", np.ones(1))\n', 1)
    layers += b'\n\ndef table_forward(x):\n    return np.maximum(0, x) + np.load("table.npy")[0], x\n'
    probes = {f"table{i}": layer_probe("table_forward") for i in range(3)}

    outcomes = run(probes, {"layers.py": layers})

    for i in range(3):
        assert_ok(outcomes[f"table{i}"])
        assert_exact(outcomes[f"table{i}"].arrays["out"], np.maximum(0, X) + 1)


@pytest.mark.slow(reason="waits out a time limit")
def test_a_probe_that_joins_the_runners_process_group_times_out_alone() -> None:
    """Killing its process group no longer reaches it: it is killed by pid too, within its time limit."""
    layers = stateful("pass", "0") + LAYERS.split(b"\n", 1)[1]
    layers += b"\n\ndef escape_forward(x):\n    os.setpgid(0, os.getpgid(os.getppid()))\n    while True:\n"
    layers += b"        pass\n"
    probes = {"escape": layer_probe("escape_forward", time_limit=1.0), "relu": relu_probe()}
    probes["relu_again"] = relu_probe()

    outcomes = run(probes, {"layers.py": layers})

    assert outcomes["escape"].status == "timeout"
    assert 1.0 <= outcomes["escape"].seconds < 3.0
    for name in ("relu", "relu_again"):
        assert_ok(outcomes[name])
        assert_exact(outcomes[name].arrays["out"], np.maximum(0, X))


def test_a_renamed_file_does_not_survive_into_the_next_probe() -> None:
    """A rename frees and takes no block or inode: the walk for what a probe left must not be skipped."""
    layers = stateful("pass", "0") + LAYERS.split(b"\n", 1)[1]
    layers += b"""

def plant_forward(x):
    found = os.path.exists("planted")
    source = os.path.join(os.path.dirname(__file__), "solver.py")
    if not found and os.path.exists(source):
        os.rename(source, "planted")
    return np.array(float(found)), x
"""
    probes = {"plant": layer_probe("plant_forward"), "look": layer_probe("plant_forward")}
    probes["last"] = relu_probe()

    outcomes = run(probes, {"layers.py": layers})

    assert pid_of(outcomes["plant"]) == 0.0
    assert pid_of(outcomes["look"]) == 0.0  # "planted" was removed after the first probe
