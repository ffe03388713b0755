"""Reading the package name from the student's files: hostile sources, and graders in threads."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from grader.assignments.cs231n_a2_fc.editions import edition_of_source
from grader.intake.packages import package_names, parse_source

DEEP_EXPRESSION = b"x = " + b"-" * 200_000 + b"1\n"
DEEP_BLOCKS = b"".join(b" " * i + b"if x:\n" for i in range(120)) + b" " * 120 + b"pass\n"
HOSTILE = {
    "a NUL byte": b"from daseCV.layers import *\x00\n",
    "not UTF-8": b"\xff\xfe from daseCV.layers import *\n",
    "a deep expression": DEEP_EXPRESSION,
    "deep blocks": DEEP_BLOCKS,
    "parentheses beyond the parser's limit": b"x = " + b"(" * 5000 + b")" * 5000 + b"\n",
    "a syntax error": b"from daseCV.layers import (\n",
}


@pytest.mark.parametrize("source", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_file_that_cannot_be_parsed_gives_the_default_name_and_no_edition(source: bytes) -> None:
    names = package_names(
        {"layers.py": source}, {"layers.py": "layers.py"}, default="cs231n", known_aliases=()
    )
    assert names.package == "cs231n"
    assert edition_of_source(source) is None


def test_the_other_files_still_name_the_package_when_one_cannot_be_parsed() -> None:
    files = {"layers.py": DEEP_EXPRESSION, "fc_net.py": b"from cs682.layer_utils import *\n"}
    names = package_names(files, {name: name for name in files}, default="cs231n", known_aliases=())
    assert names.package == "cs682"


@pytest.mark.slow  # seconds of parsing in eight threads that switch every microsecond
def test_graders_in_threads_parse_at_the_same_time() -> None:
    """CPython 3.11's parser once raised SystemError ("AST constructor recursion depth mismatch") in
    `make bench`, whose two graders parse at once; the failure depends on timing, so this asserts that
    parsing from many threads at once gives every one of them the right answer."""
    source = b"from daseCV.layer_utils import *\n" + b"def f(x):\n    return ((x + 1) * (x - 1))\n" * 300

    def name_of(_: int) -> str:
        return package_names({"fc_net.py": source}, {}, default="cs231n", known_aliases=()).package

    switching = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads take turns inside the parser, as a busy grader's do
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            assert set(pool.map(name_of, range(200))) == {"daseCV"}
    finally:
        sys.setswitchinterval(switching)
    assert parse_source(source) is not None
