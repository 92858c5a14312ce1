"""``rtlab doctor``: the table a learner sees, and the exit code that scripts and CI read."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time

import pytest

import rtlab
from rtlab import doctor
from rtlab.core.tokens import issue

RTLAB = [sys.executable, "-m", "rtlab.cli"]


def test_doctor_prints_a_table_and_passes():
    result = subprocess.run([*RTLAB, "doctor"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[-1] == f"{len(lines) - 1} of {len(lines) - 1} checks passed"
    assert all(line.startswith("✅") for line in lines[:-1])
    names = " ".join(lines)
    for name in ("Python", "websockets", "jupyterlab", "ipywidgets", "nest-asyncio2"):
        assert name in names
    assert "JupyterLab widgets extension" in names
    assert "sent 'ping', got 'Echo: ping'" in names
    assert "redis-server 7" in names or "redis-server 8" in names  # lesson 10's
    assert "(for lesson 10)" in names and "(for rtlab bench's Node peers)" in names


def test_doctor_fails_when_a_check_the_lessons_need_fails(monkeypatch, capsys):
    monkeypatch.setattr(doctor, "PACKAGES", ("websockets", "no-such-package-rtlab"))
    assert doctor.main() == 1
    out = capsys.readouterr().out
    assert "❌ no-such-package-rtlab" in out
    assert "pip install no-such-package-rtlab" in out
    assert out.splitlines()[-1].endswith(": fix the ❌ rows above before starting the lessons")


def without(*programs: str):  # type: ignore[no-untyped-def]
    """shutil.which as on a machine that lacks ``programs``."""
    which = shutil.which
    return lambda name: None if name in programs else which(name)


@pytest.mark.parametrize(
    ("missing", "row", "install"),
    [
        (
            ("redis-server",),
            "❌ redis-server",
            "redis-server not found, needed for lesson 10: sudo apt-get install redis-server "
            "(Debian, Ubuntu) or conda install -c conda-forge redis-server",
        ),
        (
            ("node", "npm"),
            "❌ node",
            "node and npm not found, needed for rtlab bench's Node peers: sudo apt-get install "
            "nodejs npm (Debian, Ubuntu) or conda install -c conda-forge nodejs",
        ),
        (("npm",), "❌ node", "npm not found, needed for rtlab bench's Node peers"),
    ],
)
def test_a_missing_tool_is_a_cross_with_its_install_command_but_exit_code_0(
    monkeypatch, capsys, missing, row, install
):
    monkeypatch.setattr(doctor.shutil, "which", without(*missing))
    assert doctor.main() == 0, "lessons 00-09 run without these tools"
    out = capsys.readouterr().out
    [line] = [line for line in out.splitlines() if line.startswith(row)]
    assert install in line
    assert out.splitlines()[-1] == (
        "11 of 12 checks passed: ready for the lessons; a ❌ tool is needed only where its row says"
    )


def test_the_lessons_checks_leave_the_tools_out():
    """Lesson 00 runs run_checks() in a cell: only what every lesson needs."""
    names = [check.name for check in doctor.run_checks()]
    assert "redis-server" not in names and "node" not in names
    assert [check.name for check in doctor.tool_checks()] == ["redis-server", "node"]
    assert all(check.optional for check in doctor.tool_checks())


def test_in_a_workshop_the_class_server_row_tells_whether_the_token_works(monkeypatch, capsys):
    """RTLAB_SERVER set: a handshake with RTLAB_TOKEN, whose refusal a check's report would
    otherwise meet in silence (a mistyped token, a missing one)."""
    monkeypatch.delenv("RTLAB_SERVER", raising=False)
    assert doctor._class_server() is None  # alone at home: no row
    secret = "class-secret"
    with rtlab.start_server(secret=secret) as server:
        monkeypatch.setenv("RTLAB_SERVER", f"127.0.0.1:{server.port}")
        monkeypatch.setenv("RTLAB_TOKEN", issue(secret, "ann", 60, time.time()))
        row = doctor._class_server()
        assert (row.ok, row.detail) == (True, f"ws://127.0.0.1:{server.port} as ann")
        monkeypatch.setenv("RTLAB_TOKEN", issue("a-guess", "ann", 60, time.time()))
        row = doctor._class_server()
        assert not row.ok and row.optional
        assert row.detail.startswith("refused (HTTP 401): invalid token: bad signature")
        assert doctor.main() == 0, "the lessons run without the class's server"
        assert re.search(r"❌ class server +refused \(HTTP 401\)", capsys.readouterr().out)
        monkeypatch.delenv("RTLAB_TOKEN")
        row = doctor._class_server()
        assert (row.ok, row.detail) == (False, f"ws://127.0.0.1:{server.port}: set RTLAB_TOKEN too")
    monkeypatch.setenv("RTLAB_TOKEN", issue(secret, "ann", 60, time.time()))
    row = doctor._class_server()  # the server is gone
    assert not row.ok and "ConnectionRefusedError" in row.detail
