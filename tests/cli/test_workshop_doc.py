"""docs/workshop.md says only what is true: its ``rtlab`` commands parse with the real
parser, the class-list and learner commands work as written, its Python uses names
rtlab has, and the refusals it explains are the server's own words."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import rtlab
from rtlab import cli
from rtlab.core.tokens import verify

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "workshop.md").read_text()
BIN = str(Path(sys.executable).parent)  # where this environment's rtlab and python are
NAMES = ["ann", "ben.k", "table3-cho"]


def blocks(language: str) -> list[str]:
    """The doc's fenced code blocks in ``language`` (indented ones included)."""
    fence = re.compile(r"^( *)```" + language + r"\n(.*?)^\1```", re.M | re.S)
    return [
        "\n".join(line[len(indent) :] for line in body.splitlines())
        for indent, body in fence.findall(DOC)
    ]


def commands() -> list[str]:
    """Every ``rtlab ...`` command of the bash blocks (continuation lines joined) and text."""
    found = []
    for block in blocks("bash"):
        for line in block.replace("\\\n", " ").splitlines():
            if line.startswith("rtlab "):
                found.append(line)
    return found + re.findall(r"`(rtlab [^`]*)`", DOC)  # and the ones in the text


def bash(script: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", **env}
    return subprocess.run(
        ["bash", "-euc", script],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def classroom(tmp_path: Path) -> Path:
    (tmp_path / "class.txt").write_text("\n".join(NAMES[:2]) + "\n\n" + NAMES[2] + "\n")
    return tmp_path


def test_the_doc_shows_each_command():
    used = {command.split()[1] for command in commands()}
    assert {"learner", "token", "serve"} <= used


@pytest.mark.parametrize("command", commands())
def test_each_rtlab_command_parses(command, classroom):
    """The shell expands the line as an instructor's would; the real parser reads it."""
    shim = 'exec 3>argv; rtlab() { printf "%s\\0" "$@" >&3; }; '
    done = bash(shim + command, classroom, RTLAB_SECRET="s")
    assert done.returncode == 0, done.stderr
    argv = (classroom / "argv").read_text().split("\0")[:-1]
    try:
        args, extra = cli.parser().parse_known_args(argv)
    except SystemExit as exit:  # an unknown command or option, or --help
        assert exit.code == 0 and "--help" in argv, f"{command}: refused"
        return
    assert extra == [] or args.command == "lab", f"{command}: unknown {extra}"
    if args.command == "serve":
        assert (args.certfile is None) == (args.keyfile is None)
    if args.command == "token":
        assert args.user and all(cli.USER.fullmatch(user) for user in args.user)


@pytest.mark.slow
def test_the_class_list_commands_make_a_token_per_student(classroom):
    tokens = [b for b in blocks("bash") if "RTLAB_SECRET" in b or "rtlab token" in b]
    secret_block, token_block, ttl_block = tokens
    done = bash("\n".join([secret_block, token_block, 'echo "$RTLAB_SECRET" > secret']), classroom)
    assert done.returncode == 0, done.stderr
    secret = (classroom / "secret").read_text().strip()
    assert len(secret) >= 32
    lines = (classroom / "tokens.tsv").read_text().splitlines()
    assert [line.split("\t")[0] for line in lines] == NAMES
    for line in lines:
        name, token = line.split("\t")
        assert verify(secret, token, 0) == name
    teacher = (classroom / "teacher.token").read_text().strip()
    assert verify(secret, teacher, 0) == "teacher"
    done = bash(ttl_block, classroom, RTLAB_SECRET=secret)
    assert done.returncode == 0, done.stderr
    assert len((classroom / "tokens.tsv").read_text().splitlines()) == len(NAMES)


def test_the_learner_command_writes_the_copies(tmp_path):
    [block] = [b for b in blocks("bash") if b.startswith("rtlab learner")]
    done = bash(block, tmp_path)
    assert done.returncode == 0, done.stderr
    course = sorted(p.name for p in cli.notebooks_folder().glob("*.ipynb"))
    assert sorted(p.name for p in (tmp_path / "learner").glob("*.ipynb")) == course
    assert "BEGIN SOLUTION" not in "".join(
        p.read_text() for p in (tmp_path / "learner").glob("*.ipynb")
    )


def test_the_python_snippets_use_what_rtlab_has():
    snippets = blocks("python")
    assert snippets
    for snippet in snippets:
        ast.parse(snippet)
    for name in re.findall(r"\brtlab\.(\w+)\(", DOC):
        assert hasattr(rtlab, name), f"rtlab.{name} does not exist"


@pytest.mark.parametrize(
    "reason",
    [
        "this server needs a token: ?token=... or Authorization: Bearer ...",
        "invalid token: ",
        "is not allowed on this server",
        "anonymous ?user=NAME is only accepted from this machine",
        "say who you are: add ?user=NAME to the URL",
        "connections are open from",
        "too many refused messages",
        "too slow: ",
        "server stopping",
        "rate_limited",
        "unavailable",
        "another lab server",
        "stop it first, or use another --data-dir",
        "the instructor's view needs an instructor's token",
        "give an instructor's token",
        "ask your instructor for a new one",
    ],
)
def test_the_troubleshooting_table_quotes_the_server(reason):
    """The server's words, or its pages' (the chat page, /teacher), even across a line break."""
    assert reason in " ".join(DOC.split())
    files = [*(ROOT / "rtlab").rglob("*.py"), *(ROOT / "rtlab" / "static").glob("*.html")]
    source = "".join(path.read_text() for path in files)
    assert reason in source
