"""Learner copies: solutions out, everything else as it was; and the ``rtlab learner`` command."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from rtlab import cli
from rtlab.learner import PLACEHOLDER, SolutionError, learner_notebook, learner_source

EXERCISE = """\
def accept_key(key):
    # BEGIN SOLUTION
    digest = hashlib.sha1((key + GUID).encode()).digest()
    return base64.b64encode(digest).decode()
    # END SOLUTION


check_accept_key(accept_key)"""


def code(source: str, outputs: list | None = None, count: int | None = 3) -> dict:
    return {
        "cell_type": "code",
        "execution_count": count,
        "id": f"code-{len(source)}",
        "metadata": {"tags": ["x"]},
        "outputs": outputs or [],
        "source": source.splitlines(keepends=True),
    }


def markdown(source: str) -> dict:
    return {"cell_type": "markdown", "id": "m1", "metadata": {}, "source": source}


def result(text: str) -> list:
    data = {"text/plain": [text]}
    return [{"output_type": "execute_result", "execution_count": 3, "data": data, "metadata": {}}]


def notebook(*cells: dict) -> dict:
    kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {"kernelspec": kernelspec},
        "cells": list(cells),
    }


def test_a_solution_becomes_the_placeholder_at_its_indentation():
    source, count = learner_source(EXERCISE)
    assert count == 1
    assert source == (f"def accept_key(key):\n    {PLACEHOLDER}\n\n\ncheck_accept_key(accept_key)")


def test_several_solutions_in_one_cell_each_keep_their_indentation():
    source = (
        "class Limiter:\n"
        "    def __init__(self):\n"
        "        # BEGIN SOLUTION\n"
        "        self.times = {}\n"
        "        # END SOLUTION\n"
        "\n"
        "    def allow(self, user, now):\n"
        "        if now:\n"
        "            # BEGIN SOLUTION\n"
        "            return True\n"
        "            # END SOLUTION\n"
        "        return False\n"
        "# BEGIN SOLUTION\n"
        "top = 1\n"
        "# END SOLUTION\n"
    )
    learner, count = learner_source(source)
    assert count == 3
    assert learner.splitlines() == [
        "class Limiter:",
        "    def __init__(self):",
        f"        {PLACEHOLDER}",
        "",
        "    def allow(self, user, now):",
        "        if now:",
        f"            {PLACEHOLDER}",
        "        return False",
        PLACEHOLDER,
    ]
    compile(learner, "learner", "exec")  # still valid Python


def test_a_source_without_markers_is_unchanged():
    text = (
        'print("# BEGIN SOLUTION is only a marker on a line of its own")\nx = 1  # END SOLUTION\n'
    )
    assert learner_source(text) == (text, 0)


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("x = 1\n# BEGIN SOLUTION\ny = 2\n", "BEGIN SOLUTION on line 2 has no END SOLUTION"),
        ("x = 1\n# END SOLUTION\n", "END SOLUTION on line 2 has no BEGIN SOLUTION"),
        (
            "# BEGIN SOLUTION\n# BEGIN SOLUTION\n# END SOLUTION\n# END SOLUTION\n",
            "BEGIN SOLUTION on line 2 comes before the END SOLUTION of the one on line 1",
        ),
        ("# BEGIN SOLUTION\na\n# END SOLUTION\n# END SOLUTION\n", "END SOLUTION on line 4"),
    ],
)
def test_unbalanced_markers_are_refused(source, problem):
    with pytest.raises(SolutionError, match=problem):
        learner_source(source, "somewhere")


def test_the_error_names_the_notebook_and_the_cell():
    broken = notebook(markdown("# Title"), code("x = 1"), code("# BEGIN SOLUTION\nx = 2\n"))
    with pytest.raises(SolutionError) as caught:
        learner_notebook(broken, "notebooks/09_broken.ipynb")
    cell_id = broken["cells"][2]["id"]
    assert str(caught.value).startswith(f"notebooks/09_broken.ipynb, cell 3 (id {cell_id}): ")


def test_only_the_exercise_cells_change():
    before = notebook(
        markdown("# Lesson\n\nSome `# BEGIN SOLUTION` talk in a sentence."),
        code("import rtlab\nprint('hi')", result("hi")),
        code(EXERCISE, result("✅ accept_key: correct"), count=7),
        code("print(2)", result("2"), count=8),
    )
    original = copy.deepcopy(before)
    learner = learner_notebook(before, "lesson")
    assert before == original, "the source notebook was changed"
    assert learner.exercises == [2]
    assert learner.solutions == 1
    after = learner.notebook
    for index in (0, 1, 3):
        assert after["cells"][index] == before["cells"][index]
    assert after["metadata"] == before["metadata"]
    exercise = after["cells"][2]
    assert exercise["outputs"] == [] and exercise["execution_count"] is None
    assert "".join(exercise["source"]) == learner_source(EXERCISE)[0]
    assert isinstance(exercise["source"], list)  # as Jupyter saves it
    assert {
        k: v for k, v in exercise.items() if k not in ("outputs", "execution_count", "source")
    } == {
        k: v
        for k, v in before["cells"][2].items()
        if k not in ("outputs", "execution_count", "source")
    }


def test_markdown_solutions_are_taken_out_too():
    text = (
        "**Exercise.** Why is the mask there?\n"
        "<!-- BEGIN SOLUTION -->\n"
        "So that a proxy cannot be fooled.\n"
        "<!-- END SOLUTION -->\n"
        "```python\n"
        "def f():\n"
        "    # BEGIN SOLUTION\n"
        "    return 1\n"
        "    # END SOLUTION\n"
        "```\n"
    )
    learner = learner_notebook(notebook(markdown(text)))
    assert learner.notebook["cells"][0]["source"] == (
        f"**Exercise.** Why is the mask there?\n```python\ndef f():\n    {PLACEHOLDER}\n```\n"
    )
    assert learner.solutions == 2 and learner.exercises == []


# -- the command ---------------------------------------------------------------------------


def write(folder: Path, name: str, nb: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(json.dumps(nb, indent=1))
    return path


def test_the_command_writes_copies_and_reports(tmp_path, capsys):
    source = tmp_path / "course"
    write(source, "01_a.ipynb", notebook(code(EXERCISE, result("✅ correct"))))
    write(source, "02_b.ipynb", notebook(code("print(1)", result("1"))))
    out = tmp_path / "handout"
    assert cli.main(["learner", str(source), "--out", str(out)]) == 0
    report = capsys.readouterr().out
    assert f"wrote {out / '01_a.ipynb'}: 1 exercise, 1 solution(s) removed" in report
    assert f"wrote {out / '02_b.ipynb'}: 0 exercises, 0 solution(s) removed" in report
    assert "2 learner notebook(s)" in report and "1 exercises, 1 solutions removed" in report
    written = json.loads((out / "01_a.ipynb").read_text())
    assert "BEGIN SOLUTION" not in json.dumps(written)
    assert written["cells"][0]["outputs"] == []
    assert json.loads((out / "02_b.ipynb").read_text()) == json.loads(
        (source / "02_b.ipynb").read_text()
    )


def test_the_default_source_is_the_course(tmp_path, capsys):
    out = tmp_path / "handout"
    assert cli.main(["learner", "--out", str(out)]) == 0
    course = sorted(p.name for p in cli.notebooks_folder().glob("*.ipynb"))
    assert course and sorted(p.name for p in out.glob("*.ipynb")) == course


def test_the_sources_are_never_overwritten(tmp_path, capsys):
    source = tmp_path / "course"
    path = write(source, "01_a.ipynb", notebook(code(EXERCISE)))
    before = path.read_text()
    assert cli.main(["learner", str(source), "--out", str(source), "--force"]) == 1
    assert "would overwrite the source notebook" in capsys.readouterr().err
    assert path.read_text() == before


def test_existing_copies_need_force(tmp_path, capsys):
    source = tmp_path / "course"
    write(source, "01_a.ipynb", notebook(code(EXERCISE)))
    out = tmp_path / "handout"
    write(out, "01_a.ipynb", notebook(code("my own work")))
    assert cli.main(["learner", str(source), "--out", str(out)]) == 1
    assert "exists already" in capsys.readouterr().err
    assert "my own work" in (out / "01_a.ipynb").read_text()
    assert cli.main(["learner", str(source), "--out", str(out), "--force"]) == 0
    assert PLACEHOLDER in (out / "01_a.ipynb").read_text()


def test_unbalanced_markers_write_nothing(tmp_path, capsys):
    source = tmp_path / "course"
    write(source, "01_good.ipynb", notebook(code(EXERCISE)))
    write(source, "02_bad.ipynb", notebook(code("x = 1"), code("# BEGIN SOLUTION\nx = 2\n")))
    out = tmp_path / "handout"
    assert cli.main(["learner", str(source), "--out", str(out)]) == 1
    error = capsys.readouterr().err
    assert f"{source / '02_bad.ipynb'}, cell 2" in error
    assert "has no END SOLUTION" in error and "nothing written" in error
    assert not out.exists()


def test_missing_or_empty_sources_are_clear_errors(tmp_path, capsys):
    assert cli.main(["learner", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 1
    assert "no such folder or notebook" in capsys.readouterr().err
    assert cli.main(["learner", str(tmp_path), "--out", str(tmp_path / "o")]) == 1
    assert "no notebooks" in capsys.readouterr().err
