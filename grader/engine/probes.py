"""Probes (one function call of the student's code on chosen inputs) and the plan sent to the sandbox."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sandbox.runner.protocol import MODULE_FILES, ImportFailure, PlanDocument, ProbeEntry

MODULE_ORDER = tuple(MODULE_FILES)  # import probes run in this order: a module after its dependencies


@dataclass(frozen=True)
class Probe:
    """One recipe of sandbox/recipes/ run on the student's modules.

    `label` tells the probes of one check apart in reports; `calls` names the student functions the
    probe calls (a function that hangs once is not called again in the same run).
    """

    label: str
    recipe: str
    modules: tuple[str, ...]
    inputs: Mapping[str, np.ndarray]
    options: Mapping[str, Any]
    calls: tuple[str, ...] = ()
    time_limit: float = 5.0
    forbid: tuple[str, ...] = ()  # modules its process may not import (fc_net)
    # Options for the student's run only: what the trusted side needs of the student's code alone (the
    # forward pass at moved inputs), which the reference need not compute.
    sandbox_options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SandboxPlan:
    """Everything the sandbox needs and nothing it must not see: no reference, expected values or points."""

    document: PlanDocument
    inputs: dict[str, np.ndarray] = field(repr=False)
    probe_ids: tuple[str, ...]

    def subset(
        self, keep: Sequence[int], import_failures: Mapping[str, ImportFailure], hanging: Sequence[str]
    ) -> SandboxPlan:
        """The same plan restricted to the probes at `keep`, with what earlier attempts learnt."""
        wanted = set(keep)
        probes = [probe for probe in self.document["probes"] if probe["index"] in wanted]
        used = {key for probe in probes for key in probe["inputs"].values()}
        inputs = {key: value for key, value in self.inputs.items() if key in used}
        document: PlanDocument = {
            **self.document,
            "probes": probes,
            "import_failures": dict(import_failures),
            "hanging": list(hanging),
        }
        return SandboxPlan(document=document, inputs=inputs, probe_ids=self.probe_ids)


# Modules each module always imports: when one of these cannot be imported, neither can the module.
MODULE_DEPENDENCIES = {"layer_utils": ("layers",), "fc_net": ("layers",), "solver": ("optim",)}


def import_probe(module: str) -> Probe:
    """Import one module (its dependencies first); the module under test is the last of `modules`."""
    modules = (*MODULE_DEPENDENCIES.get(module, ()), module)
    return Probe(label=f"import.{module}", recipe="import", modules=modules, inputs={}, options={})


def build_plan(
    probes: Sequence[tuple[str, Probe]],
    *,
    package: str,
    package_aliases: Sequence[str],
    limits: Mapping[str, int],
    time_scale: float = 1.0,
) -> SandboxPlan:
    """Number the probes, import probes first (one per module, so a broken module is found once)."""
    used = {module for _, probe in probes for module in probe.modules}
    ordered = [(f"import.{m}", import_probe(m)) for m in MODULE_ORDER if m in used] + list(probes)
    entries: list[ProbeEntry] = []
    inputs: dict[str, np.ndarray] = {}
    keys: dict[int, str] = {}  # id of an input array -> its key; the probes keep every array alive
    for index, (probe_id, probe) in enumerate(ordered):
        entries.append(
            {
                "index": index,
                "id": probe_id,
                "recipe": probe.recipe,
                "modules": list(probe.modules),
                "calls": list(probe.calls),
                "options": {**probe.options, **probe.sandbox_options},
                "time_limit": probe.time_limit * time_scale,
                "inputs": {},
            }
        )
        if probe.forbid:
            entries[-1]["forbid"] = list(probe.forbid)
        for name, value in probe.inputs.items():
            # An array shared by several probes (the notebooks reuse their inputs) travels once.
            key = keys.setdefault(id(value), f"a{len(keys)}")
            inputs[key] = value
            entries[-1]["inputs"][name] = key
    document: PlanDocument = {
        "package": package,
        "package_aliases": list(package_aliases),
        "limits": dict(limits),
        "probes": entries,
    }
    return SandboxPlan(document=document, inputs=inputs, probe_ids=tuple(pid for pid, _ in ordered))
