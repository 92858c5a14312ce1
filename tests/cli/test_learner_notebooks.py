"""The learner copies of every lesson run top to bottom with a real kernel.

``rtlab learner`` writes the copies (solutions replaced by ``raise
NotImplementedError``); nbclient runs each one in a kernel of this environment.
Every cell must run without a traceback, and each exercise's check must answer
``❌ ...: not done yet`` with its hint. A cell that fails because it uses an
unsolved exercise's result is named in the failure: the lesson must not depend on
it. New lessons are covered as soon as they appear in notebooks/.
"""

from __future__ import annotations

import json
from pathlib import Path

import ipykernel.kernelspec
import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

from rtlab import cli
from rtlab.learner import learner_notebook

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("[0-9]*.ipynb"))
CELL_TIMEOUT = 120  # a hang guard only: a lesson runs in well under 30 s
KERNEL = {"name": "python3", "display_name": "Python 3", "language": "python"}


class ThisEnvironment(KernelSpecManager):
    """The ``python3`` kernel of the Python running the tests (as nbval's current-env)."""

    def get_kernel_spec(self, kernel_name: str):  # type: ignore[no-untyped-def]
        return self.kernel_spec_class(
            resource_dir=ipykernel.kernelspec.RESOURCES, **ipykernel.kernelspec.get_kernel_dict()
        )


@pytest.fixture(scope="module")
def copies(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The learner copies of notebooks/, written by the real command."""
    out = tmp_path_factory.mktemp("learner")
    assert cli.main(["learner", str(NOTEBOOKS[0].parent), "--out", str(out), "--force"]) == 0
    return out


def output_text(cell: dict) -> str:
    parts = []
    for output in cell.get("outputs", []):
        if output["output_type"] == "stream":
            parts.append(output["text"])
        elif output["output_type"] in ("execute_result", "display_data"):
            parts.append("".join(output["data"].get("text/plain", "")))
        elif output["output_type"] == "error":
            parts.append(f"{output['ename']}: {output['evalue']}")
    return "".join(parts)


def test_every_lesson_is_covered(copies):
    assert NOTEBOOKS
    assert {p.name for p in NOTEBOOKS} <= {p.name for p in copies.glob("*.ipynb")}


def problems(path: Path, exercises: list[int]) -> list[str]:
    """Run the learner copy at ``path`` in a fresh kernel; what went wrong, cell by cell
    (numbered from 1): tracebacks, and exercise checks that did not say "not done yet"."""
    manager = KernelManager(kernel_name="python3", kernel_spec_manager=ThisEnvironment())
    client = NotebookClient(
        nbformat.read(path, as_version=4),
        km=manager,
        timeout=CELL_TIMEOUT,
        allow_errors=True,  # run on after a failure, to name every failing cell
        record_timing=False,
        resources={"metadata": {"path": str(path.parent)}},
    )
    cells = client.execute()["cells"]
    found = []
    for index, cell in enumerate(cells):
        text = output_text(cell)
        crashed = any(output["output_type"] == "error" for output in cell.get("outputs", []))
        if index in exercises:
            if crashed:
                found.append(f"cell {index + 1} (an exercise) crashed: {text}")
            elif not ("❌" in text and "not done yet" in text and "Hint:" in text):
                found.append(f"cell {index + 1} (an exercise) did not say not done yet: {text!r}")
        elif crashed and index < exercises[0]:
            found.append(f"cell {index + 1} (before the first exercise) failed: {text}")
        elif crashed:
            exercise = max(e for e in exercises if e < index) + 1
            found.append(
                f"cell {index + 1} depends on the unsolved exercise in cell {exercise}: {text}"
            )
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_learner_copy_runs_to_every_unsolved_exercise(path, copies):
    copy = copies / path.name
    exercises = learner_notebook(json.loads(path.read_text())).exercises
    assert exercises, f"{path.name} has no exercise"
    assert "# BEGIN SOLUTION" not in copy.read_text(), "a solution was left in the copy"
    assert problems(copy, exercises) == [], path.name


def test_a_cell_that_uses_an_unsolved_exercise_is_named(tmp_path):
    """What the test above reports when a lesson depends on an exercise's result."""
    source = [
        "from rtlab.checks.handshake import check_accept_key\nGUID = 'x'",
        "def accept_key(key):\n    # BEGIN SOLUTION\n    return key + GUID\n    # END SOLUTION\n"
        "\n\ncheck_accept_key(accept_key)",
        "print(accept_key('abc'))",
        "print('fine')",
    ]
    cells = [nbformat.v4.new_code_cell(text) for text in source]
    solved = nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": KERNEL})
    learner = learner_notebook(solved)
    path = tmp_path / "lesson.ipynb"
    nbformat.write(nbformat.from_dict(learner.notebook), path)
    found = problems(path, learner.exercises)
    assert found == [
        "cell 3 depends on the unsolved exercise in cell 2: NotImplementedError: ",
    ]
