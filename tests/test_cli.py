"""The rtlab command, run as a learner or an instructor would run it."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import nbformat
import pytest
from websockets.exceptions import ConnectionClosedOK, InvalidStatus
from websockets.sync.client import connect

from rtlab import cli, handout
from rtlab.learner import PLACEHOLDER

RTLAB = [sys.executable, "-m", "rtlab.cli"]
ROOT = Path(__file__).resolve().parent.parent
TOKEN = ["--IdentityProvider.token=t"]


def start(*args: str, **options: object) -> subprocess.Popen[str]:
    """``python -m rtlab.cli ARGS``, its output (stdout and stderr) read line by line."""
    return subprocess.Popen(
        [*RTLAB, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **options
    )


def wait_for_line(process: subprocess.Popen[str], pattern: str, timeout: float = 60) -> re.Match:
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        seen.append(line)
        if match := re.search(pattern, line):
            return match
    process.kill()
    raise AssertionError(f"no line matching {pattern!r} in:\n{''.join(seen)}")


@pytest.fixture
def serve():
    process = start("serve", "--port", "0")
    yield process
    if process.poll() is None:
        process.kill()
        process.wait()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_echoes_and_closes_1001_on_signal(serve, sig):
    url = wait_for_line(serve, r"echo\s+(ws://127\.0\.0\.1:\d+/echo)").group(1)
    with connect(url) as ws:
        ws.send("hi")
        assert ws.recv(timeout=5) == "Echo: hi"
        serve.send_signal(sig)
        with pytest.raises(ConnectionClosedOK):
            ws.recv(timeout=10)
        assert ws.close_code == 1001
    assert serve.wait(timeout=10) == 0
    rest = serve.stdout.read()
    assert "closing 1 connection(s) with 1001" in rest
    assert "stopped" in rest
    assert "Traceback" not in rest


def test_serve_reports_a_busy_port(serve):
    port = wait_for_line(serve, r"on http://127\.0\.0\.1:(\d+)/").group(1)
    second = subprocess.run(
        [*RTLAB, "serve", "--port", port], capture_output=True, text=True, timeout=30
    )
    assert second.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in second.stderr
    assert "Traceback" not in second.stderr


def test_serve_rejects_a_bad_port():
    result = subprocess.run(
        [*RTLAB, "serve", "--port", "70000"], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert "--port must be between 0 and 65535" in result.stderr


def get_json(url: str) -> dict:
    """GET ``url`` as JSON, retrying while the port is not listening yet."""
    for _ in range(100):  # the URL is logged a moment before the port listens
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                return json.load(response)
        except urllib.error.URLError:
            time.sleep(0.1)
    raise AssertionError(f"nothing answered {url}")


def test_lab_starts_jupyterlab_on_the_learners_copy(tmp_path):
    mine = tmp_path / "learner"
    env = {
        **os.environ,
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "BROWSER": "true",
        "RTLAB_LEARNER_DIR": str(mine),
    }
    options = ["--no-browser", "--ServerApp.ip=127.0.0.1", "--ServerApp.port=0", *TOKEN]
    process = start("lab", *options, env=env)
    try:
        wait_for_line(process, r"Made your copies of \d+ lesson\(s\) in ")
        wait_for_line(process, re.escape(f"Starting JupyterLab on {mine}"))
        opened = r"http://127\.0\.0\.1:(\d+)/lab/tree/00_welcome\.ipynb\?token="
        port = wait_for_line(process, opened).group(1)
        served = get_json(f"http://127.0.0.1:{port}/api/contents/00_welcome.ipynb?token=t")
        assert served["path"] == "00_welcome.ipynb" and served["type"] == "notebook"
        copy = json.loads((mine / "00_welcome.ipynb").read_text())
        assert handout.sources_hash(served["content"]) == handout.sources_hash(copy)
        assert "# BEGIN SOLUTION" not in json.dumps(served["content"])
        assert PLACEHOLDER in json.dumps(served["content"])
    finally:
        process.terminate()
        process.wait(timeout=30)


class Exec:
    """Stands in for os.execv: records the command line JupyterLab would have started with."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.argv: list[str] | None = None
        monkeypatch.setattr(os, "execv", self)

    def __call__(self, path: str, argv: list[str]) -> None:
        assert path == sys.executable
        self.argv = argv


@pytest.fixture
def checkout(tmp_path, monkeypatch):
    """A checkout whose course is two small lessons, one with an exercise and a prediction."""
    monkeypatch.delenv(handout.FOLDER_VARIABLE, raising=False)
    monkeypatch.setattr(handout, "REPO_NOTEBOOKS", tmp_path / "notebooks")
    course = tmp_path / "notebooks"
    course.mkdir()
    solved = "def f():\n    # BEGIN SOLUTION\n    return 1\n    # END SOLUTION\n"
    predict = nbformat.v4.new_code_cell("print(6 * 7)", metadata={"tags": ["predict"]})
    predict.outputs = [nbformat.v4.new_output("stream", name="stdout", text="42\n")]
    lessons = {
        "00_welcome.ipynb": [nbformat.v4.new_code_cell(solved), predict],
        "01_next.ipynb": [nbformat.v4.new_code_cell("print(1)")],
    }
    for name, cells in lessons.items():
        nbformat.write(nbformat.v4.new_notebook(cells=cells), course / name)
    return tmp_path


def test_lab_argv_opens_the_first_lesson_and_passes_extra_options_last(tmp_path):
    (tmp_path / "00_welcome.ipynb").write_text("{}")
    argv = cli.lab_argv(tmp_path, ["--port", "9999"])
    assert argv[:4] == [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={tmp_path}"]
    assert argv[4:7] == ["--LabApp.default_url=/lab/tree/00_welcome.ipynb", "--port", "9999"]
    assert argv[7:] == (["--allow-root"] if os.geteuid() == 0 else [])
    (tmp_path / "00_welcome.ipynb").unlink()
    assert not any("default_url" in arg for arg in cli.lab_argv(tmp_path, []))


def test_lab_makes_the_learners_copies_then_opens_them(checkout, monkeypatch, capsys):
    started = Exec(monkeypatch)
    assert cli.main(["lab", "--no-browser"]) == 1  # execv returned: only in this test
    mine = checkout / "learner"
    out = capsys.readouterr().out.splitlines()
    assert out == [
        f"Made your copies of 2 lesson(s) in {mine} (solutions taken out): edit them freely, "
        "rtlab never overwrites your work.",
        f"Starting JupyterLab on {mine}",
    ]
    assert started.argv == cli.lab_argv(mine, ["--no-browser"])
    welcome = nbformat.read(mine / "00_welcome.ipynb", as_version=4)
    assert PLACEHOLDER in welcome.cells[0].source
    assert welcome.cells[1].outputs == [], "a predict cell's output must be cleared"
    assert (mine / handout.MANIFEST).is_file()


def test_lab_later_brings_the_copies_up_to_date_and_says_so_in_one_line(
    checkout, monkeypatch, capsys
):
    Exec(monkeypatch)
    cli.main(["lab"])
    mine, course = checkout / "learner", checkout / "notebooks"
    capsys.readouterr()
    cli.main(["lab"])
    assert capsys.readouterr().out.splitlines()[0] == f"Your copies in {mine}: up to date."
    edited = nbformat.read(mine / "00_welcome.ipynb", as_version=4)
    edited.cells[0].source = "def f():\n    return 1"
    nbformat.write(edited, mine / "00_welcome.ipynb")
    for name in ("00_welcome.ipynb", "01_next.ipynb"):
        lesson = nbformat.read(course / name, as_version=4)
        lesson.cells.append(nbformat.v4.new_markdown_cell("A new paragraph."))
        nbformat.write(lesson, course / name)
    nbformat.write(nbformat.v4.new_notebook(), course / "02_new.ipynb")
    cli.main(["lab"])
    assert capsys.readouterr().out.splitlines()[0] == (
        f"Your copies in {mine}: added 02_new.ipynb; updated 01_next.ipynb (changed in the "
        "course, not by you); kept 00_welcome.ipynb as they are though the course changed "
        "(rtlab learner --update says why)."
    )
    assert nbformat.read(mine / "00_welcome.ipynb", as_version=4).cells[0].source == (
        "def f():\n    return 1"
    )
    assert "A new paragraph." in (mine / "01_next.ipynb").read_text()


def test_lab_solutions_opens_the_course_and_writes_no_copy(checkout, monkeypatch, capsys):
    started = Exec(monkeypatch)
    cli.main(["lab", "--solutions", "--ServerApp.port=0"])
    course = checkout / "notebooks"
    assert started.argv == cli.lab_argv(course, ["--ServerApp.port=0"])
    assert capsys.readouterr().out == f"Starting JupyterLab on {course}\n"
    assert not (checkout / "learner").exists()


def test_lab_stops_with_a_clear_error_before_starting_jupyterlab(checkout, monkeypatch, capsys):
    started = Exec(monkeypatch)
    broken = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("# BEGIN SOLUTION")])
    nbformat.write(broken, checkout / "notebooks" / "05_broken.ipynb")
    assert cli.main(["lab"]) == 1
    error = capsys.readouterr().err
    assert error.startswith("rtlab lab: ") and "has no END SOLUTION; nothing written" in error
    assert started.argv is None and not (checkout / "learner").exists()
    (checkout / "notebooks" / "05_broken.ipynb").unlink()
    (checkout / "learner").write_text("a file")
    assert cli.main(["lab"]) == 1
    assert "is a file, not a folder" in capsys.readouterr().err
    assert started.argv is None


def test_lab_without_a_course_opens_the_copies_as_they_are(tmp_path, monkeypatch, capsys):
    """rtlab installed by pip, a handout unzipped in the learner folder: no notebooks/."""
    started = Exec(monkeypatch)
    monkeypatch.setattr(handout, "REPO_NOTEBOOKS", tmp_path / "site-packages" / "notebooks")
    mine = tmp_path / "handout"
    monkeypatch.setenv(handout.FOLDER_VARIABLE, str(mine))
    monkeypatch.chdir(tmp_path)
    assert cli.main(["lab"]) == 1
    assert "rtlab lab: no course notebooks found in " in capsys.readouterr().err
    assert started.argv is None
    mine.mkdir()
    nbformat.write(nbformat.v4.new_notebook(), mine / "00_welcome.ipynb")
    monkeypatch.chdir(mine)  # its notebooks are the copies themselves, not a course
    cli.main(["lab"])
    assert capsys.readouterr().out.splitlines()[0] == (
        f"Your copies in {mine}: no course notebooks found to update them from "
        "(no notebooks/ here); opening them as they are."
    )
    assert started.argv == cli.lab_argv(mine, [])
    assert sorted(p.name for p in mine.iterdir()) == ["00_welcome.ipynb"]


def test_the_readme_tells_of_the_folders_and_options_rtlab_has():
    readme = (ROOT / "README.md").read_text()
    commands = cli.parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    for command in ("lab", "learner", "doctor"):
        [row] = [line for line in readme.splitlines() if line.startswith(f"| `rtlab {command}")]
        known = commands[command]._option_string_actions
        synopsis = re.split(r"(?<!\\)\|", row)[1]  # a cell may hold an escaped \|
        for flag in re.findall(r"(?<![\w-])--[a-z][a-z-]*", synopsis):
            assert flag in known, f"README: rtlab {command} has no {flag}"
    assert f"`{handout.FOLDER_VARIABLE}=" in readme and "`~/rtlab-learner`" in readme
    assert "`learner/`: your copies" in readme and "`rtlab lab --solutions`" in readme
    make = subprocess.run(
        ["make", "-n", "--no-print-directory", "lab", "learner"],  # no make[1] lines
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout.splitlines()
    assert make[-2:] == [".venv/bin/rtlab lab", ".venv/bin/rtlab learner --update"], make


def test_serve_lists_every_endpoint_and_says_who_may_join():
    process = start("serve", "--port", "0", "--anonymous")
    try:
        wait_for_line(process, r"events\s+ws://127\.0\.0\.1:\d+/ws\?user=NAME")
        wait_for_line(process, r"Anyone who can reach this port may join")
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0


def test_serve_sets_the_connection_limits_per_user_and_per_address():
    process = start(
        "serve", "--port", "0", "--max-connections-per-user", "1",
        "--max-connections-per-address", "2",
    )  # fmt: skip
    try:
        base = wait_for_line(process, r"events\s+(ws://127\.0\.0\.1:\d+/ws)\?").group(1)
        with connect(f"{base}?user=alice") as alice, connect(f"{base}?user=bob") as bob:
            with pytest.raises(InvalidStatus) as second_tab:
                connect(f"{base}?user=bob")
            assert second_tab.value.response.status_code == 429
            assert b"bob already has 1 connections open" in second_tab.value.response.body
            with pytest.raises(InvalidStatus) as third_person:
                connect(f"{base}?user=carol")
            assert third_person.value.response.status_code == 429
            assert b"2 connections are open from 127.0.0.1" in third_person.value.response.body
            assert alice.protocol.state.name == bob.protocol.state.name == "OPEN"
        with connect(f"{base}?user=carol"):  # once the others left, there is room again
            pass
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0


@pytest.mark.parametrize("flag", ["--max-connections-per-user", "--max-connections-per-address"])
def test_serve_rejects_a_connection_limit_below_one(flag):
    result = subprocess.run(
        [*RTLAB, "serve", "--port", "0", flag, "0"], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert f"{flag} must be at least 1" in result.stderr
