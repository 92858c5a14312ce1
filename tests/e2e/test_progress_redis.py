"""The class's grid in a real Redis (rtlab/aio/progress_redis.py) follows the model's
rules (rtlab/core/progress.py) report by report: the same cells, columns and counts,
whatever students and exercises come past the bounds; and it reads a grid an older
rtlab kept (the columns in a set) without losing a cell."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
import redis

from rtlab.aio.progress_events import LocalProgress
from rtlab.aio.progress_redis import RedisProgress
from rtlab.aio.server import LabServer
from rtlab.core import progress as progress_module
from rtlab.core.progress import ClassProgress, Report


@pytest.fixture
def keys(redis_server) -> Iterator[redis.Redis]:
    """A plain client of the test's redis-server, to write or read its keys directly."""
    client = redis.Redis.from_url(redis_server.url)
    yield client
    client.close()


def with_store(url: str, body: Callable[[RedisProgress], Awaitable[None]], **bounds: int) -> None:
    """Run ``body`` with a RedisProgress of ``url`` (``bounds``: its maxima), closed after."""

    async def main() -> None:
        store = RedisProgress(url, **bounds)
        try:
            await body(store)
        finally:
            await store.close()

    asyncio.run(main())


def reports(seed: int, count: int) -> list[Report]:
    """Random reports over more students and exercises than the bounds hold."""
    pick = random.Random(seed)
    made = []
    for _ in range(count):
        user = pick.choice(["ann", "bob", "cat", "dan", "eve"])
        exercise = pick.choice(["a", "b", "c", "d", "e", "f"])
        made.append(
            Report(user, "x", exercise, pick.random() < 0.3, pick.randint(1, 3), pick.choice("kl"))
        )
    return made


def test_the_redis_grid_follows_the_model_report_by_report(redis_server):
    async def body(store: RedisProgress) -> None:
        for seed in range(12):
            await store._redis.flushdb()
            model = ClassProgress(max_students=3, max_exercises=3)
            for i, report in enumerate(reports(seed, 60)):
                changed, cell = await store.record(report)
                assert changed == (model.record(report) is not None), (seed, i, report)
                assert cell == model.cell(report.user, report.key).to_json(), (seed, i)
                assert await store.grid() == await LocalProgress(model).grid(), (seed, i)
            assert model.replaced and model.evicted  # the sequences went past both bounds

    with_store(redis_server.url, body, max_students=3, max_exercises=3)


def test_made_up_exercise_names_never_keep_the_class_out_across_processes(redis_server):
    async def body(store: RedisProgress) -> None:
        for i in range(20):
            await store.record(Report("mallory", "x", f"junk{i}", False, 1, "k"))
        await store.record(Report("ann", "handshake", "accept_key", False, 1, "k"))
        await store.record(Report("bob", "handshake", "accept_key", True, 1, "k"))
        for i in range(20, 100):
            await store.record(Report("mallory", "x", f"junk{i}", False, 1, "k"))
        grid = await store.grid()
        assert "handshake/accept_key" in grid["exercises"]
        assert len(grid["exercises"]) == 20
        assert grid["students"]["bob"] == {
            "handshake/accept_key": {"state": "passed", "attempts": 1}
        }
        assert (grid["replaced"], grid["ignored"]) == (81, 0)

    with_store(redis_server.url, body, max_exercises=20)


def test_a_grid_an_older_rtlab_kept_loses_nothing(redis_server, keys):
    """Before columns were replaced, they were a set (``exercises``), with no record of
    who tried each: the grid shows them at once, and the next report moves them over."""
    keys.zadd("rtlab:progress:students", {"ann": 1, "bob": 2})
    keys.set("rtlab:progress:clock", 2)
    keys.sadd("rtlab:progress:exercises", "x/a", "x/b")
    keys.hset("rtlab:progress:cells:ann", "x/a", '{"p": 1, "b": 0, "r": [["k", 2]]}')
    keys.hset("rtlab:progress:cells:bob", "x/a", '{"p": 0, "b": 0, "r": [["k", 1]]}')
    keys.hset("rtlab:progress:cells:bob", "x/b", '{"p": 0, "b": 0, "r": [["k", 1]]}')

    async def body(store: RedisProgress) -> None:
        before = await store.grid()
        assert before["exercises"] == ["x/a", "x/b"]
        assert before["students"]["ann"] == {"x/a": {"state": "passed", "attempts": 2}}
        # Full: c takes the place of b, which bob alone tried, not of a, which both did.
        assert await store.record(Report("cat", "x", "c", False, 1, "k")) == (
            True,
            {"state": "failing", "attempts": 1},
        )
        after = await store.grid()
        assert after["exercises"] == ["x/a", "x/c"]
        assert after["students"]["bob"] == {"x/a": {"state": "failing", "attempts": 1}}
        assert after["students"]["ann"] == before["students"]["ann"]
        assert not keys.exists("rtlab:progress:exercises")

    with_store(redis_server.url, body, max_exercises=2)


def test_the_rooms_shown_across_processes_are_those_with_the_most_members(
    redis_server, keys, monkeypatch
):
    """As in one process: the Redis manager's member hashes, the biggest rooms first."""
    monkeypatch.setattr(progress_module, "MAX_ROOMS_SHOWN", 3)
    for i in range(30):
        keys.hset(f"rtlab:members:/:aaa{i:02}", "mallory", 1)
    keys.hset("rtlab:members:/:table-1", mapping={"ann": 1, "bob": 2})
    keys.hset("rtlab:members:/:*", mapping={"ann": 1, "bob": 2, "mallory": 30})  # online
    keys.hset("rtlab:members:/progress:instructors", "teach", 1)  # the namespace skipped

    async def body(store: RedisProgress) -> None:
        assert await store.rooms("/progress") == [
            {"ns": "/", "room": "table-1", "members": ["ann", "bob"]},
            {"ns": "/", "room": "aaa00", "members": ["mallory"]},
            {"ns": "/", "room": "aaa01", "members": ["mallory"]},
        ]

    with_store(redis_server.url, body)


def test_a_server_stops_though_the_redis_client_loses_the_cancel(redis_server):
    """redis-py sends under asyncio.wait_for, which on Python 3.11 loses a cancel that comes
    as the send ends (CPython gh-86296): the door's sharing went on, and stop() waited for
    it forever (``rtlab serve --workers``: a worker SIGTERMed as it started never exited,
    and the supervisor said status 1)."""

    async def main() -> None:
        server = LabServer("127.0.0.1", 0, redis=redis_server.url)
        sharing = asyncio.Event()

        async def share_door(figures: dict[str, Any]) -> None:  # as wait_for on 3.11
            if not sharing.is_set():  # the first send: its cancel is lost
                sharing.set()
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.Event().wait()

        server.progress.store.share_door = share_door  # type: ignore[method-assign]
        await server.start()
        async with asyncio.timeout(10):
            await sharing.wait()
        async with asyncio.timeout(10):
            await server.stop()

    asyncio.run(main())
