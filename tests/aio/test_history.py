"""Room history: the pure History, the Journal on disk, and a server restarted on its data.

History and Journal are driven directly (the clock is an argument, files live in
``tmp_path``). The end-to-end tests start real lab servers on a ``data_dir``, stop
them, and start new ones on the same folder, with real clients in between.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

import rtlab
from rtlab.aio.client import EventClient
from rtlab.aio.events import EventHub
from rtlab.aio.journal import FILENAME, Journal
from rtlab.aio.lab_app import LabApp
from rtlab.aio.server import LabServer
from rtlab.core.history import RECORD_OVERHEAD, History, Record, cost, floor_of

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T], timeout: float = 20) -> T:
    return asyncio.run(asyncio.wait_for(coro, timeout))


def message(i: int) -> dict[str, Any]:
    return {"userId": "alice", "roomId": "r", "message": f"m{i}"}


def filled(count: int, **options: Any) -> History:
    """``count`` messages in ("/", "r"), message i sent at time i (1, 2, 3...)."""
    history = History(**options)
    for i in range(1, count + 1):
        history.append("/", "r", message(i), now=float(i))
    return history


def texts(payloads: list[dict[str, Any]]) -> list[str]:
    return [p["message"] for p in payloads]


# -- History: numbering ----------------------------------------------------------------


def test_messages_are_numbered_per_namespace_and_room():
    history = History()
    assert history.last_seq("/", "a") == 0
    payload = {"userId": "alice", "roomId": "a", "message": "hi"}
    first = history.append("/", "a", payload, now=1.0)
    assert first == Record("/", "a", 1, 1.0, {**payload, "seq": 1})
    assert payload == {"userId": "alice", "roomId": "a", "message": "hi"}  # not changed
    assert history.append("/", "a", payload, now=2.0).seq == 2
    assert history.append("/", "b", payload, now=3.0).seq == 1  # another room
    assert history.append("/chat", "a", payload, now=4.0).seq == 1  # another namespace
    assert history.append("/", "a", payload, now=5.0).payload["seq"] == 3
    assert (history.last_seq("/", "a"), history.last_seq("/", "b")) == (3, 1)
    assert (history.last_seq("/chat", "a"), history.last_seq("/chat", "b")) == (1, 0)
    # Room by room, in order: what a journal compacts to.
    assert [(r.ns, r.room, r.seq) for r in history.records()] == [
        ("/", "a", 1),
        ("/", "a", 2),
        ("/", "a", 3),
        ("/", "b", 1),
        ("/chat", "a", 1),
    ]


def test_add_keeps_numbers_from_elsewhere_and_refuses_to_go_back():
    history = History()
    history.add(Record("/", "r", 5, 1.0, {"seq": 5}))  # a gap is fine: reloaded from disk
    assert history.last_seq("/", "r") == 5
    for seq in (5, 4, 0):
        with pytest.raises(ValueError, match=rf"seq {seq} in \('/', 'r'\) is not after 5"):
            history.add(Record("/", "r", seq, 2.0, {"seq": seq}))
    assert history.append("/", "r", message(6), now=3.0).seq == 6  # numbering goes on
    assert [r.seq for r in history.records()] == [5, 6]


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"size": 0}, "need size >= 1 and window > 0, got 0 and 300.0"),
        ({"size": -1}, "got -1"),
        ({"window": 0}, "need size >= 1 and window > 0, got 1000 and 0"),
        ({"window": -5.0}, "got 1000 and -5.0"),
    ],
)
def test_bad_arguments_are_refused(options, words):
    with pytest.raises(ValueError, match=words.replace(".", r"\.")):
        History(**options)


# -- History: since() and recent() --------------------------------------------------------


def test_since_gives_what_came_after_in_order_and_complete():
    history = filled(5)
    assert history.since("/", "r", 0, now=6.0) == (
        [{**message(i), "seq": i} for i in range(1, 6)],
        True,
    )
    missed, complete = history.since("/", "r", 3, now=6.0)
    assert (texts(missed), [p["seq"] for p in missed], complete) == (["m4", "m5"], [4, 5], True)
    assert history.since("/", "r", 5, now=6.0) == ([], True)  # up to date
    assert history.since("/", "r", 9, now=6.0) == ([], True)  # ahead: nothing to give
    assert history.since("/", "empty", 0, now=6.0) == ([], True)
    assert history.since("/chat", "r", 0, now=6.0) == ([], True)


def test_since_is_incomplete_past_the_size_limit():
    history = filled(5, size=3)  # keeps m3, m4, m5
    assert [r.seq for r in history.records()] == [3, 4, 5]
    for seq in (0, 1):  # m2 (and m1) are gone: the client must know
        missed, complete = history.since("/", "r", seq, now=6.0)
        assert (texts(missed), complete) == (["m3", "m4", "m5"], False)
    missed, complete = history.since("/", "r", 2, now=6.0)  # m3 onwards: all there
    assert (texts(missed), complete) == (["m3", "m4", "m5"], True)
    assert history.since("/", "r", 5, now=6.0) == ([], True)
    assert history.last_seq("/", "r") == 5  # numbering is not limited by the size


def test_since_is_incomplete_past_the_time_window():
    history = filled(5, window=2.0)  # m_i sent at time i
    # At 5.5: m4 (1.5 s old) and m5 are within the window, m3 (2.5 s) is not.
    missed, complete = history.since("/", "r", 0, now=5.5)
    assert (texts(missed), complete) == (["m4", "m5"], False)
    assert history.since("/", "r", 2, now=5.5)[1] is False
    missed, complete = history.since("/", "r", 3, now=5.5)
    assert (texts(missed), complete) == (["m4", "m5"], True)
    # The window's edge is inclusive: at 5.0, m3 is exactly 2 s old and still there.
    assert texts(history.since("/", "r", 0, now=5.0)[0]) == ["m3", "m4", "m5"]
    # Much later everything is too old: only a client that saw m5 is complete.
    assert history.since("/", "r", 4, now=100.0) == ([], False)
    assert history.since("/", "r", 5, now=100.0) == ([], True)


def test_recent_gives_the_last_messages_within_the_window():
    history = filled(5, size=4, window=2.5)
    assert texts(history.recent("/", "r", 2, now=5.0)) == ["m4", "m5"]
    assert texts(history.recent("/", "r", 10, now=5.0)) == ["m3", "m4", "m5"]  # window: 2.5 s
    bigger_window = filled(5, size=4)
    assert texts(bigger_window.recent("/", "r", 10, now=5.0)) == ["m2", "m3", "m4", "m5"]
    assert history.recent("/", "r", 0, now=5.0) == []
    assert history.recent("/", "r", -1, now=5.0) == []
    assert history.recent("/", "other", 3, now=5.0) == []
    assert history.recent("/", "r", 3, now=100.0) == []


# -- History: memory bounds and numbers that never repeat ------------------------------


def test_the_byte_budget_takes_the_least_recently_used_rooms_oldest_messages_first():
    one = cost(Record("/", "a", 1, 0.0, {"m": "a1", "seq": 1}))  # every message costs this
    assert one == sys.getsizeof("a1") + sys.getsizeof(1) + RECORD_OVERHEAD
    history = History(max_bytes=4 * one)
    for room in ("a", "b"):
        for i in (1, 2):
            history.append("/", room, {"m": f"{room}{i}"}, now=0)
    assert history.bytes == 4 * one
    history.append("/", "a", {"m": "a3"}, now=0)  # a is now the most recently used
    assert [p["m"] for p in history.recent("/", "b", 9, now=0)] == ["b2"]  # b's oldest went
    history.append("/", "c", {"m": "c1"}, now=0)
    history.append("/", "c", {"m": "c2"}, now=0)  # b2, then a1
    assert [(r.room, r.seq) for r in history.records()] == [("a", 2), ("a", 3), ("c", 1), ("c", 2)]
    assert history.bytes == 4 * one
    # Those whose messages went are told their recovery is incomplete.
    assert history.since("/", "b", 0, now=0) == ([], False)
    assert history.since("/", "b", 2, now=0) == ([], True)  # saw everything
    assert history.since("/", "a", 0, now=0)[1] is False
    assert history.since("/", "a", 1, now=0)[1] is True
    assert (history.last_seq("/", "a"), history.last_seq("/", "b")) == (3, 2)


def test_the_byte_budget_counts_what_size_and_rooms_limits_drop():
    history = History(size=2, rooms=2)
    for room in ("a", "a", "a", "b", "c"):  # a1 goes by size, then the whole of room a
        history.append("/", room, {"m": "x" * 100}, now=0)
    assert history.bytes == sum(cost(r) for r in history.records())
    assert [r.room for r in history.records()] == ["b", "c"]
    big = History(max_bytes=100)
    big.append("/", "a", {"m": "x" * 200}, now=0)  # bigger than the whole budget
    assert (big.records(), big.bytes, big.last_seq("/", "a")) == ([], 0, 1)
    with pytest.raises(ValueError, match="need max_bytes >= 1, got 0"):
        History(max_bytes=0)


def test_a_forgotten_rooms_numbers_go_into_its_floor_and_never_come_back():
    history = History(size=1, rooms=1)  # numbers of 2 rooms are remembered, then floors
    for _ in range(5):
        history.append("/", "old", {}, now=0)
    for room in ("b", "c"):
        history.append("/", room, {}, now=0)  # "old"'s number is forgotten now
    assert history.last_seq("/", "old") == 5  # its floor holds it
    assert history.append("/", "old", {}, now=0).seq == 6  # not 1 again
    # A client that saw "old" up to 3 is told it missed something, not given seq 1.
    assert history.since("/", "old", 3, now=0) == ([{"seq": 6}], False)
    # Another room of the same floor, never used, starts above the floor too.
    same = next(f"r{i}" for i in range(100_000) if floor_of("/", f"r{i}") == floor_of("/", "old"))
    assert history.last_seq("/", same) == 5
    assert history.append("/", same, {}, now=0).seq == 6
    assert history.since("/", same, 0, now=0)[1] is False  # it cannot know: incomplete


# -- Journal ------------------------------------------------------------------------------


def lines(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (folder / FILENAME).read_text().splitlines()]


def test_a_journal_round_trip_keeps_records_users_and_mids(tmp_path):
    journal = Journal(tmp_path)
    with pytest.raises(RuntimeError, match="load"):
        journal.append(Record("/", "r", 1, 1.0, {"seq": 1}, "alice", "m-1"))
    history = History()
    assert journal.load(history) == []  # no file yet: it is made
    assert (tmp_path / FILENAME).read_text() == ""
    first = history.number("/", "r", message(1), 1.0, "alice", "a-1")
    assert history.number("/", "r", message(2), 2.0).seq == first.seq == 1  # not kept yet
    written = []
    for args in [
        ("/", "r", message(1), 1.0, "alice", "a-1"),
        ("/", "r", message(2), 2.0, "bob", None),
        ("/chat", "r", message(3), 3.0, "alice", "a-2"),
    ]:
        record = history.number(*args)
        journal.append(record)  # on disk first, then kept
        written.append(history.add(record))
    journal.close()
    journal.close()  # twice is fine
    assert lines(tmp_path)[0] == {
        "ns": "/",
        "room": "r",
        "seq": 1,
        "time": 1.0,
        "payload": {**message(1), "seq": 1},
        "user": "alice",
        "mid": "a-1",
    }

    again = History()
    loaded = Journal(tmp_path).load(again)
    assert sorted(loaded, key=lambda r: r.ns) == written
    assert [(r.user, r.mid) for r in again.records()] == [
        ("alice", "a-1"),
        ("bob", None),
        ("alice", "a-2"),
    ]
    assert again.records() == history.records()
    assert (again.last_seq("/", "r"), again.last_seq("/chat", "r")) == (2, 1)


def appended(journal: Journal, history: History, count: int, room: str = "r") -> None:
    """``count`` messages to ``room``, each on disk then kept, as the server does."""
    for _ in range(count):
        seq = history.last_seq("/", room) + 1
        record = history.number("/", room, message(seq), float(seq), "alice", f"a-{seq}")
        journal.append(record)
        history.add(record)


def test_loading_compacts_the_file_to_what_the_history_keeps(tmp_path):
    journal = Journal(tmp_path)
    journal.load(History())
    appended(journal, History(), 6)
    journal.close()
    assert len(lines(tmp_path)) == 6

    small = History(size=2)
    loaded = Journal(tmp_path).load(small)
    assert [(r.seq, r.user, r.mid) for r in loaded] == [(5, "alice", "a-5"), (6, "alice", "a-6")]
    assert [line["seq"] for line in lines(tmp_path)] == [5, 6]
    assert list(tmp_path.iterdir()) == [tmp_path / FILENAME]  # no temporary file left


def test_a_line_cut_short_by_a_crash_is_skipped_and_appending_goes_on(tmp_path):
    journal = Journal(tmp_path)
    history = History()
    journal.load(history)
    appended(journal, history, 3)
    journal.close()
    path = tmp_path / FILENAME
    whole = path.read_text()
    assert whole.count("\n") == 3
    # The process died while writing line 4: half a line, no newline.
    path.write_text(whole + whole.splitlines()[0][:40].replace('"seq":1', '"seq":4'))

    restarted = History()
    journal = Journal(tmp_path)
    loaded = journal.load(restarted)
    assert [(r.seq, r.mid) for r in loaded] == [(1, "a-1"), (2, "a-2"), (3, "a-3")]
    assert path.read_text() == whole  # compacted: the broken tail is gone
    appended(journal, restarted, 1)
    journal.close()
    assert [r.seq for r in Journal(tmp_path).load(History())] == [1, 2, 3, 4]


def test_unreadable_and_out_of_order_lines_are_skipped(tmp_path):
    good = [
        {"ns": "/", "room": "r", "seq": 1, "time": 1.0, "payload": {"seq": 1}, "user": "a"},
        {"ns": "/", "room": "r", "seq": 2, "time": 2.0, "payload": {"seq": 2}},
    ]
    text = "\n".join(
        [
            json.dumps(good[0]),
            "not json",
            "[1, 2]",
            json.dumps({"ns": "/", "room": "r"}),  # fields missing
            json.dumps(good[1]),
            json.dumps({**good[0], "mid": "again"}),  # seq 1 again: not after 2
            "",
        ]
    )
    (tmp_path / FILENAME).write_text(text)
    loaded = Journal(tmp_path).load(History())
    assert [(r.seq, r.user, r.mid) for r in loaded] == [(1, "a", None), (2, None, None)]
    assert [line["seq"] for line in lines(tmp_path)] == [1, 2]


# -- end to end: a server restarted on its data dir ----------------------------------------


async def joined(url: str, user: str, room: str = "lobby", **options: Any) -> EventClient:
    client = await EventClient.connect(url, user, **options)
    await client.emit("join-room", room, ack=True)
    return client


def test_a_restarted_server_keeps_history_numbering_and_mids(tmp_path):
    async def before(url: str) -> None:
        alice, bob = await joined(url, "alice"), await joined(url, "bob")
        for i in (1, 2, 3):
            ack = await alice.emit(
                "send-message", {"roomId": "lobby", "message": f"m{i}"}, ack=True, mid=f"a-{i}"
            )
            assert ack == {"roomId": "lobby", "seq": i, "delivered": 2}
        await alice.emit("connect", ns="/chat", ack=True)
        await alice.emit("join-room", "lobby", ns="/chat", ack=True)
        ack = await alice.emit(
            "send-message", {"roomId": "lobby", "message": "chat"}, ns="/chat", ack=True, mid="c"
        )
        assert ack == {"roomId": "lobby", "seq": 1, "delivered": 1}
        await alice.emit("broadcast", "hello", ack=True, mid="b-1")
        assert len(await bob.wait_for("receive-message", 3)) == 3
        await alice.close()
        await bob.close()

    async def after(url: str) -> None:
        # bob saw m1 and was away for m2 and m3 (say): he asks since 1.
        bob = await EventClient.connect(url, "bob")
        answer = await bob.emit("join-room", {"roomId": "lobby", "since": 1}, ack=True)
        del answer["history"], answer["presence"]  # lesson 09's (tests/aio/test_chat.py)
        assert answer == {
            "roomId": "lobby",
            "members": ["bob"],
            "seq": 3,
            "recovered": True,
            "replayed": 2,
        }
        replayed = [e.data for e in bob.events("receive-message")]
        assert [(m["message"], m["seq"]) for m in replayed] == [("m2", 2), ("m3", 3)]
        alice = await joined(url, "alice")
        # A resend of an already-delivered message: acknowledged, not delivered again.
        message = {"roomId": "lobby", "message": "m2"}
        ack = await alice.emit("send-message", message, ack=True, mid="a-2")
        assert ack == {"roomId": "lobby", "seq": 2}
        # New messages go on from the numbers on disk.
        ack = await alice.emit("send-message", {"roomId": "lobby", "message": "m4"}, ack=True)
        assert ack == {"roomId": "lobby", "seq": 4, "delivered": 2}
        assert [m["message"] for m in await bob.wait_for("receive-message", 3)] == [
            "m2",
            "m3",
            "m4",
        ]
        await alice.emit("connect", ns="/chat", ack=True)
        chat = await alice.emit("join-room", {"roomId": "lobby", "since": 0}, ns="/chat", ack=True)
        assert (chat["seq"], chat["replayed"]) == (1, 1)
        ack = await alice.emit(
            "send-message", {"roomId": "lobby", "message": "chat"}, ns="/chat", ack=True, mid="c"
        )
        assert ack == {"roomId": "lobby", "seq": 1}  # its mid came back from disk too
        # Only room messages' mids are kept on disk: a broadcast's mid is forgotten.
        assert await alice.emit("broadcast", "hello", ack=True, mid="b-1") == {"delivered": 2}
        assert len(await bob.wait_for("broadcast-message")) == 1
        assert [e.data["message"] for e in bob.events("receive-message")] == ["m2", "m3", "m4"]
        await alice.close()
        await bob.close()

    with rtlab.start_server(data_dir=tmp_path) as server:
        run(before(server.url))
    assert [line["seq"] for line in lines(tmp_path)] == [1, 2, 3, 1]
    with rtlab.start_server(data_dir=tmp_path) as server:
        assert "INFO history: 4 messages loaded from" in "\n".join(server.log)
        run(after(server.url))
    with rtlab.start_server(data_dir=tmp_path) as server:  # and once more: nothing lost
        assert "INFO history: 5 messages loaded from" in "\n".join(server.log)


def test_the_same_server_object_stopped_and_started_again_keeps_its_journal(tmp_path):
    async def main() -> None:
        server = await LabServer(data_dir=tmp_path).start()
        alice = await joined(server.url, "alice")
        for text in ("one", "two"):
            await alice.emit("send-message", {"roomId": "lobby", "message": text}, ack=True)
        await alice.close()
        await server.stop()
        await server.start()  # loads the journal again
        alice = await joined(server.url, "alice")
        ack = await alice.emit("send-message", {"roomId": "lobby", "message": "three"}, ack=True)
        assert ack == {"roomId": "lobby", "seq": 3, "delivered": 1}
        await alice.close()
        await server.stop()

    run(main())
    assert [line["payload"]["message"] for line in lines(tmp_path)] == ["one", "two", "three"]


def test_history_size_and_window_limit_recovery_after_a_restart(tmp_path):
    async def fill(url: str) -> None:
        alice = await joined(url, "alice")
        for i in range(1, 6):
            await alice.emit("send-message", {"roomId": "lobby", "message": f"m{i}"}, ack=True)
        await alice.close()

    async def recover(url: str, since: int) -> tuple[dict[str, Any], list[str]]:
        bob = await EventClient.connect(url, "bob")
        answer = await bob.emit("join-room", {"roomId": "lobby", "since": since}, ack=True)
        got = [e.data["message"] for e in bob.events("receive-message")]
        await bob.close()
        return answer, got

    with rtlab.start_server(data_dir=tmp_path) as server:
        run(fill(server.url))
    with rtlab.start_server(data_dir=tmp_path, history_size=3) as server:
        answer, got = run(recover(server.url, 0))
        assert (answer["recovered"], answer["replayed"], answer["seq"]) == (False, 3, 5)
        assert got == ["m3", "m4", "m5"]
        answer, got = run(recover(server.url, 2))
        assert (answer["recovered"], got) == (True, ["m3", "m4", "m5"])
    assert len(lines(tmp_path)) == 3  # compacted to what is kept
    with rtlab.start_server(data_dir=tmp_path, history_window=0.2) as server:
        run(asyncio.sleep(0.3))  # every message is older than the window now
        answer, got = run(recover(server.url, 3))
        assert (answer["recovered"], answer["replayed"], got) == (False, 0, [])
        answer, got = run(recover(server.url, 5))  # up to date: nothing was missed
        assert (answer["recovered"], answer["replayed"]) == (True, 0)


def test_loading_the_journal_keeps_the_history_limits(tmp_path):
    hub = EventHub(logging.getLogger("test"))
    app = LabApp(history=History(2, 10.0, rooms=3), journal=None)
    assert app.load_journal(hub) == 0  # no journal: nothing to do
    app = LabApp(history=History(2, 10.0, rooms=3), journal=Journal(tmp_path))
    assert app.load_journal(hub) == 0
    assert (app.history.size, app.history.window, app.history.max_rooms) == (2, 10.0, 3)
    app.journal.close()
