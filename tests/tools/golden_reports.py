"""The fixture corpus and its golden grade reports: proof that a change of structure changed no grade.

The golden reports (tests/fixtures/golden/reports.json.gz) were recorded by the code of commit 6adb4f2,
before the sandbox runner became a package, and recorded again when the sandbox took the baseline x86-64
code paths on every CPU (only measured errors below 3e-8 moved, no score, status or message);
tests/grader/test_grades_unchanged.py grades the same
corpus with the same seeds and compares every report, field by field ("sandbox" aside: it names the
image). A change meant to change grades records them anew, and says so in its commit:

usage: python -m tests.tools.golden_reports --write   (the Docker sandbox; under two minutes)
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.fixtures.starter import starter
from tests.fixtures.submissions import buggy

GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "golden" / "reports.json.gz"
CURRENT, E2018, E2017 = "cs231n-a2-fc", "cs231n-a2-fc-2018", "cs231n-a2-fc-2017"
EDITIONS = (CURRENT, E2018, E2017)
SEED = 7
CORRECT_SEEDS = (7, 2026)
CORRECT = {
    "correct_course": buggy.CORRECT_COURSE,
    "correct_alt": buggy.CORRECT_ALT,
    "correct_dasecv_zip": buggy.CORRECT_DASECV_ZIP,
}
# Graded with --cascade too: a bug of each kind (layer, normalization, loss, optimizer, model, missing file).
CASCADING = (
    "relu_backward_masks_dout",
    "bn_eps_outside_sqrt",
    "bn_unbiased_variance",
    "ln_normalizes_over_batch",
    "softmax_not_stable",
    "adam_no_bias_correction",
    "l2_missing_half",
    "missing_optim",
)
# Starter uploads (tests/grader/intake/test_starter_folders.py): every package, import style and zip
# flavor at least twice, a plain folder per package, and uploads with a typo in an import.
STARTER_ZIPS = (
    ("cs231n", "relative", "course_script"),
    ("daseCV", "absolute", "windows_backslash"),
    ("cs682", "mixed", "macos"),
    ("dl_course_2024", "fc_net_self_import", "colab"),
    ("daseCV", "mixed", "linux"),
    ("cs682", "relative", "windows"),
    ("daseCV", "fc_net_self_import", "course_script"),
    ("cs682", "absolute", "linux"),
    ("dl_course_2024", "relative", "windows"),
    ("cs231n", "fc_net_self_import", "windows_backslash"),
    ("dl_course_2024", "mixed", "macos"),
    ("cs231n", "absolute", "colab"),
)
STARTER_FOLDERS = (
    ("cs231n", "mixed"),
    ("daseCV", "relative"),
    ("cs682", "fc_net_self_import"),
    ("dl_course_2024", "absolute"),
)
STARTER_TYPOS = (
    ("daseCV", "relative", "linux"),
    ("cs682", "relative", None),
    ("dl_course_2024", "absolute", "windows_backslash"),
    ("cs231n", "mixed", None),
)


@dataclass(frozen=True)
class Entry:
    """One grading of the corpus: an upload (folder or zip), the catalog, the seed, --cascade or not."""

    path: Path
    assignment: str
    seed: int = SEED
    cascading: bool = False


def own_edition(name: str) -> str:
    return buggy.OTHER_EDITIONS[name][0] if name in buggy.OTHER_EDITIONS else CURRENT


def fixture_entries(scratch: Path) -> dict[str, Entry]:
    """Every fixture submission in its own edition, the correct ones in every edition, some cascading."""
    folder_of: dict[str, Path] = dict(CORRECT)
    folder_of.update({name: buggy.materialize(name, scratch / "fixtures") for name in buggy.ALL_NAMES})
    entries: dict[str, Entry] = {}
    for name, folder in CORRECT.items():
        for seed in CORRECT_SEEDS:
            entries[f"correct/{name}/seed{seed}"] = Entry(folder, CURRENT, seed)
    for name in buggy.ALL_NAMES:
        entries[f"fixture/{name}"] = Entry(folder_of[name], own_edition(name))
    for name in (*CORRECT, *buggy.OTHER_EDITIONS):
        for edition in EDITIONS:
            if edition != own_edition(name):  # in its own edition it is an entry above
                entries[f"edition/{edition}/{name}"] = Entry(folder_of[name], edition)
    for name in CASCADING:
        entries[f"cascade/{name}"] = Entry(folder_of[name], CURRENT, cascading=True)
    return entries


def typo_in_layer_utils(package: str, style: str) -> tuple[str, str, str]:
    """`fast_layer` for `fast_layers`, in the style's own import of it."""
    module = ".fast_layers" if style in ("relative", "fc_net_self_import") else f"{package}.fast_layers"
    return ("layer_utils.py", f"from {module} import *", f"from {module[:-1]} import *")


def starter_entries(scratch: Path) -> dict[str, Entry]:
    def upload(package: str, style: str, flavor: str | None, typo: bool = False) -> Path:
        tag = f"{package}-{style}" + ("-typo" if typo else "")
        folder = scratch / "starter" / tag / starter.ASSIGNMENT_FOLDER
        if not folder.exists():
            edits = [typo_in_layer_utils(package, style)] if typo else []
            folder = starter.write_assignment_folder(
                scratch / "starter" / tag, package=package, import_style=style, edits=edits
            )
        if flavor is None:
            return folder
        return starter.zip_folder(folder, scratch / "starter" / f"{tag}-{flavor}.zip", flavor=flavor)

    entries = {
        f"starter/zip/{package}/{style}/{flavor}": Entry(upload(package, style, flavor), CURRENT)
        for package, style, flavor in STARTER_ZIPS
    }
    for package, style in STARTER_FOLDERS:
        entries[f"starter/folder/{package}/{style}"] = Entry(upload(package, style, None), CURRENT)
    for package, style, maybe_flavor in STARTER_TYPOS:
        name = f"starter/typo/{package}/{style}/{maybe_flavor or 'folder'}"
        entries[name] = Entry(upload(package, style, maybe_flavor, typo=True), CURRENT)
    return entries


def corpus(scratch: Path) -> dict[str, Entry]:
    """The whole corpus, its uploads written under `scratch`. The hostile fixtures are not in it: the
    attack suite judges them, and their reports hold timings."""
    return {**fixture_entries(scratch), **starter_entries(scratch)}


def comparable(report: dict[str, Any]) -> dict[str, Any]:
    """A report as the golden file holds it: everything but which sandbox image ran it."""
    return {key: value for key, value in report.items() if key != "sandbox"}


def read_golden() -> dict[str, dict[str, Any]]:
    with gzip.open(GOLDEN, "rt") as golden:
        reports: dict[str, dict[str, Any]] = json.load(golden)
    return reports


def write_golden(reports: dict[str, dict[str, Any]]) -> None:
    raw = (json.dumps(reports, sort_keys=True, indent=1) + "\n").encode()
    with GOLDEN.open("wb") as out, gzip.GzipFile(fileobj=out, mode="wb", mtime=0, filename="") as packed:
        packed.write(raw)  # mtime 0: the same reports give the same bytes


@contextlib.contextmanager
def corpus_grader() -> Iterator[Callable[[Entry], dict[str, Any]]]:
    """Grade entries as the service does: through the Grader, in the Docker sandbox, with a pool of
    containers, under the settings' limits."""
    import docker

    from grader.core import Grader
    from grader.intake.uploads import load_submission
    from grader.sandbox_client.images import build_sandbox_image
    from grader.settings import Settings

    client = docker.from_env()  # the Grader never builds the image: build it (or find it) here
    try:
        build_sandbox_image(client, log=lambda line: print(line, file=sys.stderr))
    finally:
        client.close()
    with Grader(Settings(sandbox="docker", sandbox_pool_size=2)) as grader:

        def grade(entry: Entry) -> dict[str, Any]:
            submission = load_submission(entry.path)
            report = grader.grade(
                submission.files,
                entry.assignment,
                seed=entry.seed,
                origins=submission.origins,
                cascade=entry.cascading,
            )
            return report.to_dict()

        yield grade


def grade_corpus(grade: Callable[[Entry], dict[str, Any]], scratch: Path) -> dict[str, dict[str, Any]]:
    return {name: comparable(grade(entry)) for name, entry in corpus(scratch).items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--write", action="store_true", help="record the current grades as the golden ones")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="golden-") as tmp, corpus_grader() as grade:
        reports = grade_corpus(grade, Path(tmp))
    if args.write:
        write_golden(reports)
        print(f"{len(reports)} reports written to {GOLDEN}")
        return 0
    golden = read_golden()
    differing = sorted(name for name, report in reports.items() if golden.get(name) != report)
    print("\n".join(differing) or f"all {len(reports)} reports are the golden ones")
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
