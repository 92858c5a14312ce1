"""What ``rtlab serve`` logs to stderr (issue 18.3): one line per event an instructor
needs, readable and greppable, never a secret or a token; and the addresses to give
students when it listens on every interface."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import re
import signal
import subprocess
import sys
import time

import psutil
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from rtlab.core.tokens import issue

SECRET = "class-secret-for-the-log-test"
STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"


BANNERS: dict[int, str] = {}  # process id -> the banner serve() read, for stop()


def serve(*args: str) -> tuple[subprocess.Popen[str], int]:
    """``rtlab serve --port 0 ARGS``; its port, read off the banner on stdout. The whole
    banner is read (to "Press Ctrl-C"): ``communicate`` reads the pipe itself, so what
    ``readline`` had buffered past a line would be lost to ``stop``."""
    process = subprocess.Popen(
        [sys.executable, "-m", "rtlab", "serve", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    deadline = time.monotonic() + 60
    banner = []
    port = None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        banner.append(line)
        if port is None and (match := re.search(r"on http://[^:]+:(\d+)/", line)):
            port = int(match[1])
        if port is not None and line.startswith("Press Ctrl-C to stop."):
            BANNERS[process.pid] = "".join(banner)
            return process, port
        assert line or process.poll() is None, "".join(banner)
    process.kill()
    raise AssertionError("no banner:\n" + "".join(banner))


def stop(process: subprocess.Popen[str]) -> tuple[str, str]:
    """Ctrl-C, then all it printed (stdout, its banner first; stderr)."""
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    return BANNERS.pop(process.pid, "") + out, err


async def class_session(port: int) -> None:
    """alice chats past the rate limit; a stale token and a foreign page are refused."""
    now = time.time()
    alice = issue(SECRET, "alice", 3600, now)
    base = f"ws://127.0.0.1:{port}/ws"
    async with connect(f"{base}?token={alice}") as ws:
        await ws.send(json.dumps({"event": "join-room", "data": "lobby", "id": 1}))
        await ws.recv()
        for n in range(4):  # --rate-limit 1/2: the third and fourth are refused
            message = {"roomId": "lobby", "message": f"hello {n}"}
            await ws.send(json.dumps({"event": "send-message", "data": message, "id": 2 + n}))
        acks = set()
        while len(acks) < 4:  # each answered: acknowledged, or refused for its rate
            answer = json.loads(await asyncio.wait_for(ws.recv(), 10))
            acks.add(answer.get("ack"))
            acks.discard(None)
        await ws.close(1000, "done")
    expired = issue(SECRET, "bob", 60, now - 180)
    with pytest.raises(InvalidStatus) as refused:
        async with connect(f"{base}?token={expired}"):
            pass
    assert refused.value.response.status_code == 401
    with pytest.raises(InvalidStatus):
        async with connect(f"{base}?token={alice}", origin="http://evil.example"):
            pass


def test_serve_logs_connections_refusals_and_rate_limits_and_no_token():
    process, port = serve("--secret", SECRET, "--rate-limit", "1/2")
    try:
        asyncio.run(class_session(port))
    finally:
        out, err = stop(process)
    lines = err.splitlines()
    assert lines and all(re.match(f"{STAMP} (DEBUG|INFO|WARNING|ERROR) ", x) for x in lines), err
    text = "\n".join(lines)
    assert re.search(r"INFO listening on \('127\.0\.0\.1', \d+\)", text)
    opened = re.search(r"INFO open #(\d+) /ws as alice from 127\.0\.0\.1:\d+", text)
    assert opened, text
    assert f"INFO closed #{opened[1]} /ws as alice: 1000 (normal closure) 'done'" in text
    assert re.search(r"INFO rate-limited alice \(session \d+\): try again in \d\.\d s", text)
    assert len(re.findall("rate-limited alice", text)) == 1  # one line for the burst
    expired = r"INFO refused 401 /ws from 127\.0\.0\.1: invalid token: expired 1\d\d s ago"
    assert re.search(expired, text), text
    assert "INFO refused 403 /ws from 127.0.0.1: origin http://evil.example is not allowed" in text
    assert SECRET not in err + out
    assert "token=" not in err and not re.search(r"[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]{20,}", err)


def test_log_level_warning_keeps_the_log_to_trouble():
    process, port = serve("--log-level", "warning")

    async def visit() -> None:
        async with connect(f"ws://127.0.0.1:{port}/ws?user=carol") as ws:
            await ws.close()

    try:
        asyncio.run(visit())
    finally:
        _, err = stop(process)
    assert "open #" not in err and "listening on" not in err, err


def test_serve_on_every_interface_lists_the_addresses_students_can_use():
    process, port = serve("--host", "0.0.0.0")
    out, _ = stop(process)
    listed = re.findall(r"http://([0-9.]+):(\d+)/  \((.+)\)", out)
    assert "students open one of" in out and listed, out
    own = {
        a.address
        for addresses in psutil.net_if_addrs().values()
        for a in addresses
        if a.family.name == "AF_INET"
    }
    for address, shown_port, interface in listed:
        assert int(shown_port) == port
        assert address in own, (address, own)
        loopback = ipaddress.ip_address(address).is_loopback
        assert not loopback or interface == "only this machine"


def test_a_redis_password_is_in_no_line():
    # Redis is not there (port 1): the server serves anyway, says so, and retries.
    process, _ = serve("--redis", "redis://:hunter2@127.0.0.1:1/0")
    time.sleep(1.5)  # a reconnection attempt or two, to be logged
    out, err = stop(process)
    assert "Redis redis://:***@127.0.0.1:1/0. (unreachable for now: retrying)" in out, out
    assert "INFO redis redis://:***@127.0.0.1:1/0: reconnecting in" in err, err
    assert "hunter2" not in out + err


def test_a_log_nobody_reads_never_stops_the_server():
    """A terminal paused with Ctrl-S, or a pipe nobody reads, takes no more lines once
    full (64 KiB here): the server goes on serving, drops the lines that do not fit, and
    says how many once its log is read again."""
    # stderr, the log, is a pipe read by nobody yet; every line logged, none counted
    process, port = serve("--anonymous", "--log-all")

    async def visits(count: int) -> None:
        for start_at in range(0, count, 20):
            async with asyncio.timeout(30):  # a hang guard, not a speed claim
                await asyncio.gather(*(visit(f"v{n}") for n in range(start_at, start_at + 20)))

    async def visit(user: str) -> None:  # each logs a line as it opens, one as it closes
        async with connect(f"ws://127.0.0.1:{port}/ws?user={user}") as ws:
            await ws.send(json.dumps({"event": "leave-room", "data": "nowhere", "id": 1}))
            assert json.loads(await ws.recv())["ack"] == 1

    try:
        asyncio.run(visits(6_000))  # 12,000 lines: past the pipe (64 KiB) and LOG_QUEUE
        assert process.poll() is None
    finally:
        out, err = stop(process)
    assert "Press Ctrl-C to stop." in out
    dropped = re.search(r"WARNING (\d+) log lines dropped: their output was not read", err)
    assert dropped is not None, err[-2000:]
    assert int(dropped[1]) > 0


def test_a_flood_of_connections_is_counted_not_written_line_by_line():
    """A script reconnecting in a loop: the terminal shows the first 200 lines of each
    kind, then about 10 a second; the count of the others is logged on a later line, and
    what is left untold as the server stops."""
    process, port = serve("--anonymous")

    async def churn(count: int) -> None:
        for start_at in range(0, count, 20):
            async with asyncio.timeout(30):  # a hang guard, not a speed claim
                await asyncio.gather(*(visit(f"v{n}") for n in range(start_at, start_at + 20)))

    async def visit(user: str) -> None:
        async with connect(f"ws://127.0.0.1:{port}/ws?user={user}"):
            pass

    try:
        asyncio.run(churn(1_000))
        time.sleep(0.2)  # the last closes' lines
        asyncio.run(churn(20))  # after the flood
    finally:
        _, err = stop(process)
    opened = len(re.findall(r" INFO open #\d+ /ws as v\d+ ", err))
    told = sum(int(n) for n in re.findall(r'\[(\d+) more lines "open #… from …" not logged\]', err))
    assert opened < 1_020 and told > 0, err[-2000:]
    assert opened + told == 1_020  # every connection logged or counted
