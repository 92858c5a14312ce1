"""Every lesson has the shape docs/authoring.md asks for; nbval itself runs them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("[0-9]*.ipynb"))
IGNORED = re.compile(r"#\s*NBVAL_(IGNORE_OUTPUT|SKIP)", re.I)


def cells(path: Path, kind: str) -> list[str]:
    notebook = json.loads(path.read_text())
    return ["".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == kind]


def test_the_first_three_lessons_are_there():
    names = [path.stem for path in NOTEBOOKS]
    assert names[:3] == ["00_welcome", "01_handshake", "02_native_api"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_lesson_opens_with_objectives_prerequisites_and_time(path):
    first = cells(path, "markdown")[0]
    for heading in ("Objectives", "Prerequisites", "Time"):
        assert f"**{heading}" in first or f"## {heading}" in first, heading


READING_WPM = 130  # words a minute, for technical prose read with care
MINUTES_PER_CODE_CELL = 0.5  # run it, read its output
MINUTES_PER_EXERCISE = 10  # think, write, run the check, fix


def estimated_minutes(path: Path) -> float:
    """A learner's time for a lesson that reads every cell and does every exercise."""
    words = sum(len(text.split()) for text in cells(path, "markdown"))
    code = cells(path, "code")
    exercises = sum(text.count("# BEGIN SOLUTION") for text in code)
    return (
        words / READING_WPM + len(code) * MINUTES_PER_CODE_CELL + exercises * MINUTES_PER_EXERCISE
    )


def stated_minutes(path: Path) -> int:
    match = re.search(r"\*\*Time\*\*:?\s*(?:about\s*)?(\d+)", cells(path, "markdown")[0])
    assert match, "the title cell states no **Time**"
    return int(match[1])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_a_lessons_stated_time_is_honest_and_at_most_an_hour(path):
    """docs/authoring.md: the stated time covers reading, running and the exercises."""
    estimate = estimated_minutes(path)
    stated = stated_minutes(path)
    assert stated <= 60, f"{stated} minutes: a lesson takes an hour at most (split it)"
    assert stated >= estimate, f"states {stated} minutes, but needs about {estimate:.0f}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_lesson_ends_with_key_points_and_has_checked_exercises(path):
    assert any("Key points" in text for text in cells(path, "markdown"))
    code = cells(path, "code")
    exercises = [text for text in code if "# BEGIN SOLUTION" in text]
    assert exercises, "no exercise with a marked solution"
    for text in exercises:
        assert text.count("# BEGIN SOLUTION") == text.count("# END SOLUTION")
        assert text.index("# BEGIN SOLUTION") < text.index("# END SOLUTION")
    assert any("check" in text for text in code), "no check function is called"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_nbval_compares_at_least_85_percent_of_cells_with_output(path):
    notebook = json.loads(path.read_text())
    with_output = [c for c in notebook["cells"] if c["cell_type"] == "code" and c["outputs"]]
    ignored = [c for c in with_output if IGNORED.search("".join(c["source"]))]
    assert with_output
    assert (len(with_output) - len(ignored)) / len(with_output) >= 0.85


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_outputs_are_clean(path):
    notebook = json.loads(path.read_text())
    assert notebook["metadata"]["kernelspec"]["name"] == "python3"
    for cell in notebook["cells"]:
        for output in cell.get("outputs", []):
            assert output["output_type"] != "error", "a stored output is an error"
            assert output.get("name") != "stderr", "a stored output went to stderr"
