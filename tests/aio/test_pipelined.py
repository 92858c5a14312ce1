"""Pipelined events (``Namespace.on(..., pipelined=True)``): the events behind one go on
while it waits for its answer, and the answers go back in order.

A lab server runs in the background; its handlers run on the server's loop thread and
are reached from the test through ``on_server``. A raw websockets client sends the
events and reads every frame, so that the order of the answers is seen as sent.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from rtlab.aio.events import PIPELINED, Session
from rtlab.core.envelope import EnvelopeError, ErrorCode
from tests.aio.test_events import on_server, run
from tests.e2e.test_redis import until


def event(name: str, id: int, data: Any = None, **more: str) -> str:
    """An event with an id, as a raw client sends it (``more``: a mid)."""
    return json.dumps({"event": name, "data": data, "ns": "/", "id": id, **more})


async def answers(ws: ClientConnection, count: int) -> list[dict[str, Any]]:
    return [json.loads(await ws.recv()) for _ in range(count)]


def install(server: Any) -> tuple[list[asyncio.Future[Any]], list[str]]:
    """``later`` (pipelined): answered when the test says; ``now``: at once. What each
    handled, in order, and the futures ``later`` returned."""
    futures: list[asyncio.Future[Any]] = []
    handled: list[str] = []
    namespace = server.server.namespace("/")

    @namespace.on("later", pipelined=True)
    def later(session: Session, data: Any) -> asyncio.Future[Any]:
        handled.append(f"later {data}")
        futures.append(asyncio.get_running_loop().create_future())
        return futures[-1]

    @namespace.on("now")
    def now(session: Session, data: Any) -> str:
        handled.append(f"now {data}")
        return f"now {data}"

    return futures, handled


def test_events_behind_a_pipelined_one_go_on_and_the_answers_keep_their_order(server):
    futures, handled = install(server)

    def settle(index: int, value: Any) -> None:
        if isinstance(value, Exception):
            futures[index].set_exception(value)
        else:
            futures[index].set_result(value)

    async def main() -> None:
        async with connect(f"{server.url}/ws?user=alice") as ws:
            for frame in (event("later", 1, 1), event("later", 2, 2), event("later", 3, 3)):
                await ws.send(frame)
            await ws.send("{not json")  # refused after the answers before it
            await ws.send(event("now", 4, 4))  # not pipelined: waits for them
            await ws.send(event("later", 5, 5))
            # All three handled before any answer: pipelined, and nothing after them.
            await until(lambda: len(futures) == 3, "three pipelined handlers ran")
            assert handled == ["later 1", "later 2", "later 3"]
            # Answered out of order: sent back in order all the same.
            await on_server(server, settle, 2, "three")
            busy = EnvelopeError(ErrorCode.UNAVAILABLE, "not now", retry_after=1.0)
            await on_server(server, settle, 1, busy)
            await on_server(server, settle, 0, "one")
            got = await answers(ws, 5)
            refused = {"code": "unavailable", "message": "not now", "retryAfter": 1.0}
            assert got[:3] == [
                {"ack": 1, "data": "one"},
                {"ack": 2, "error": refused},
                {"ack": 3, "data": "three"},
            ]
            assert got[3]["event"] == "error" and got[3]["data"]["code"] == "invalid_json"
            assert got[4] == {"ack": 4, "data": "now 4"}
            await until(lambda: len(futures) == 4, "the pipelined event after them ran")
            assert handled == ["later 1", "later 2", "later 3", "now 4", "later 5"]
            await on_server(server, settle, 3, "five")
            assert await answers(ws, 1) == [{"ack": 5, "data": "five"}]

    run(main())


def test_at_most_pipelined_answers_wait_and_the_rest_follow_in_order(server):
    futures, handled = install(server)
    sent = PIPELINED + 4

    def settle_all() -> None:
        for number, future in enumerate(futures, 1):
            if not future.done():
                future.set_result(number)

    async def main() -> None:
        async with connect(f"{server.url}/ws?user=alice") as ws:
            for number in range(1, sent + 1):
                await ws.send(event("later", number, number))
            await until(lambda: len(futures) == PIPELINED, "the first PIPELINED handled")
            await asyncio.sleep(0.2)  # the rest would show up here if they did not wait
            assert len(futures) == PIPELINED
            await on_server(server, settle_all)
            await until(lambda: len(futures) == sent, "the rest handled once answered")
            await on_server(server, settle_all)
            got = await answers(ws, sent)
            assert got == [{"ack": n, "data": n} for n in range(1, sent + 1)]
            assert handled == [f"later {n}" for n in range(1, sent + 1)]

    run(main())


def test_a_connection_that_closes_with_answers_outstanding_is_forgotten_at_once(server):
    """What a pipelined event does is on its way already: its sender's departure need
    not wait for the answer, which then goes nowhere."""
    futures, handled = install(server)
    hub = server.server.events

    async def main() -> None:
        async with connect(f"{server.url}/ws?user=alice") as ws:
            await ws.send(event("later", 1, 1))
            await ws.send(event("later", 2, 2))
            await until(lambda: len(futures) == 2, "both handled")
        await until(lambda: not hub.sessions, "the session forgotten")
        await on_server(server, lambda: [f.set_result(None) for f in futures])
        async with connect(f"{server.url}/ws?user=bob") as ws:  # serving as before
            await ws.send(event("now", 1, "bob"))
            assert await answers(ws, 1) == [{"ack": 1, "data": "now bob"}]
        assert handled == ["later 1", "later 2", "now bob"]

    run(main())


def test_an_event_waiting_behind_pipelined_ones_is_not_handled_once_its_session_is_dropped(
    server,
):
    """A join behind a room message must not put a session the server dropped back in."""
    futures, handled = install(server)
    hub = server.server.events

    async def main() -> None:
        async with connect(f"{server.url}/ws?user=alice") as ws:
            await ws.send(event("later", 1, 1))
            await ws.send(event("now", 2, 2))  # waits for later's answer
            await until(lambda: len(futures) == 1, "later handled")
            [session] = await on_server(server, lambda: list(hub.sessions.values()))
            await on_server(server, hub.drop, session, "dropped by the test")
            await on_server(server, futures[0].set_result, None)
            await ws.wait_closed()
        assert ws.close_code == 1008
        await asyncio.sleep(0.2)  # "now" would run here if it were still handled
        assert handled == ["later 1"]

    run(main())
