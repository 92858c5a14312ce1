"""One lab server at a time on a data folder: a second one is refused and touches nothing.

Real servers on a real ``tmp_path``; the lock is a real ``flock``, held by a real
process in the test of a holder that dies.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

from rtlab.aio.client import EventClient
from rtlab.aio.data_dir import LOCKFILE, DataDirError, DataDirInUse, DataDirLock
from rtlab.aio.journal import FILENAME
from rtlab.aio.progress_journal import FILENAME as PROGRESS
from rtlab.aio.server import LabServer
from rtlab.core.tokens import issue

T = TypeVar("T")
SECRET = "class-secret"


def run(coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def say(server: LabServer, text: str, user: str = "alice") -> int:
    """``user`` sends ``text`` to the lobby; the seq of the ack."""
    token = issue(SECRET, user, 3600, time.time())
    client = await EventClient.connect(server.url, user, token=token)
    await client.emit("join-room", "lobby", ack=True)
    ack = await client.emit("send-message", {"roomId": "lobby", "message": text}, ack=True)
    await client.close()
    return ack["seq"]


def messages(folder: Path) -> list[str]:
    lines = (folder / FILENAME).read_bytes().splitlines()
    return [json.loads(line)["payload"]["message"] for line in lines if b'"payload"' in line]


def test_a_second_server_on_a_folder_in_use_is_refused_and_the_first_loses_nothing(tmp_path):
    """The second one is refused before it reads or rewrites anything (on its own port as
    on the first one's), so the first goes on appending to the file in the folder."""

    async def main() -> None:
        first = await LabServer(secret=SECRET, data_dir=tmp_path).start()
        assert await say(first, "m1") == 1
        token = issue(SECRET, "ann", 3600, time.time())
        ann = await EventClient.connect(first.url, "ann", token=token)
        report = {"lesson": "handshake", "exercise": "accept_key", "passed": True}
        await ann.emit("report", {**report, "attempt": 1, "run": "k1"}, ns="/progress", ack=True)
        await ann.close()
        files = {name: (tmp_path / name).stat().st_ino for name in (FILENAME, PROGRESS)}
        before = {name: (tmp_path / name).read_bytes() for name in files}

        for port in (0, first.port):
            second = LabServer(port=port, secret=SECRET, data_dir=tmp_path)
            with pytest.raises(DataDirInUse) as refused:
                await second.start()
            assert refused.value.pid == os.getpid()
            assert str(refused.value) == (
                f"{tmp_path} is in use by another lab server (pid {os.getpid()}): "
                "stop it first, or use another --data-dir"
            )
            assert not second.running
        assert {name: (tmp_path / name).stat().st_ino for name in files} == files
        assert {name: (tmp_path / name).read_bytes() for name in files} == before

        assert await say(first, "m2") == 2  # acknowledged after the refusal: on disk
        await first.stop()
        assert messages(tmp_path) == ["m1", "m2"]

        # Stopped, the first lets the refused one start: it has every message.
        async with second:
            assert "INFO history: 2 messages loaded from" in "\n".join(second.log)
            assert await say(second, "m3") == 3
            assert second.progress.store.loaded == 1

    run(main())
    assert messages(tmp_path) == ["m1", "m2", "m3"]


def test_a_port_in_use_neither_reads_nor_rewrites_the_folder_and_leaves_it_unlocked(tmp_path):
    """Bound before it loads: a damaged line that loading would compact away stays."""
    journal = tmp_path / FILENAME
    journal.write_bytes(b"not a message\n")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = LabServer(port=taken.getsockname()[1], data_dir=tmp_path)
        with pytest.raises(OSError, match="address already in use"):
            run(server.start())
    assert journal.read_bytes() == b"not a message\n"
    assert not (tmp_path / PROGRESS).exists()

    async def main() -> None:
        async with LabServer(data_dir=tmp_path) as again:  # the folder was let go
            assert "1 damaged line skipped" in "\n".join(again.log)

    run(main())
    assert journal.read_bytes() == b""  # compacted by the server that started


def test_the_same_server_stopped_and_started_again_takes_the_lock_again(tmp_path):
    async def main() -> None:
        server = LabServer(secret=SECRET, data_dir=tmp_path)
        for text in ("one", "two"):
            await server.start()
            with pytest.raises(DataDirInUse):
                await LabServer(data_dir=tmp_path).start()
            await say(server, text)
            await server.stop()
            probe = DataDirLock(tmp_path)
            probe.acquire()  # free: released by stop
            probe.release()

    run(main())
    assert messages(tmp_path) == ["one", "two"]


HOLDER = """
import sys
from rtlab.aio.data_dir import DataDirLock
DataDirLock(sys.argv[1]).acquire()
print("locked", flush=True)
sys.stdin.read()
"""


def test_a_holder_killed_leaves_the_folder_free(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline() == "locked\n"
        with pytest.raises(DataDirInUse) as refused:
            DataDirLock(tmp_path).acquire()
        assert refused.value.pid == holder.pid
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert (tmp_path / LOCKFILE).read_text() == f"{holder.pid}\n"  # stale, locks nothing
    lock = DataDirLock(tmp_path)
    lock.acquire()
    assert (tmp_path / LOCKFILE).read_text() == f"{os.getpid()}\n"
    lock.release()
    assert (tmp_path / LOCKFILE).read_text() == ""


def test_a_folder_that_cannot_be_made_is_a_clear_error(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(DataDirError, match=r"cannot use .*file/sub as the data folder: "):
        DataDirLock(tmp_path / "file" / "sub").acquire()
