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

import pytest
from websockets.exceptions import ConnectionClosedOK, InvalidStatus
from websockets.sync.client import connect

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


def test_serve_rejects_a_bad_port():
    result = subprocess.run(
        [*RTLAB, "serve", "--port", "70000"], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert "--port must be between 0 and 65535" in result.stderr


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


def test_doctor_fails_when_a_check_fails(monkeypatch, capsys):
    from rtlab import doctor

    monkeypatch.setattr(doctor, "PACKAGES", ("websockets", "no-such-package-rtlab"))
    assert doctor.main() == 1
    out = capsys.readouterr().out
    assert "❌ no-such-package-rtlab" in out
    assert "pip install no-such-package-rtlab" in out


@pytest.mark.slow
def test_lab_starts_jupyterlab_on_the_notebooks(tmp_path):
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path), "BROWSER": "true"}
    options = ["--no-browser", "--ServerApp.ip=127.0.0.1", "--ServerApp.port=0", *TOKEN]
    process = start("lab", *options, env=env)
    try:
        wait_for_line(process, re.escape(f"Starting JupyterLab on {ROOT / 'notebooks'}"))
        port = wait_for_line(process, r"http://127\.0\.0\.1:(\d+)/lab\?token=").group(1)
        api = f"http://127.0.0.1:{port}/api/contents?token=t"
        names: set[str] = set()
        for _ in range(100):  # the URL is logged a moment before the port listens
            try:
                with urllib.request.urlopen(api, timeout=30) as response:
                    names = {item["name"] for item in json.load(response)["content"]}
                break
            except urllib.error.URLError:
                time.sleep(0.1)
        assert "00_welcome.ipynb" in names
    finally:
        process.terminate()
        process.wait(timeout=30)


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
