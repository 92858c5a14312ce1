"""Learner copies: solutions out, everything else as it was; and the ``rtlab learner`` command."""

from __future__ import annotations

import copy
import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from rtlab import cli, handout
from rtlab.learner import (
    ANSWER_SUMMARY,
    JS_PLACEHOLDER,
    PLACEHOLDER,
    SolutionError,
    learner_notebook,
    learner_source,
)

EXERCISE = """\
def accept_key(key):
    # BEGIN SOLUTION
    digest = hashlib.sha1((key + GUID).encode()).digest()
    return base64.b64encode(digest).decode()
    # END SOLUTION


check_accept_key(accept_key)"""


def code(
    source: str, outputs: list | None = None, count: int | None = 3, tags: tuple = ("x",)
) -> dict:
    return {
        "cell_type": "code",
        "execution_count": count,
        "id": f"code-{len(source)}",
        "metadata": {"tags": list(tags)},
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


JS_EXERCISE = """\
browser_client = \"\"\"
const socket = new WebSocket(url);
// BEGIN SOLUTION
socket.addEventListener("open", () => socket.send("Hello Server!"));
// END SOLUTION
function later() {
  // BEGIN SOLUTION
  return 1;
  // END SOLUTION
}
\"\"\"
rtlab.js_exercise(server, "browser_client", browser_client)"""


def test_a_javascript_solution_in_a_string_becomes_a_throw_at_its_indentation():
    source, count = learner_source(JS_EXERCISE)
    assert count == 2
    assert source.splitlines() == [
        'browser_client = """',
        "const socket = new WebSocket(url);",
        JS_PLACEHOLDER,
        "function later() {",
        f"  {JS_PLACEHOLDER}",
        "}",
        '"""',
        'rtlab.js_exercise(server, "browser_client", browser_client)',
    ]
    compile(source, "learner", "exec")  # the Python around it still runs
    assert "not done yet" in JS_PLACEHOLDER  # what the browser check answers with its nudge


def test_the_exercise_cell_of_a_javascript_solution_loses_its_outputs():
    copy_ = learner_notebook(notebook(code(JS_EXERCISE, result("<JavaScript exercise>"))))
    assert copy_.exercises == [0]
    assert copy_.notebook["cells"][0]["outputs"] == []
    assert JS_PLACEHOLDER in "".join(copy_.notebook["cells"][0]["source"])


def test_saved_widget_state_which_holds_a_boxs_solution_is_dropped():
    course = notebook(code(JS_EXERCISE, result("<JavaScript exercise>")))
    state = {"state": {"m1": {"state": {"code": "// BEGIN SOLUTION\nsolution\n"}}}}
    course["metadata"]["widgets"] = {"application/vnd.jupyter.widget-state+json": state}
    copied = learner_notebook(course).notebook
    assert "widgets" not in copied["metadata"]
    assert "SOLUTION" not in json.dumps(copied)
    assert copied["metadata"]["kernelspec"] == course["metadata"]["kernelspec"]
    assert "widgets" in course["metadata"]  # the course notebook is not changed


def test_a_python_begin_does_not_end_with_a_javascript_end():
    with pytest.raises(SolutionError, match="END SOLUTION on line 3 does not match"):
        learner_source("# BEGIN SOLUTION\nx\n// END SOLUTION\n", "somewhere")


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


def test_predict_then_run_cells_lose_their_outputs_and_nothing_else():
    before = notebook(
        markdown("**Predict, then run**: what does the server answer?"),
        code("print(ws.recv())", result("Echo: hi"), count=4, tags=("predict",)),
        code("print(len(frame))", result("6"), count=5, tags=("slow", "predict")),
        code("print('kept')", result("kept"), count=6, tags=("predicted",)),
        {**markdown("tagged, but not code"), "metadata": {"tags": ["predict"]}},
        markdown("## 2 · The next section"),
        code(EXERCISE, result("✅ correct"), tags=("predict",)),
    )
    learner = learner_notebook(before)
    after = learner.notebook["cells"]
    assert learner.predictions == [1, 2, 6] and learner.exercises == [6]
    for index in (1, 2, 6):
        assert after[index]["outputs"] == [] and after[index]["execution_count"] is None
    for index in (1, 2):
        assert after[index]["source"] == before["cells"][index]["source"]
        assert after[index]["metadata"] == before["cells"][index]["metadata"]
    assert after[4] == before["cells"][4] and after[5] == before["cells"][5]
    assert before["cells"][1]["outputs"] == result("Echo: hi"), "the source was changed"


def test_what_tells_a_predictions_answer_is_shut_until_the_learner_opens_it():
    answer = "Nine went through, the other five came back as `error`.\n"
    before = notebook(
        markdown("**Predict, then run**: how many get through?"),
        code("flood()", result("sent 14"), count=1, tags=("predict",)),
        markdown(answer),
        code("print(bob.seen)", result("bob has seen 10"), count=2),
        markdown("More about it, in the same section."),
        code("print(1)", result("1"), count=3),
        markdown("## 2 · The next section"),
        code("print(2)", result("2"), count=4),
    )
    learner = learner_notebook(before)
    after = learner.notebook["cells"]
    assert learner.answers == [2]
    assert after[2]["source"] == (
        f"<details><summary>{ANSWER_SUMMARY}</summary>\n\n{answer.strip()}\n\n</details>\n"
    )
    for index in (1, 3, 5):  # the rest of the section: an output may tell the answer
        assert after[index]["outputs"] == [] and after[index]["execution_count"] is None
        assert after[index]["source"] == before["cells"][index]["source"]
    assert after[4] == before["cells"][4], "only the answer right after the cell is folded"
    assert after[6:] == before["cells"][6:], "the next section keeps its outputs"


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
    assert "2 learner notebook(s)" in report and "1 exercise, 1 solution removed" in report
    written = json.loads((out / "01_a.ipynb").read_text())
    assert "BEGIN SOLUTION" not in json.dumps(written)
    assert written["cells"][0]["outputs"] == []
    assert json.loads((out / "02_b.ipynb").read_text()) == json.loads(
        (source / "02_b.ipynb").read_text()
    )


def test_copies_are_as_readable_as_any_file_the_user_makes(tmp_path, capsys):
    # A course folder shared with a class: mkstemp's 0600 would lock the students out.
    source = tmp_path / "course"
    write(source, "01_a.ipynb", notebook(code(EXERCISE, result("✅ correct"))))
    old = os.umask(0o022)
    try:
        assert cli.main(["learner", str(source), "--out", str(tmp_path / "shared")]) == 0
        os.umask(0o077)
        assert cli.main(["learner", str(source), "--out", str(tmp_path / "mine")]) == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "shared" / "01_a.ipynb").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "mine" / "01_a.ipynb").stat().st_mode) == 0o600


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


# -- a learner's own copies: made once, brought up to date, never overwritten -------------


def run_update(source: Path, out: Path, capsys) -> str:
    assert cli.main(["learner", str(source), "--out", str(out), "--update"]) == 0
    return capsys.readouterr().out


def edit(path: Path, change) -> None:  # type: ignore[no-untyped-def]
    nb = json.loads(path.read_text())
    change(nb["cells"])
    path.write_text(json.dumps(nb, indent=1))


@pytest.fixture
def course(tmp_path: Path) -> Path:
    source = tmp_path / "course"
    write(source, "01_a.ipynb", notebook(code(EXERCISE, result("✅ correct"))))
    write(source, "02_b.ipynb", notebook(code("print(1)", result("1"))))
    return source


def test_update_makes_the_copies_and_a_manifest(course, tmp_path, capsys):
    out = tmp_path / "mine"
    report = run_update(course, out, capsys)
    assert f"added {out / '01_a.ipynb'}" in report and f"added {out / '02_b.ipynb'}" in report
    assert report.splitlines()[-1] == f"{out}: 2 added, 0 updated, 0 skipped, 0 already up to date"
    assert PLACEHOLDER in (out / "01_a.ipynb").read_text()
    manifest = json.loads((out / handout.MANIFEST).read_text())["copies"]
    assert set(manifest) == {"01_a.ipynb", "02_b.ipynb"}
    assert manifest["01_a.ipynb"]["sources"] == handout.sources_hash(
        json.loads((out / "01_a.ipynb").read_text())
    )
    assert (
        run_update(course, out, capsys)
        .splitlines()[-1]
        .endswith("0 added, 0 updated, 0 skipped, 2 already up to date")
    )


def test_a_copy_the_learner_only_ran_is_replaced_when_the_course_changes(course, tmp_path, capsys):
    out = tmp_path / "mine"
    run_update(course, out, capsys)
    ran = out / "02_b.ipynb"
    edit(ran, lambda cells: cells[0].update(outputs=result("1 (my run)")))
    assert "0 updated" in run_update(course, out, capsys)
    assert "my run" in ran.read_text(), "an unchanged course must not replace a copy"
    edit(course / "02_b.ipynb", lambda cells: cells[0].update(source=["print(2)"]))
    report = run_update(course, out, capsys)
    assert f"updated {ran}: the course changed it and you had not edited it" in report
    assert json.loads(ran.read_text())["cells"][0]["source"] == ["print(2)"]
    assert "my run" not in ran.read_text()


def test_an_edited_copy_is_kept_and_named_with_the_reason(course, tmp_path, capsys):
    out = tmp_path / "mine"
    run_update(course, out, capsys)
    mine = out / "01_a.ipynb"
    edit(mine, lambda cells: cells[0].update(source=["def accept_key(key):\n", "    return 42"]))
    mine_before = mine.read_text()
    assert "skipped" not in run_update(course, out, capsys).replace("0 skipped", "")
    edit(course / "01_a.ipynb", lambda cells: cells.append(code("print('new cell')")))
    write(course, "03_c.ipynb", notebook(code("print(3)")))
    report = run_update(course, out, capsys)
    assert f"skipped {mine}: you edited it, and the course changed it since" in report
    assert "rename your copy" in report
    assert f"added {out / '03_c.ipynb'}" in report
    assert report.splitlines()[-1].endswith("1 added, 0 updated, 1 skipped, 1 already up to date")
    assert mine.read_text() == mine_before
    assert "skipped" in run_update(course, out, capsys), "still behind the course: said again"


def test_copies_without_a_record_are_kept_unless_their_cells_are_the_courses(
    course, tmp_path, capsys
):
    out = tmp_path / "mine"
    assert cli.main(["learner", str(course), "--out", str(out)]) == 0
    (out / handout.MANIFEST).unlink()  # e.g. copies unzipped from an instructor's handout
    edit(out / "01_a.ipynb", lambda cells: cells[0].update(outputs=result("ran it")))
    edit(out / "02_b.ipynb", lambda cells: cells[0].update(source=["my own"]))
    (out / "03_c.ipynb").write_text("{not json")
    (out / "04_d.ipynb").write_text("[1, 2]")  # JSON, but not a notebook
    write(course, "03_c.ipynb", notebook(code("print(3)")))
    write(course, "04_d.ipynb", notebook(code("print(4)")))
    report = run_update(course, out, capsys)
    assert f"skipped {out / '02_b.ipynb'}: rtlab has no record of writing it" in report
    assert f"skipped {out / '03_c.ipynb'}: cannot read it" in report
    assert f"skipped {out / '04_d.ipynb'}: cannot read it" in report
    assert "ran it" in (out / "01_a.ipynb").read_text()
    assert report.splitlines()[-1].endswith("0 added, 0 updated, 3 skipped, 1 already up to date")
    assert "01_a.ipynb" in json.loads((out / handout.MANIFEST).read_text())["copies"]
    assert (out / "03_c.ipynb").read_text() == "{not json"


def test_update_refuses_bad_sources_and_writes_nothing(course, tmp_path, capsys):
    out = tmp_path / "mine"
    write(course, "09_bad.ipynb", notebook(code("# BEGIN SOLUTION\nx = 2\n")))
    assert cli.main(["learner", str(course), "--out", str(out), "--update"]) == 1
    assert "has no END SOLUTION" in capsys.readouterr().err
    assert not out.exists()
    for text in ('{"cells": [', '"a string"'):
        (course / "09_bad.ipynb").write_text(text)
        assert cli.main(["learner", str(course), "--out", str(out), "--update"]) == 1
        error = capsys.readouterr().err
        assert f"cannot read {course / '09_bad.ipynb'}" in error and "nothing written" in error
        assert not out.exists()


@pytest.mark.parametrize("mode", [[], ["--update"], ["--force"]])
def test_an_out_that_is_a_file_is_a_clear_error(course, tmp_path, capsys, mode):
    out = tmp_path / "mine.txt"
    out.write_text("notes")
    assert cli.main(["learner", str(course), "--out", str(out), *mode]) == 1
    assert f"--out {out} is a file, not a folder" in capsys.readouterr().err
    assert out.read_text() == "notes"


def test_update_and_force_do_not_go_together(course, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit:
        cli.main(["learner", str(course), "--update", "--force"])
    assert exit.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_existing_copies_point_to_update_first(course, tmp_path, capsys):
    out = tmp_path / "mine"
    run_update(course, out, capsys)
    assert cli.main(["learner", str(course), "--out", str(out)]) == 1
    assert "--update adds new lessons and keeps your edits" in capsys.readouterr().err


def test_the_learner_folder_sits_beside_the_checkouts_notebooks(tmp_path, monkeypatch):
    monkeypatch.delenv(handout.FOLDER_VARIABLE, raising=False)
    assert handout.learner_folder() == handout.REPO_NOTEBOOKS.parent / "learner"
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", "learner/00_welcome.ipynb"],
        cwd=handout.REPO_NOTEBOOKS.parent,
    )
    assert ignored.returncode == 0, "git must ignore learner/ in a checkout"
    monkeypatch.setattr(handout, "REPO_NOTEBOOKS", tmp_path / "site-packages" / "notebooks")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert handout.learner_folder() == tmp_path / "home" / "rtlab-learner"  # pip-installed
    monkeypatch.setenv(handout.FOLDER_VARIABLE, "~/class/mine")
    assert handout.learner_folder() == tmp_path / "home" / "class" / "mine"


def test_the_default_out_is_the_learner_folder(course, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(handout.FOLDER_VARIABLE, str(tmp_path / "mine"))
    assert cli.main(["learner", str(course), "--update"]) == 0
    assert sorted(p.name for p in (tmp_path / "mine").glob("*.ipynb")) == [
        "01_a.ipynb",
        "02_b.ipynb",
    ]
