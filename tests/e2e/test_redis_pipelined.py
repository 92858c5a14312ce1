"""Room messages pipelined to Redis: a sender's messages go to Redis one after another
without waiting for each other's answer, and everything still arrives in order.

Real redis-server, real lab servers in this process, a raw websockets client for the
sender (so that the order of every frame it gets is seen) and an EventClient on a
second process. No timed assertions: waits only have generous hang guards.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from rtlab.aio.client import EventClient
from rtlab.aio.events import PIPELINED
from rtlab.aio.redis_adapter import SendBatch
from rtlab.aio.server import LabServer
from tests.aio.test_pipelined import event
from tests.e2e.test_redis import FAST, GUARD, messages, run, until


def send(id: int, text: str, room: str = "lobby", **more: str) -> str:
    return event("send-message", id, {"roomId": room, "message": text}, **more)


async def join(ws: ClientConnection, id: int, room: str = "lobby") -> None:
    """Join ``room`` and wait for the ack."""
    await ws.send(event("join-room", id, room))
    await frames_until_ack(ws, id)


async def frames_until_ack(ws: ClientConnection, id: int) -> list[dict[str, Any]]:
    """Every frame up to the ack (or error) that answers ``id``."""
    got: list[dict[str, Any]] = []
    while not got or got[-1].get("ack") != id:
        got.append(json.loads(await ws.recv()))
    return got


def test_a_burst_of_room_messages_is_pipelined_and_everything_keeps_its_order(redis_server):
    count = PIPELINED + 4  # past the bound too: the rest wait, then go on

    async def scenario() -> None:
        one = await LabServer(redis=redis_server.url).start()
        two = await LabServer(redis=redis_server.url).start()
        outstanding: list[int] = []  # how many answers alice had waiting, at each message
        queue = one.events._queue_answer

        def noting(session, event, future, key):  # type: ignore[no-untyped-def]
            queue(session, event, future, key)
            outstanding.append(len(session.answers))

        one.events._queue_answer = noting  # type: ignore[method-assign]
        bob = await EventClient.connect(two.url, "bob")
        await bob.emit("join-room", "lobby", ack=True)
        try:
            async with connect(f"{one.url}/ws?user=alice") as ws:
                await join(ws, 1)
                for id in range(2, count + 2):  # written at once, not waiting for acks
                    await ws.send(send(id, f"m{id}"))
                await ws.send("{not json")  # refused in its turn
                # waits for the messages' answers
                await ws.send(event("leave-room", count + 2, "lobby"))
                got = await frames_until_ack(ws, count + 2)
            # Bob's process reads the departure after every message, on the channel.
            await bob.wait_for("user-left", 1, timeout=GUARD)
        finally:
            await bob.close()
            await one.stop()
            await two.stop()
        # The acks in order with their seq, the refusal after them, the leave's ack last;
        # alice's own copies in order, each before its message's ack.
        answers = [f for f in got if "ack" in f or f.get("event") == "error"]
        assert [a.get("ack") for a in answers] == [*range(2, count + 2), None, count + 2]
        assert [a["data"]["seq"] for a in answers[:count]] == list(range(1, count + 1))
        assert answers[count]["data"]["code"] == "invalid_json"
        copies = [f["data"]["seq"] for f in got if f.get("event") == "receive-message"]
        assert copies == list(range(1, count + 1))
        where = {}  # "copy SEQ" / "ack SEQ" -> its place among alice's frames
        for place, frame in enumerate(got):
            kind = "copy" if frame.get("event") == "receive-message" else "ack"
            if isinstance(frame.get("data"), dict) and "seq" in frame["data"]:
                where[f"{kind} {frame['data']['seq']}"] = place
        assert all(where[f"copy {seq}"] < where[f"ack {seq}"] for seq in range(1, count + 1))
        # Bob, on the other process: every message once, in order, then alice's leaving.
        assert [m["message"] for m in messages(bob)] == [f"m{id}" for id in range(2, count + 2)]
        assert [m["seq"] for m in messages(bob)] == list(range(1, count + 1))
        assert bob.events("user-left")[-1].data == {"userId": "alice", "roomId": "lobby"}
        # Pipelined: up to the bound, never past it.
        assert max(outstanding) == PIPELINED

    run(scenario())


def test_pipelined_messages_refused_while_redis_is_away_are_answered_in_order(redis_server):
    """Scripts flushed from Redis: the first pipelined message is refused NOSCRIPT,
    which counts Redis lost, and every one behind it is refused as unavailable, in
    order; once the scripts are loaded again the next message goes through."""

    async def scenario() -> None:
        server = await LabServer(redis=redis_server.url).start()
        bob = await EventClient.connect(server.url, "bob", reconnection=FAST)
        await bob.emit("join-room", "lobby", ack=True)
        try:
            async with connect(f"{server.url}/ws?user=alice") as ws:
                await join(ws, 1)
                redis_server.client().script_flush()
                for id in range(2, 7):
                    await ws.send(send(id, f"m{id}"))
                got = await frames_until_ack(ws, 6)
                answers = [f for f in got if "ack" in f]
                assert [a["ack"] for a in answers] == [2, 3, 4, 5, 6]
                assert {a["error"]["code"] for a in answers} == {"unavailable"}
                assert not [f for f in got if f.get("event") == "receive-message"]

                async def sent_again() -> bool:
                    await ws.send(send(7, "again"))
                    answer = (await frames_until_ack(ws, 7))[-1]
                    return "data" in answer

                await until(sent_again, "Redis back: a message goes through")
            await until(lambda: messages(bob), "bob got it")
            assert [m["message"] for m in messages(bob)] == ["again"]
        finally:
            await bob.close()
            await server.stop()

    run(scenario(), timeout=GUARD * 3)


async def write_together(ws: ClientConnection, frames: list[str]) -> None:
    """Write ``frames`` in one write, so that the server reads them in one turn."""
    for frame in frames:
        ws.protocol.send_text(frame.encode())
    ws.transport.write(b"".join(ws.protocol.data_to_send()))


def test_messages_read_together_go_in_one_script_in_their_order(redis_server):
    """Room messages into one room read in one turn are numbered, kept and published by
    one script; one into another room between them starts a script of its own, so that
    a member of both rooms still gets them in the order they were sent. A resend in the
    same read is answered as a resend, not delivered twice."""

    async def scenario() -> None:
        one = await LabServer(redis=redis_server.url).start()
        two = await LabServer(redis=redis_server.url).start()
        scripts: list[list[str]] = []  # the refs of each send.lua run, from `one`
        pipe = one.events.manager._redis
        call = pipe.call_deferred

        def noting(command):  # type: ignore[no-untyped-def]
            if isinstance(command, SendBatch):
                scripts.append(command.waiting)
            return call(command)

        pipe.call_deferred = noting
        bob = await EventClient.connect(two.url, "bob")
        for room in ("lobby", "kitchen"):
            await bob.emit("join-room", room, ack=True)
        try:
            async with connect(f"{one.url}/ws?user=alice") as ws:
                for id, room in ((1, "lobby"), (2, "kitchen")):
                    await join(ws, id, room)
                frames = [send(3, "m3"), send(4, "m4"), send(5, "m5", "kitchen")]
                for id in (6, 7):  # m6, then a resend of it (the same mid)
                    frames.append(send(id, "m6", mid="m6"))
                await write_together(ws, frames)
                got = await frames_until_ack(ws, 7)
            # Bob is on the other process, which reads the channel on its own time.
            await bob.wait_for("receive-message", 4, timeout=GUARD)
            await asyncio.sleep(0.2)  # a duplicate of m6 would show up now
        finally:
            await bob.close()
            await one.stop()
            await two.stop()
        # lobby (m3, m4), kitchen, lobby, and the resend of m6 in one of its own: it must
        # find m6's mid noted by the script before it
        assert [len(refs) for refs in scripts] == [2, 1, 1, 1]
        acks = {f["ack"]: f["data"] for f in got if "ack" in f}
        assert [acks[id]["seq"] for id in (3, 4, 6)] == [1, 2, 3]
        assert acks[5]["seq"] == 1  # the kitchen's own numbering
        assert acks[7] == acks[6]  # the resend: the first one's answer, once more
        everything = [e.data["message"] for e in bob.events("receive-message")]
        assert everything == ["m3", "m4", "m5", "m6"]

    run(scenario())
