"""Namespace /progress on a real lab server: students report, instructors watch and announce,
anyone else is refused; and the notebook's reporter (rtlab/notebook/progress_report.py)
delivers each verdict once, queued while the server is away, and stops on a refusal."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

import rtlab
from rtlab.aio import progress_journal
from rtlab.aio.builtin_events import INSTRUCTORS_BROADCAST
from rtlab.aio.client import AckError, EventClient
from rtlab.aio.progress_events import NAMESPACE, NOT_AN_INSTRUCTOR
from rtlab.aio.server import LabServer
from rtlab.checks.handshake import check_accept_key
from rtlab.core import progress as progress_module
from rtlab.core.handshake import accept_key
from rtlab.core.progress import MAX_EXERCISES, ClassProgress, Report
from rtlab.core.tokens import issue
from rtlab.notebook import progress_report
from rtlab.notebook import shared as shared_module
from rtlab.notebook.shared import SharedServer

SECRET = "class-secret"
T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
    return asyncio.run(asyncio.wait_for(coro, timeout))


def token(user: str, role: str = "student", ttl: float = 3600) -> str:
    return issue(SECRET, user, ttl, time.time(), role)


async def client(server: LabServer, user: str, role: str = "student") -> EventClient:
    return await EventClient.connect(server.url, user, token=token(user, role))


def report(exercise: str = "accept_key", passed: bool = False, attempt: int = 1, run: str = "k1"):
    return {
        "lesson": "handshake",
        "exercise": exercise,
        "passed": passed,
        "attempt": attempt,
        "run": run,
    }


def test_a_report_is_kept_and_an_instructor_watching_sees_it_at_once():
    async def main() -> None:
        async with LabServer(secret=SECRET) as server:
            teacher = await client(server, "teach", "instructor")
            view = await teacher.emit("subscribe", ns=NAMESPACE, ack=True)
            assert view["online"] == [] and view["students"] == {} and view["exercises"] == []
            ann = await client(server, "ann")
            ack = await ann.emit("report", report(attempt=1), ns=NAMESPACE, ack=True)
            assert ack == {"state": "failing", "attempts": 1}
            ack = await ann.emit("report", report(passed=True, attempt=2), ns=NAMESPACE, ack=True)
            assert ack == {"state": "passed", "attempts": 2}
            updates = await teacher.wait_for("progress", count=2, ns=NAMESPACE, timeout=5)
            assert updates == [
                {
                    "user": "ann",
                    "exercise": "handshake/accept_key",
                    "state": "failing",
                    "attempts": 1,
                },
                {
                    "user": "ann",
                    "exercise": "handshake/accept_key",
                    "state": "passed",
                    "attempts": 2,
                },
            ]
            await ann.emit("join-room", "lobby", ack=True)
            view = await teacher.emit("snapshot", ns=NAMESPACE, ack=True)
            assert view["online"] == ["ann"]  # the instructor is not a student
            assert view["exercises"] == ["handshake/accept_key"]
            assert view["students"] == {
                "ann": {"handshake/accept_key": {"state": "passed", "attempts": 2}}
            }
            assert view["rooms"] == [{"ns": "/", "room": "lobby", "members": ["ann"]}]
            assert view["dropped"] == {"slow": 0, "abusive": 0}
            await ann.close()
            await teacher.close()

    run(main())


def test_a_report_sent_again_counts_once():
    async def main() -> None:
        async with LabServer(secret=SECRET) as server:
            ann = await client(server, "ann")
            for _ in range(2):  # the same mid: the hub answers from memory
                ack = await ann.emit("report", report(), ns=NAMESPACE, ack=True, mid="p-k1-1")
                assert ack == {"state": "failing", "attempts": 1}
            # the same (run, attempt) under another mid, as after a server restart
            ack = await ann.emit("report", report(), ns=NAMESPACE, ack=True)
            assert ack == {"state": "failing", "attempts": 1}
            ack = await ann.emit("report", report(attempt=1, run="k2"), ns=NAMESPACE, ack=True)
            assert ack == {"state": "failing", "attempts": 2}  # a restarted kernel counts on
            await ann.close()

    run(main())


def test_a_student_making_up_exercises_never_keeps_the_class_out_of_the_grid():
    """One student reports more made-up exercises than the grid holds, before and after
    the class starts one: the instructor sees the class's exercise and every cell of it."""

    async def main() -> None:
        async with LabServer(secret=SECRET) as server:
            mallory = await client(server, "mallory")
            for i in range(MAX_EXERCISES + 20):
                await mallory.emit("report", report(f"junk{i}"), ns=NAMESPACE, ack=True)
            ann, bob = await client(server, "ann"), await client(server, "bob")
            assert await ann.emit("report", report(), ns=NAMESPACE, ack=True) == {
                "state": "failing",
                "attempts": 1,
            }
            await bob.emit("report", report(passed=True), ns=NAMESPACE, ack=True)
            for i in range(MAX_EXERCISES + 20, 2 * MAX_EXERCISES):
                await mallory.emit("report", report(f"junk{i}"), ns=NAMESPACE, ack=True)
            teacher = await client(server, "teach", "instructor")
            view = await teacher.emit("subscribe", ns=NAMESPACE, ack=True)
            assert "handshake/accept_key" in view["exercises"]
            assert len(view["exercises"]) == MAX_EXERCISES
            assert view["students"]["ann"] == {
                "handshake/accept_key": {"state": "failing", "attempts": 1}
            }
            assert view["students"]["bob"] == {
                "handshake/accept_key": {"state": "passed", "attempts": 1}
            }
            assert (view["replaced"], view["ignored"]) == (MAX_EXERCISES + 1, 0)
            for each in (mallory, ann, bob, teacher):
                await each.close()

    run(main(), timeout=60)


def test_the_instructor_sees_the_class_tables_first_whatever_rooms_a_student_made(
    monkeypatch,
):
    monkeypatch.setattr(progress_module, "MAX_ROOMS_SHOWN", 5)

    async def main() -> None:
        async with LabServer(secret=SECRET) as server:
            mallory = await client(server, "mallory")
            for i in range(50):  # named to sort before the class's tables
                await mallory.emit("join-room", f"aaa{i:02}", ack=True)
            table = [await client(server, user) for user in ("ann", "bob", "cat")]
            for each in table:
                await each.emit("join-room", "table-1", ack=True)
            teacher = await client(server, "teach", "instructor")
            view = await teacher.emit("subscribe", ns=NAMESPACE, ack=True)
            assert view["rooms"] == [
                {"ns": "/", "room": "table-1", "members": ["ann", "bob", "cat"]},
                *({"ns": "/", "room": f"aaa{i:02}", "members": ["mallory"]} for i in range(4)),
            ]
            for each in (mallory, *table, teacher):
                await each.close()

    run(main())


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("accept_key", "a report is an object: {lesson, exercise, passed, attempt, run}"),
        ({**report(), "code": "x"}, "unexpected field 'code'"),
        ({**report(), "attempt": 0}, "attempt must be a whole number from 1 to 1000000, got 0"),
        ({**report(), "passed": "yes"}, "passed must be true or false, got 'yes'"),
        (
            {**report(), "exercise": "<b>"},
            "exercise must be 1 to 64 letters, digits or _. - , got '<b>'",
        ),
    ],
)
def test_a_malformed_report_is_refused_with_the_reason(data, message):
    async def main() -> None:
        async with LabServer(secret=SECRET) as server:
            ann = await client(server, "ann")
            with pytest.raises(AckError) as refused:
                await ann.emit("report", data, ns=NAMESPACE, ack=True)
            assert (refused.value.code, refused.value.message) == ("invalid", message)
            await ann.close()

    run(main())


@pytest.mark.parametrize("event", ["subscribe", "snapshot", "announce"])
def test_only_an_instructor_may_watch_or_announce(event):
    async def main() -> None:
        async with LabServer(secret=SECRET) as server:
            ann = await client(server, "ann")  # a student's token
            with pytest.raises(AckError) as refused:
                await ann.emit(event, {"message": "hi"}, ns=NAMESPACE, ack=True)
            assert (refused.value.code, refused.value.message) == ("forbidden", NOT_AN_INSTRUCTOR)
            await ann.close()
        async with LabServer() as server:  # no secret: nobody is an instructor
            anon = await EventClient.connect(server.url, "teach")
            with pytest.raises(AckError, match="forbidden"):
                await anon.emit(event, {"message": "hi"}, ns=NAMESPACE, ack=True)
            await anon.close()

    run(main())


def test_an_announcement_reaches_every_connection():
    async def main() -> None:
        async with LabServer(secret=SECRET) as server:
            teacher = await client(server, "teach", "instructor")
            students = [await client(server, name) for name in ("ann", "bob")]
            ack = await teacher.emit(
                "announce", {"message": "break: back at 11"}, ns=NAMESPACE, ack=True
            )
            assert ack == {"delivered": 3}
            for student in students:
                [got] = await student.wait_for("broadcast-message", count=1, timeout=5)
                assert (got["userId"], got["message"]) == ("teach", "break: back at 11")
                await student.close()
            with pytest.raises(AckError, match="at most 500 characters"):
                await teacher.emit("announce", {"message": "x" * 501}, ns=NAMESPACE, ack=True)
            await teacher.close()

    run(main())


def test_on_a_class_server_only_an_instructor_sends_to_everyone():
    async def main() -> None:
        async with LabServer(secret=SECRET) as server:
            teacher = await client(server, "teach", "instructor")
            ann = await client(server, "ann")
            with pytest.raises(AckError) as refused:
                await ann.emit("broadcast", "CLASS CANCELLED -- the instructor", ack=True)
            assert (refused.value.code, refused.value.message) == (
                "forbidden",
                INSTRUCTORS_BROADCAST,
            )
            assert await teacher.emit("broadcast", "lunch", ack=True) == {"delivered": 2}
            [got] = await ann.wait_for("broadcast-message", count=1, timeout=5)
            assert (got["userId"], got["message"]) == ("teach", "lunch")
            await asyncio.sleep(0.2)  # a refused one would have come by now
            assert len(ann.events("broadcast-message")) == 1
            for one in (teacher, ann):
                await one.close()
        async with LabServer() as server:  # no secret, a learner's own: anyone may
            anon = await EventClient.connect(server.url, "ann")
            assert await anon.emit("broadcast", "hello all", ack=True) == {"delivered": 1}
            await anon.close()

    run(main())


def test_refused_handshakes_are_counted_by_status():
    async def main() -> None:
        async with LabServer(secret=SECRET) as server:
            expired = issue(SECRET, "ann", 1, time.time() - 100)
            for query in (f"token={expired}", "token=nonsense", ""):
                with pytest.raises(InvalidStatus):
                    await connect(f"{server.url}/ws?{query}")
            teacher = await client(server, "teach", "instructor")
            view = await teacher.emit("snapshot", ns=NAMESPACE, ack=True)
            assert view["refused"] == {"401": 3}
            await teacher.close()

    run(main())


# -- the reporter, from a check to the server ------------------------------------------------


def wait_until(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def grid(server) -> dict[str, Any]:
    return server.call(lambda: server.server.progress.store.progress.grid())


def test_a_check_reports_its_verdict_and_nothing_without_a_class_server(monkeypatch):
    monkeypatch.delenv("RTLAB_SERVER", raising=False)
    monkeypatch.delenv("RTLAB_TOKEN", raising=False)
    monkeypatch.setattr(shared_module, "chosen", [])
    before = dict(progress_report._reporters)
    assert check_accept_key(accept_key)  # no class server: nothing made, nothing sent
    assert progress_report._reporters == before
    with rtlab.start_server(secret=SECRET) as server:
        shared = SharedServer(server.url, token("ann"))
        with progress_report.reporting_to(shared):
            started = time.perf_counter()
            assert not check_accept_key(lambda key: key)
            assert check_accept_key(accept_key)
            assert time.perf_counter() - started < 1.0
        ann = progress_report.reporter(shared)
        wait_until(lambda: ann.unsent == 0 and ann.handed == 2)
        wait_until(lambda: grid(server)["students"] != {})
        assert grid(server)["students"] == {
            "ann": {"handshake/accept_key": {"state": "passed", "attempts": 2}}
        }


def test_a_shared_server_asked_for_in_a_cell_is_where_checks_report(monkeypatch):
    monkeypatch.setattr(shared_module, "chosen", [])
    monkeypatch.delenv("RTLAB_SERVER", raising=False)
    assert progress_report.class_server() is None
    without_token = rtlab.shared_server("ws://127.0.0.1:9")
    assert progress_report.class_server() is None  # nobody to report as
    with_token = rtlab.shared_server("ws://127.0.0.1:9", token=token("dan"))
    assert progress_report.class_server() == with_token != without_token
    monkeypatch.setenv("RTLAB_SERVER", "ws://127.0.0.1:10")
    eve = token("eve")
    monkeypatch.setenv("RTLAB_TOKEN", eve)
    assert progress_report.class_server() == with_token  # the cell's choice wins
    monkeypatch.setattr(shared_module, "chosen", [])
    assert progress_report.class_server() == SharedServer("ws://127.0.0.1:10", eve)


def test_reports_made_while_the_server_is_away_are_sent_when_it_is_back():
    server = rtlab.start_server(secret=SECRET)
    port = server.port
    server.stop()
    shared = SharedServer(f"ws://127.0.0.1:{port}", token("bob"))
    bob = progress_report.reporter(shared)
    with progress_report.reporting_to(shared):
        for answer in (lambda key: key, lambda key: key, accept_key):
            check_accept_key(answer)
    assert bob.unsent == 3
    with rtlab.start_server(port=port, secret=SECRET) as server:
        wait_until(lambda: bob.unsent == 0, timeout=10)
        assert grid(server)["students"] == {
            "bob": {"handshake/accept_key": {"state": "passed", "attempts": 3}}
        }


def test_a_reporter_with_an_expired_token_stops_at_once_with_the_reason():
    with rtlab.start_server(secret=SECRET) as server:
        shared = SharedServer(server.url, issue(SECRET, "cat", 1, time.time() - 150))
        with progress_report.reporting_to(shared):
            assert not check_accept_key(lambda key: key)  # the check itself is unharmed
        cat = progress_report.reporter(shared)
        # Refused, and the report dropped: two steps of the reporter's loop, in either
        # order (the report may reach it after the refusal), both within the second.
        wait_until(lambda: cat.refusal is not None and cat.unsent == 0, timeout=1.0)
        assert cat.refusal.startswith("your token was rejected: expired 2 min ago")
        assert cat.refusal.endswith("ask your instructor for a new one")
        assert cat.dropped == 1 and cat.unsent == 0
        assert grid(server)["students"] == {}
        # The next check says so, passed or not: the student can act on it.
        with progress_report.reporting_to(shared):
            verdict = check_accept_key(accept_key)
        assert verdict and str(verdict).splitlines() == [
            "✅ accept_key: correct",
            f"   Not sent to your class: {cat.refusal}",
        ]


# -- the grid on disk (--data-dir) -----------------------------------------------------------


def test_the_grid_survives_a_restart_with_a_data_dir_and_resends_still_count_once(tmp_path):
    async def main() -> None:
        async with LabServer(secret=SECRET, data_dir=tmp_path) as server:
            ann = await client(server, "ann")
            await ann.emit("report", report(attempt=1), ns=NAMESPACE, ack=True)
            await ann.emit("report", report(passed=True, attempt=2), ns=NAMESPACE, ack=True)
            await ann.close()
        async with LabServer(secret=SECRET, data_dir=tmp_path) as server:
            assert server.progress.store.loaded == 2
            teacher = await client(server, "teach", "instructor")
            view = await teacher.emit("subscribe", ns=NAMESPACE, ack=True)
            assert view["students"] == {
                "ann": {"handshake/accept_key": {"state": "passed", "attempts": 2}}
            }
            ann = await client(server, "ann")  # the kernel resends attempt 2: no new attempt
            ack = await ann.emit("report", report(passed=True, attempt=2), ns=NAMESPACE, ack=True)
            assert ack == {"state": "passed", "attempts": 2}
            await ann.close()
            await teacher.close()

    run(main())


def test_the_journal_is_compacted_to_the_grid_and_skips_a_torn_line(tmp_path, monkeypatch):
    monkeypatch.setattr(progress_journal, "MIN_LINES", 5)
    journal = progress_journal.ProgressJournal(tmp_path)
    progress = ClassProgress()
    journal.load(progress)
    for attempt in range(1, 13):  # one student trying again and again
        made = Report("ann", "handshake", "accept_key", attempt == 12, attempt, "k1")
        progress.record(made)
        journal.append(made)
    lines = journal.path.read_text().splitlines()
    assert len(lines) < 12  # compacted on the way: the file stays near the grid's size
    with journal.path.open("a") as out:
        out.write('{"user":"bob","lesson":"hands')  # a crash in the middle of a line
    again = ClassProgress()
    progress_journal.ProgressJournal(tmp_path).load(again)
    assert again.grid() == progress.grid()
    assert journal.path.read_text().splitlines() == [
        '{"user":"ann","lesson":"handshake","exercise":"accept_key","passed":true,'
        '"attempt":12,"run":"k1"}'
    ]


@pytest.mark.parametrize("seed", range(16))
def test_read_again_the_journal_gives_the_same_grid_past_every_bound(tmp_path, monkeypatch, seed):
    """Students evicted, exercises replaced, reports sent twice, compactions on the way:
    a restart shows the grid the server had, and then goes on the same way."""
    monkeypatch.setattr(progress_journal, "MIN_LINES", 30)
    pick = random.Random(seed)

    def made() -> Report:
        user = pick.choice(["ann", "bob", "cat", "dan", "eve"])
        exercise = pick.choice(["a", "b", "c", "d", "e", "f"])
        return Report(user, "x", exercise, pick.random() < 0.3, pick.randint(1, 3), "k")

    journal = progress_journal.ProgressJournal(tmp_path)
    progress = ClassProgress(max_students=3, max_exercises=3)
    journal.load(progress)
    for _ in range(80):
        report = made()
        if progress.record(report) is not None:
            journal.append(report)
    assert progress.replaced and progress.evicted
    again = ClassProgress(max_students=3, max_exercises=3)
    progress_journal.ProgressJournal(tmp_path).load(again)
    assert again.grid() == progress.grid()
    for _ in range(40):
        report = made()
        assert (again.record(report) is None) == (progress.record(report) is None)
        assert again.grid() == progress.grid()


def test_with_redis_away_a_report_is_refused_as_unavailable_and_kept_by_the_client():
    async def main() -> None:
        async with LabServer(secret=SECRET, redis="redis://127.0.0.1:1/0") as server:
            ann = await client(server, "ann")
            with pytest.raises(AckError) as refused:
                await ann.emit("report", report(), ns=NAMESPACE, ack=True)
            assert refused.value.code == "unavailable"  # the reporter's client retries these
            teacher = await client(server, "teach", "instructor")
            with pytest.raises(AckError, match="unavailable"):
                await teacher.emit("subscribe", ns=NAMESPACE, ack=True)
            await ann.close()
            await teacher.close()

    run(main())
