"""The years of the assignment whose API differs, as one catalog sees them (see docs/editions.md).

One catalog definition serves every edition: the checks ask an Edition how that year spells the
model's arguments, what dropout's p means and whether layer norm exists; the reference of each edition
(reference/editions.py) answers the same questions in code.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any

from grader.intake.packages import parse_source


@dataclass(frozen=True)
class Edition:
    name: str  # the catalog's name: cs231n-a2-fc, cs231n-a2-fc-2018, cs231n-a2-fc-2017
    years: str
    dropout_argument: str  # the model's keyword for dropout
    p_drops: bool  # dropout's p (and the model's dropout=) is the probability of DROPPING a unit
    layernorm: bool  # the edition has layer normalization (and normalization=)
    notebook_keep: tuple[float, ...]  # keep probabilities of the dropout notebook's forward cell
    notebook_backward_keep: float  # and of its backward check

    def layer_p(self, keep: float) -> float:
        """dropout_param["p"] for a keep probability."""
        return round(1 - keep, 12) if self.p_drops else keep

    def model_kwargs(self, *, keep: float = 1.0, normalization: str | None = None) -> dict[str, Any]:
        """The FullyConnectedNet keywords for dropout with `keep` and for `normalization`."""
        kwargs: dict[str, Any] = {}
        if keep != 1:
            kwargs[self.dropout_argument] = self.layer_p(keep)
        if normalization is not None:
            if self.layernorm:
                kwargs["normalization"] = normalization
            elif normalization == "batchnorm":
                kwargs["use_batchnorm"] = True
            else:
                raise ValueError(f"{self.name} has no {normalization}")
        return kwargs

    def architecture(self, kwargs: dict[str, Any]) -> tuple[float, str | None]:
        """The keep probability and the normalization that FullyConnectedNet keywords ask for."""
        p = kwargs.get(self.dropout_argument)
        keep = 1.0 if p is None else (1 - p if self.p_drops else p)
        normalization = kwargs.get("normalization")
        if kwargs.get("use_batchnorm"):
            normalization = "batchnorm"
        return keep, normalization

    def without_dropout(self) -> dict[str, Any]:
        """The keyword that turns dropout off."""
        return {self.dropout_argument: 0 if self.p_drops else 1}

    @property
    def p_meaning(self) -> str:
        return "the probability of dropping a unit" if self.p_drops else "the probability of keeping a unit"


CURRENT = Edition(
    name="cs231n-a2-fc",
    years="2021 onwards",
    dropout_argument="dropout_keep_ratio",
    p_drops=False,
    layernorm=True,
    notebook_keep=(0.25, 0.4, 0.7),
    notebook_backward_keep=0.2,
)
EDITION_2018 = Edition(
    name="cs231n-a2-fc-2018",
    years="2018 to 2020",
    dropout_argument="dropout",
    p_drops=False,
    layernorm=True,
    notebook_keep=(0.25, 0.4, 0.7),
    notebook_backward_keep=0.2,
)
EDITION_2017 = Edition(
    name="cs231n-a2-fc-2017",
    years="2017 and earlier",
    dropout_argument="dropout",
    p_drops=True,
    layernorm=False,
    notebook_keep=(0.7, 0.4, 0.25),  # the notebook's p = 0.3, 0.6, 0.75 drop
    notebook_backward_keep=0.2,  # p = 0.8 drops
)
EDITIONS = {edition.name: edition for edition in (CURRENT, EDITION_2018, EDITION_2017)}


def edition_of_source(fc_net_source: bytes) -> Edition | None:
    """The edition whose FullyConnectedNet signature the student's fc_net.py has, read without running it."""
    tree = parse_source(fc_net_source)
    if tree is None:
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == "FullyConnectedNet":
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == "__init__":
                    arguments = {a.arg for a in (*item.args.args, *item.args.kwonlyargs)}
                    return _edition_of_arguments(arguments)
    return None


def _edition_of_arguments(arguments: set[str]) -> Edition | None:
    if "dropout_keep_ratio" in arguments:
        return CURRENT
    if "use_batchnorm" in arguments:
        return EDITION_2017
    if "dropout" in arguments:
        return EDITION_2018
    return None


def edition_mismatch(fc_net_source: bytes | None, graded: Edition) -> str | None:
    """One line when the student's model takes another edition's arguments than the one graded."""
    found = edition_of_source(fc_net_source) if fc_net_source is not None else None
    if found is None or found == graded:
        return None
    if found.dropout_argument != graded.dropout_argument or found.p_drops != graded.p_drops:
        meanings = found.p_drops != graded.p_drops  # worth saying only where they differ
        theirs = f"`{found.dropout_argument}=`" + (f" ({found.p_meaning})" if meanings else "")
        ours = f"`{graded.dropout_argument}=`" + (f" ({graded.p_meaning})" if meanings else "")
    else:
        theirs, ours = "`use_batchnorm=`", "`normalization=`"
    return (
        f"your FullyConnectedNet takes {theirs}, the {found.years} API; this assignment "
        f"({graded.name}, {graded.years}) uses {ours}"
    )
