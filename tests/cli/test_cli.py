"""The rtlab command, run as a learner or an instructor would run it."""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import os
import re
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import nbformat
import pytest
from websockets.exceptions import ConnectionClosedError, ConnectionClosedOK, InvalidStatus
from websockets.sync.client import connect

from rtlab import cli, handout, tls
from rtlab.aio.client import EventClient
from rtlab.learner import PLACEHOLDER

RTLAB = [sys.executable, "-m", "rtlab.cli"]
ROOT = Path(__file__).resolve().parents[2]
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


def say(base: str, text: str) -> int:
    """alice sends ``text`` to the lobby of the server at ``base``; the seq of the ack."""

    async def main() -> int:
        alice = await EventClient.connect(base, "alice")
        await alice.emit("join-room", "lobby", ack=True)
        ack = await alice.emit("send-message", {"roomId": "lobby", "message": text}, ack=True)
        await alice.close()
        return ack["seq"]

    return asyncio.run(asyncio.wait_for(main(), 30))


def test_serve_refuses_a_data_dir_in_use_and_the_first_server_loses_nothing(tmp_path):
    """The same command run again, say to check that the first still runs: one line and
    exit 1, on another port as on the same, and the first's file is left to it."""
    journal = tmp_path / "history.jsonl"
    first = start("serve", "--port", "0", "--data-dir", str(tmp_path))
    try:
        base = wait_for_line(first, r"events\s+(ws://127\.0\.0\.1:\d+)/ws").group(1)
        assert say(base, "m1") == 1
        inode = journal.stat().st_ino
        for port in ("0", base.rpartition(":")[2]):
            second = subprocess.run(
                [*RTLAB, "serve", "--port", port, "--data-dir", str(tmp_path)],
                capture_output=True,
                text=True,
                timeout=30,
            )
            assert (second.returncode, second.stdout) == (1, "")
            assert second.stderr == (
                f"rtlab serve: {tmp_path} is in use by another lab server (pid {first.pid}): "
                "stop it first, or use another --data-dir\n"
            )
        assert journal.stat().st_ino == inode  # the file the first server appends to
        assert say(base, "m2") == 2
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=30) == 0
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()

    again = start("serve", "--port", "0", "--data-dir", str(tmp_path))  # the lock was let go
    try:
        base = wait_for_line(again, r"events\s+(ws://127\.0\.0\.1:\d+)/ws").group(1)
        assert say(base, "m3") == 3  # m1 and m2 came back: the numbering goes on
    finally:
        again.terminate()
        assert again.wait(timeout=30) == 0
    lines = [json.loads(line) for line in journal.read_bytes().splitlines()]
    assert [line["payload"]["message"] for line in lines] == ["m1", "m2", "m3"]


def test_serve_rejects_a_bad_port():
    result = subprocess.run(
        [*RTLAB, "serve", "--port", "70000"], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert result.stderr.startswith("usage: rtlab serve ")
    assert "rtlab serve: error: argument --port: must be between 0 and 65535, got 70000" in (
        result.stderr
    )


def get_json(url: str) -> dict:
    """GET ``url`` as JSON, retrying while the port is not listening yet."""
    for _ in range(100):  # the URL is logged a moment before the port listens
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                return json.load(response)
        except urllib.error.URLError:
            time.sleep(0.1)
    raise AssertionError(f"nothing answered {url}")


@pytest.mark.slow
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


@pytest.mark.parametrize(
    ("flags", "allowed"), [((), cli.CLASS_MAX_SIZE), (("--max-size", str(2**20)), 2**20)]
)
def test_serve_closes_a_message_over_its_max_size_with_1009(flags, allowed):
    """A class's server reads 64 KiB at most by default: parsing a compressed frame that
    inflates to a megabyte of JSON costs the server before any rate limit counts it."""
    process = start("serve", "--port", "0", *flags)
    try:
        url = wait_for_line(process, r"echo\s+(ws://127\.0\.0\.1:\d+/echo)").group(1)
        with connect(url, max_size=None) as ws:
            ws.send("a" * (allowed - 6))  # "Echo: " and the text: as much as it takes
            assert ws.recv(timeout=10) == "Echo: " + "a" * (allowed - 6)
            ws.send("a" * (allowed + 1))
            with pytest.raises(ConnectionClosedError):
                ws.recv(timeout=10)
            assert ws.protocol.close_rcvd.code == 1009
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0


def test_serve_history_window_is_how_far_back_a_joiner_catches_up(tmp_path):
    process = start(
        "serve", "--port", "0", "--data-dir", str(tmp_path), "--history-window", "1"
    )  # fmt: skip
    try:
        base = wait_for_line(process, r"events\s+(ws://127\.0\.0\.1:\d+/ws)\?").group(1)
        wait_for_line(process, rf"Room history \(the last 1 s of each room\) is kept in {tmp_path}")

        def join(user: str) -> dict:
            with connect(f"{base}?user={user}") as ws:
                ws.send(json.dumps({"event": "join-room", "data": "t1", "id": 1}))
                if user == "ann":
                    data = {"roomId": "t1", "message": "hi"}
                    ws.send(json.dumps({"event": "send-message", "data": data, "id": 2}))
                while "ack" not in (reply := json.loads(ws.recv(timeout=5))) or reply["ack"] != 1:
                    pass
                return reply["data"]

        join("ann")
        assert [m["message"] for m in join("bob")["history"]] == ["hi"]
        time.sleep(1.5)  # past the window: the message is no longer replayed
        assert join("cy")["history"] == []
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0


@pytest.mark.parametrize("flag", ["--max-connections-per-user", "--max-connections-per-address"])
def test_serve_rejects_a_connection_limit_below_one(flag):
    result = subprocess.run(
        [*RTLAB, "serve", "--port", "0", flag, "0"], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert f"rtlab serve: error: argument {flag}: must be at least 1, got 0" in result.stderr


def run_rtlab(*args: str, module: str = "rtlab.cli") -> subprocess.CompletedProcess[str]:
    """``python -m MODULE ARGS`` to its end, in an 80-column terminal."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "80"},
    )


def test_python_m_rtlab_is_the_rtlab_command_and_tells_its_version():
    result = run_rtlab("--version", module="rtlab")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"rtlab {importlib.metadata.version('rtlab')}\n"
    assert run_rtlab("token", "--user", "ada", "--secret", "s", module="rtlab").returncode == 0


COMMANDS = ("serve", "token", "lab", "doctor", "learner", "bench")


def test_the_top_level_help_lists_every_command_on_one_plain_line():
    result = run_rtlab("--help", module="rtlab")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    listed = {}
    for line, after in zip(lines, [*lines[1:], ""], strict=True):
        if match := re.fullmatch(r"    ([a-z]+) +(\S.*)", line):
            assert not after.startswith("      "), f"{match[1]}'s description wraps: {after!r}"
            listed[match[1]] = match[2]
    assert sorted(listed) == sorted(COMMANDS)
    assert set(cli.parser()._subparsers._group_actions[0].choices) == set(COMMANDS)  # type: ignore[union-attr]
    assert "`" not in result.stdout, "help is plain text, not Markdown or reST"
    assert "rtlab COMMAND --help" in result.stdout


def test_no_command_prints_the_help_as_a_usage_error():
    result = run_rtlab(module="rtlab")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("usage: rtlab ") and "    serve " in result.stderr


def test_a_bad_ttl_is_a_usage_error_of_rtlab_token_not_a_traceback():
    result = run_rtlab("token", "--secret", "s", "--user", "ada", "--ttl", "-1")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines()[0].startswith("usage: rtlab token ")
    assert result.stderr.splitlines()[-1] == (
        "rtlab token: error: argument --ttl: must be more than 0 seconds, got -1"
    )


# Every numeric option of every command, with values it must refuse and the reason given.
BAD_NUMBERS = {
    ("serve", "--port"): {"70000": "must be between 0 and 65535, got 70000",
                          "-1": "must be between 0 and 65535, got -1",
                          "http": "must be a whole number, got 'http'"},
    ("serve", "--rate-limit"): {"junk": "must be RATE/BURST", "10": "must be RATE/BURST",
                                "0/50": "must be RATE/BURST", "10/0": "must be RATE/BURST",
                                "inf/5": "must be RATE/BURST"},
    ("serve", "--workers"): {"0": "must be at least 1, got 0",
                             "1.5": "must be a whole number, got '1.5'"},
    ("serve", "--max-connections-per-user"): {"0": "must be at least 1, got 0"},
    ("serve", "--max-size"): {"100": "must be at least 1024, got 100",
                              "64k": "must be a whole number, got '64k'"},
    ("serve", "--max-connections-per-address"): {"-3": "must be at least 1, got -3"},
    ("serve", "--max-handshakes-per-address"): {"0": "must be at least 1, got 0"},
    ("serve", "--handshake-timeout"): {"0": "must be more than 0 seconds, got 0",
                                       "nan": "must be a finite number, got 'nan'"},
    ("serve", "--ping-interval"): {"-1": "must be 0 (off) or more seconds, got -1",
                                   "inf": "must be a finite number, got 'inf'"},
    ("serve", "--ping-timeout"): {"0": "must be more than 0 seconds, got 0"},
    ("serve", "--history-window"): {"0": "must be more than 0 seconds, got 0",
                                    "inf": "must be a finite number, got 'inf'"},
    ("serve", "--compression"): {"-5": "must be off, on or a size in bytes (0 or more)",
                                 "big": "must be off, on or a size in bytes (0 or more)"},
    ("token", "--ttl"): {"-1": "must be more than 0 seconds, got -1",
                         "0": "must be more than 0 seconds, got 0",
                         "1e999": "must be a finite number, got '1e999'"},
    ("bench", "--workers"): {"0": "must be at least 1, got 0"},
}  # fmt: skip
REQUIRED = {"token": ["--user", "ada", "--secret", "s"]}


def numeric_options() -> set[tuple[str, str]]:
    """Every option of every command whose value is a number, or numbers (RATE/BURST)."""
    commands = cli.parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    found = set()
    for name, command in commands.items():
        for action in command._actions:
            numeric = action.type in (int, float) or getattr(action.type, "__module__", "") == (
                "rtlab.cliargs"
            )
            if numeric and action.option_strings:
                found.add((name, max(action.option_strings, key=len)))
    return found


def test_every_numeric_option_is_checked_as_it_is_parsed():
    assert numeric_options() == set(BAD_NUMBERS), "add its bad values to BAD_NUMBERS"


@pytest.mark.parametrize(
    ("command", "flag", "value", "reason"),
    [(c, f, v, r) for (c, f), bad in BAD_NUMBERS.items() for v, r in bad.items()],
)
def test_a_bad_number_is_a_usage_error_of_its_command(command, flag, value, reason, capsys):
    with pytest.raises(SystemExit) as exit:
        cli.main([command, *REQUIRED.get(command, []), f"{flag}={value}"])
    assert exit.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"usage: rtlab {command} ")
    assert f"rtlab {command}: error: argument {flag}: {reason}" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["serve", "--shout"], "unrecognized arguments: --shout"),
        (["serve", "--workers", "2"], "--workers needs --redis"),
        (["serve", "--redis", "localhost:6379"], "--redis must look like redis://HOST:PORT/DB"),
        (["serve", "--keyfile", "k.pem"], "--certfile and --keyfile go together"),
        (
            ["serve", "--redis", "redis://127.0.0.1:6379/0", "--data-dir", "class"],
            "--data-dir keeps what Redis keeps with --redis",
        ),
        (["token", "--ttl", "60"], "the following arguments are required: --user"),
        (
            ["learner", "--update", "--force"],
            "argument --force: not allowed with argument --update",
        ),
        (["doctor", "--now"], "unrecognized arguments: --now"),
        (["token", "--user", "ada"], "give --secret (or set RTLAB_SECRET)"),
        (["token", "--secret", "s", "--user", "ada", "--user", "a b"], "not a valid user name"),
    ],
)
def test_errors_after_the_command_name_show_that_commands_usage(argv, message, capsys, monkeypatch):
    monkeypatch.delenv("RTLAB_SECRET", raising=False)
    with pytest.raises(SystemExit) as exit:
        cli.main(argv)
    assert exit.value.code == 2
    out, err = capsys.readouterr()
    assert err.startswith(f"usage: rtlab {argv[0]} ")
    assert f"rtlab {argv[0]}: error: {message}" in err
    assert out == "", "nothing printed before the error (no token)"


def test_good_numbers_reach_the_server_as_numbers():
    args = cli.parser().parse_args(
        ["serve", "--port", "0", "--rate-limit", "2.5/7", "--ping-interval", "0",
         "--compression", "on", "--workers", "3"]
    )  # fmt: skip
    assert (args.port, args.rate_limit.rate, args.rate_limit.burst) == (0, 2.5, 7)
    assert (args.ping_interval, args.compression, args.workers) == (0, "on", 3)
    assert cli.parser().parse_args(["serve", "--rate-limit", "off"]).rate_limit is None
    assert cli.parser().parse_args(["serve", "--history-window", "14400"]).history_window == 14400
    assert cli.parser().parse_args(["serve"]).rate_limit.burst == 50  # the default, parsed


@pytest.fixture
def pem_files(tmp_path):
    """A certificate, its key, another certificate's key, and an encrypted copy of the key."""
    import trustme
    from cryptography.hazmat.primitives import serialization

    authority = trustme.CA()
    certificate = authority.issue_cert("127.0.0.1")
    certificate.cert_chain_pems[0].write_to_path(tmp_path / "cert.pem")
    certificate.private_key_pem.write_to_path(tmp_path / "key.pem")
    authority.issue_cert("127.0.0.1").private_key_pem.write_to_path(tmp_path / "other-key.pem")
    key = serialization.load_pem_private_key(certificate.private_key_pem.bytes(), None)
    locked = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    (tmp_path / "locked-key.pem").write_bytes(locked)
    (tmp_path / "notes.txt").write_text("not a certificate\n")
    return tmp_path


@pytest.mark.parametrize(
    ("cert", "key", "message"),
    [
        ("missing.pem", "key.pem", "--certfile {d}/missing.pem: no such file"),
        ("cert.pem", "missing.pem", "--keyfile {d}/missing.pem: no such file"),
        (".", "key.pem", "--certfile {d}: is a folder, not a file"),
        ("notes.txt", "key.pem", "--certfile {d}/notes.txt: not a PEM certificate: "
         "no '-----BEGIN ...CERTIFICATE-----' line"),
        ("key.pem", "cert.pem", "--certfile {d}/key.pem: not a PEM certificate: "
         "no '-----BEGIN ...CERTIFICATE-----' line (it holds EC PRIVATE KEY)"),
        ("cert.pem", "notes.txt", "--keyfile {d}/notes.txt: not a PEM private key: "
         "no '-----BEGIN ...PRIVATE KEY-----' line"),
        ("cert.pem", "other-key.pem", "--keyfile {d}/other-key.pem: not the private key of "
         "the certificate in --certfile {d}/cert.pem"),
        ("cert.pem", "locked-key.pem", "--keyfile {d}/locked-key.pem: the key is encrypted "
         "with a passphrase; rtlab serve needs it unencrypted"),
    ],
)  # fmt: skip
def test_a_tls_file_that_cannot_serve_is_named_with_the_reason(pem_files, cert, key, message):
    with pytest.raises(tls.TLSFileError) as refused:
        tls.context(str(pem_files / cert), str(pem_files / key))
    assert str(refused.value).startswith(message.format(d=pem_files))


def test_an_unreadable_tls_file_is_named(pem_files, monkeypatch):
    def denied(path: Path) -> bytes:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(Path, "read_bytes", denied)  # chmod 000 does not stop root
    with pytest.raises(tls.TLSFileError) as refused:
        tls.context(str(pem_files / "cert.pem"), str(pem_files / "key.pem"))
    reason = "cannot be read (Permission denied)"
    assert str(refused.value) == f"--certfile {pem_files}/cert.pem: {reason}"


def test_rtlab_serve_names_the_tls_file_as_a_usage_error_and_serves_a_good_pair(pem_files):
    d = pem_files
    result = run_rtlab("serve", "--certfile", f"{d}/cert.pem", "--keyfile", f"{d}/other-key.pem")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1] == (
        f"rtlab serve: error: --keyfile {d}/other-key.pem: not the private key of the "
        f"certificate in --certfile {d}/cert.pem"
    )
    assert isinstance(tls.context(f"{d}/cert.pem", f"{d}/key.pem"), ssl.SSLContext)
