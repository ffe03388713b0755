"""Runs in a probe server (a probe's process, where the student's code runs): the state of the process
right after the import, and whether a probe left it so. Reading it must run none of the student's code:
only plain types are looked into, everything else is compared by identity.

Starting a process, importing the student's modules and ending the process again costs more than most
probes themselves. A probe server is a child like any other for its first probe (it imports the modules
during it, with that probe's limits, output and time), and then takes further probes of the same modules
for as long as each one leaves the process as it found it right after the import. Any difference, any
failure, and it ends: the next probe gets a new server, so what one probe does to its process does not
reach another. A server is only a shortcut: a probe it does not take runs in a child of its own.
"""

from __future__ import annotations

import builtins
import gc
import itertools
import math
import operator
import os
import resource
import signal
import sys
import types
import warnings
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sandbox.runner.protocol import LOG_TAIL_BYTES

WATCHED_SIGNALS = tuple(
    s for s in signal.Signals if s not in (signal.SIGKILL, signal.SIGSTOP) and s < signal.NSIG
)
WATCHED_LIMITS = tuple(
    getattr(resource, name)
    for name in ("RLIMIT_AS", "RLIMIT_FSIZE", "RLIMIT_CORE", "RLIMIT_NOFILE", "RLIMIT_NPROC", "RLIMIT_CPU")
    if hasattr(resource, name)
)
TIMERS = (signal.ITIMER_REAL, signal.ITIMER_VIRTUAL, signal.ITIMER_PROF)
MAX_GROWTH_PAGES = (64 << 20) // resource.getpagesize()  # memory a probe may leave allocated
SMALL_ARRAY_BYTES = 1 << 16  # module-level arrays up to this size are compared by content


@dataclass
class ProcessState:
    """A process's state, in two parts compared without running any of the student's code: `plain`
    holds only values the runner builds itself (ints, strings, bytes and tuples of them), compared with
    ==; `objects` holds everything else, compared one by one by identity (holding them here keeps their
    ids from being reused by new objects)."""

    plain: list[Any] = field(default_factory=list)
    objects: list[object] = field(default_factory=list)

    def same_as(self, other: ProcessState) -> bool:
        return (
            len(self.objects) == len(other.objects)
            and self.plain == other.plain
            and all(map(operator.is_, self.objects, other.objects))
        )

    def add_namespace(self, namespace: dict[Any, Any]) -> None:
        self.plain.append(len(namespace))
        self.objects.extend(itertools.chain.from_iterable(list(namespace.items())))

    def add_in_place_state(self, value: Any, depth: int = 1) -> None:
        """What changing a value in place would change, for the plain types of Python and numpy (exact
        types only: a subclass's methods are the student's): the entries of a dict or list, the size of
        a set, the content of a small array, the attributes and defaults of a function."""
        kind = type(value)
        if kind is dict:
            self.plain.append(dict.__len__(value))
            self.objects.extend(itertools.chain.from_iterable(itertools.islice(dict.items(value), 1000)))
        elif kind is list:
            self.plain.append(list.__len__(value))
            self.objects.extend(list.__getitem__(value, slice(0, 1000)))
        elif kind in (set, bytearray):
            self.plain.append(len(value))
        elif kind is np.ndarray:
            self.plain.append(value.tobytes() if value.nbytes <= SMALL_ARRAY_BYTES else value.shape)
        elif kind is types.FunctionType:
            self.objects += [value.__defaults__, value.__kwdefaults__]
            self.add_namespace(value.__dict__)
            if depth and value.__defaults__:
                for default in value.__defaults__:
                    self.add_in_place_state(default, depth - 1)


def open_descriptors() -> set[int]:
    """The descriptors open now (not counting the one that lists them, closed once it has)."""
    listed = [int(name) for name in os.listdir("/proc/self/fd")]
    return {fd for fd in listed if os.path.lexists(f"/proc/self/fd/{fd}")}


def child_processes() -> str:
    """The children of this process (a probe's daemon would be one): from /proc, where the kernel has it."""
    try:
        with open(f"/proc/self/task/{os.getpid()}/children") as listing:
            return listing.read()
    except OSError:
        return ""


def process_state(watched: list[Any], student: list[Any], probe_fds: Collection[int] = ()) -> ProcessState:
    """What a probe must leave as it found it for the next probe to run as if in a fresh process:
    threads, child processes, descriptors, signal handlers and timers, limits, umask, working
    directory, environment, numpy's error handling, warning filters, the import system, the namespaces
    of numpy, sys and the runner, and those of the student's modules and classes with the in-place
    state of their values."""
    umask = os.umask(0o022)
    os.umask(umask)
    state = ProcessState()
    state.plain += [
        len(os.listdir("/proc/self/task")),
        child_processes(),
        sorted(open_descriptors() - set(probe_fds)),
        [signal.getitimer(timer) for timer in TIMERS],
        [resource.getrlimit(limit) for limit in WATCHED_LIMITS],
        umask,
        (os.getpgid(0), os.getsid(0)),
        os.getcwd(),
        dict(os.environ),  # keys and values are always plain strings
        sorted(np.geterr().items()),
        (sys.getrecursionlimit(), gc.isenabled(), gc.get_threshold()),
        (len(sys.path), len(sys.meta_path), len(warnings.filters), len(sys.modules)),
    ]
    state.objects += [signal.getsignal(number) for number in WATCHED_SIGNALS]
    state.objects += [sys.gettrace(), sys.getprofile(), sys.stdin, sys.stdout, sys.stderr]
    state.objects += [*sys.path, *sys.meta_path, *warnings.filters]
    for namespace in (*watched, *student):
        state.add_namespace(namespace.__dict__)
    for namespace in student:
        for value in list(namespace.__dict__.values()):
            state.add_in_place_state(value)
    return state


def memory_pages() -> tuple[int, int]:
    """The address space and the resident memory of this process, in pages."""
    with open("/proc/self/statm") as statm:
        size, resident = statm.read().split()[:2]
    return int(size), int(resident)


def plain_namespaces(package: str) -> list[Any]:
    """Every module of the student's package and every class defined in them, of the plain types only
    (module and type: reading another kind's namespace could run the student's code)."""
    namespaces: list[Any] = []
    for name, module in list(sys.modules.items()):
        if type(module) is types.ModuleType and (name == package or name.startswith(package + ".")):
            namespaces.append(module)
            namespaces += [value for value in module.__dict__.values() if type(value) is type]
    return namespaces


@dataclass
class Snapshot:
    """A server's state right after its import: what every later probe must find again."""

    printed: bytes  # what the import printed, which belongs to every probe's output
    random_state: Any
    watched: list[Any]
    student: list[Any]
    state: ProcessState
    memory: tuple[int, int]

    def unchanged(self, probe_fds: Collection[int]) -> bool:
        """Whether the process is as the import left it (but for this probe's descriptors)."""
        gc.collect()  # finalizers of the probe's garbage run now, before the check, not in a later probe
        if not process_state(self.watched, self.student, probe_fds).same_as(self.state):
            return False
        return all(
            now <= then + MAX_GROWTH_PAGES for now, then in zip(memory_pages(), self.memory, strict=True)
        )


def runner_modules() -> list[Any]:
    """The runner's own modules (the recipes among them) and its entry script: a probe may not change them.
    Plain strings and modules only (the student's import ran already: a key of another type could run its
    code when compared); their order is that of sys.modules, kept by the snapshot."""
    ours = [
        module
        for name, module in list(sys.modules.items())
        if type(name) is str and type(module) is types.ModuleType and str.partition(name, ".")[0] == "sandbox"
    ]
    return [*ours, sys.modules["__main__"]]


def take_snapshot(package: str, probe_fds: Collection[int], output_fd: int) -> Snapshot | None:
    """The state the import left (its output flushed already), or None if it cannot be taken (then the
    server serves no more; the probe itself is not concerned: a child of its own would not have taken one)."""
    try:
        if len(os.listdir("/proc/self/task")) != 1:
            return None  # a thread of the import's would run beside every probe: no state to serve from
        printed = os.pread(output_fd, LOG_TAIL_BYTES, max(0, os.fstat(output_fd).st_size - LOG_TAIL_BYTES))
        watched = [np, np.random, np.linalg, np.lib, math, builtins, sys, *runner_modules()]
        student = plain_namespaces(package)
        gc.collect()
        state = process_state(watched, student, probe_fds)
        return Snapshot(printed, np.random.get_state(), watched, student, state, memory_pages())
    except Exception:
        return None
