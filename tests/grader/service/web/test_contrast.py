"""The stylesheet's colours meet WCAG AA: 4.5:1 for text on each background it is used on."""

from __future__ import annotations

import re

import pytest

from grader.service.web.rendering import STATIC_DIR

COLOURS = dict(re.findall(r"--([a-z-]+):\s*(#[0-9a-fA-F]{6})", (STATIC_DIR / "style.css").read_text()))
# (text, background) as the stylesheet pairs them
PAIRS = [
    ("ink", "paper"),
    ("ink", "wash"),
    ("muted", "paper"),
    ("muted", "wash"),
    ("accent", "paper"),
    ("accent", "wash"),
    ("accent-ink", "accent"),
    ("good", "good-wash"),
    ("bad", "bad-wash"),
    ("warn", "warn-wash"),
    ("good", "paper"),
    ("bad", "paper"),
]


def luminance(colour: str) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else float(((c + 0.055) / 1.055) ** 2.4)

    red, green, blue = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(red) + 0.7152 * channel(green) + 0.0722 * channel(blue)


def contrast(text: str, background: str) -> float:
    lighter, darker = sorted((luminance(text), luminance(background)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def test_the_measure_tells_good_from_bad_contrast() -> None:
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#777777", "#ffffff") < 4.5  # a grey that fails AA


@pytest.mark.parametrize(("text", "background"), PAIRS)
def test_text_on_its_background_meets_aa(text: str, background: str) -> None:
    assert contrast(COLOURS[text], COLOURS[background]) >= 4.5
