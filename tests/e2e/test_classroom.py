"""A class of 30: students run real checks with the class server set, and the instructor's
page (/teacher) in real Chromium shows exactly their grid, live; a message reaches the class;
a student with an expired token stops within a second with the reason; a student's token
cannot open the instructor's view. The screenshot is docs/teacher.png (docs/workshop.md)."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

import rtlab
from rtlab.aio.client import EventClient
from rtlab.aio.progress_events import NAMESPACE, NOT_AN_INSTRUCTOR
from rtlab.aio.server import LabServer
from rtlab.checks.handshake import check_accept_key, check_frame_header
from rtlab.core.handshake import accept_key
from rtlab.core.progress import Report
from rtlab.core.ratelimit import TokenBucket
from rtlab.core.tokens import issue
from rtlab.notebook import progress_report
from rtlab.notebook.shared import SharedServer
from tests.e2e.redis_server import RedisServer

pytestmark = pytest.mark.browser

SECRET = "workshop-secret"
STUDENTS = [f"student{i:02}" for i in range(30)]
IN_THREADS = STUDENTS[:27]  # the last three are scripts in processes of their own
# A student's script: the class server from RTLAB_SERVER/RTLAB_TOKEN, as in a workshop.
SCRIPT = """
import sys
from rtlab.checks.handshake import check_accept_key
from rtlab.core.handshake import accept_key
from rtlab.core.progress import Report
for step in sys.argv[1:]:
    print(check_accept_key(accept_key if step == "right" else lambda key: key))
"""
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "teacher.png"
ACCEPT, FRAME = "handshake/accept_key", "handshake/frame_header"


def frame_header(length: int, masked: bool) -> bytes:
    """A right answer."""
    head = bytes([0x81])
    mask = 0x80 if masked else 0
    if length < 126:
        return head + bytes([mask | length])
    if length < 2**16:
        return head + bytes([mask | 126]) + length.to_bytes(2, "big")
    return head + bytes([mask | 127]) + length.to_bytes(8, "big")


def wrong_accept_key(key: str) -> str:
    return key  # the key itself, not its hash


def wrong_frame_header(length: int, masked: bool) -> bytes:
    return bytes([0x81, min(length, 125)])  # never the extended lengths, never the mask bit


def plan(i: int) -> tuple[list[tuple[object, object]], dict[str, dict[str, object]]]:
    """Student i's checks, in order, and the cells the instructor should see."""
    runs: list[tuple[object, object]] = []
    cells: dict[str, dict[str, object]] = {}
    if i % 3 == 0:  # wrong, then right
        runs += [(check_accept_key, wrong_accept_key), (check_accept_key, accept_key)]
        cells[ACCEPT] = {"state": "passed", "attempts": 2}
    elif i % 3 == 1:  # right at once
        runs += [(check_accept_key, accept_key)]
        cells[ACCEPT] = {"state": "passed", "attempts": 1}
    else:  # stuck
        runs += [(check_accept_key, wrong_accept_key)] * 3
        cells[ACCEPT] = {"state": "failing", "attempts": 3}
    if i % 6 == 0:
        runs += [(check_frame_header, frame_header)]
        cells[FRAME] = {"state": "passed", "attempts": 1}
    elif i % 6 == 1:
        runs += [(check_frame_header, wrong_frame_header)]
        cells[FRAME] = {"state": "failing", "attempts": 1}
    return runs, cells


def token(user: str, role: str = "student", ttl: float = 3600) -> str:
    return issue(SECRET, user, ttl, time.time(), role)


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out: {what}"
        time.sleep(0.05)


def grid_on_page(page) -> dict[str, dict[str, dict[str, object]]]:
    """What the page shows: user -> exercise -> state and attempts (cells tried only)."""
    cells = page.eval_on_selector_all(
        "#grid tbody td",
        """tds => tds.map(td => [td.parentElement.dataset.user, td.dataset.exercise,
                                 td.dataset.state, Number(td.dataset.attempts), td.textContent])""",
    )
    shown: dict[str, dict[str, dict[str, object]]] = {}
    for user, exercise, state, attempts, text in cells:
        assert text == {"passed": f"✓ {attempts}", "failing": f"✗ {attempts}"}.get(state, "·")
        if state != "not tried":
            shown.setdefault(user, {})[exercise] = {"state": state, "attempts": attempts}
    return shown


def test_a_class_of_30_on_the_instructors_page(browser, monkeypatch):
    monkeypatch.delenv("RTLAB_SERVER", raising=False)
    # rtlab serve's rate limit per user (10 events/s, bursts of 50): a class server's
    with rtlab.start_server(secret=SECRET, rate_limit=TokenBucket(10, 50)) as server:
        expected: dict[str, dict[str, dict[str, object]]] = {}
        shared = {user: SharedServer(server.url, token(user)) for user in STUDENTS}
        failures: list[BaseException] = []

        def student(i: int) -> None:
            runs, cells = plan(i)
            expected[STUDENTS[i]] = cells
            if STUDENTS[i] not in IN_THREADS:
                steps = ["right" if answer is accept_key else "wrong" for _, answer in runs]
                script = subprocess.run(
                    [sys.executable, "-c", SCRIPT, *steps],
                    env={
                        **os.environ,
                        "RTLAB_SERVER": server.url,
                        "RTLAB_TOKEN": token(STUDENTS[i]),
                    },
                    capture_output=True,
                    text=True,
                    timeout=30,
                )
                if script.returncode or script.stderr:  # its verdicts only, nothing else
                    failures.append(AssertionError(script.stderr))
                return
            try:
                with progress_report.reporting_to(shared[STUDENTS[i]]):
                    for check, answer in runs:
                        check(answer)
            except BaseException as error:  # the main thread reports it
                failures.append(error)

        started = time.monotonic()
        threads = [threading.Thread(target=student, args=(i,)) for i in range(len(STUDENTS))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert not failures, failures
        reporters = [progress_report.reporter(shared[user]) for user in IN_THREADS]
        total = sum(len(plan(i)[0]) for i in range(len(IN_THREADS)))
        wait_until(
            lambda: (
                sum(r.handed for r in reporters) == total and not any(r.unsent for r in reporters)
            ),
            15,
            "every report acknowledged",
        )
        assert all(r.refusal is None and r.dropped == 0 for r in reporters)
        # the scripts waited for their reports at exit: all there
        assert sorted(server.call(lambda: server.server.progress.store.progress.students)) == (
            STUDENTS
        )

        # Three students at a table in the chat: the instructor sees the room.
        chatting = [rtlab.connect(shared[user], user) for user in STUDENTS[:3]]
        for client in chatting:
            client.emit("join-room", "table-1", ack=True)

        page = browser.new_page(viewport={"width": 1100, "height": 900})
        page.goto(f"{server.http_url}teacher#token={token('teach', 'instructor')}")
        page.wait_for_selector("#status.open", timeout=10_000)
        assert "token=" not in page.url  # taken out of the address bar at once
        assert grid_on_page(page) == expected
        online = page.locator("#online li").all_inner_texts()
        # each kernel's reporter stays connected, the scripts have ended; not the instructor
        assert online == IN_THREADS
        offline = page.locator("#grid tr.offline").evaluate_all(
            "rows => rows.map(r => r.dataset.user)"
        )
        assert offline == STUDENTS[len(IN_THREADS) :]
        rooms = page.locator("#rooms li").all_inner_texts()
        assert rooms == ["table-1: student00, student01, student02"]

        # Live: one more verdict shows without a reload.
        with progress_report.reporting_to(shared["student02"]):
            assert check_accept_key(accept_key)
        expected["student02"][ACCEPT] = {"state": "passed", "attempts": 4}
        page.wait_for_selector(
            f'tr[data-user="student02"] td[data-exercise="{ACCEPT}"][data-state="passed"]',
            timeout=5_000,
        )
        assert grid_on_page(page) == expected

        # A message to the whole class: every student's connection gets it, and a
        # student's chat page shows it.
        chat = browser.new_page()
        chat.goto(f"{server.http_url}?token={token('student03')}")
        chat.wait_for_selector("#status.open", timeout=10_000)
        page.fill("#message", "10 minute break, back at 11:00")
        page.click("#announce button")
        connections = len(IN_THREADS) + len(chatting) + 2  # the chat page, the instructor
        page.wait_for_selector(f"#announced >> text=sent to {connections} connection(s)")
        chat.wait_for_selector("text=teach to everyone: 10 minute break, back at 11:00")
        # Only an instructor sends to everyone on a class's server: a student's page
        # has no such button (and the server would refuse it).
        assert chat.locator("#broadcast").is_hidden()
        staff = browser.new_page()
        staff.goto(f"{server.http_url}?token={token('assistant', 'instructor')}")
        staff.wait_for_selector("#status.open", timeout=10_000)
        assert staff.locator("#broadcast").is_visible()
        staff.close()
        wait_until(
            lambda: all(
                [a["message"] for a in r.announcements] == ["10 minute break, back at 11:00"]
                for r in reporters
            ),
            5,
            "the announcement at every student",
        )

        # An expired token: the student's reporter stops within a second, saying why;
        # the instructor's page counts the refusal.
        late = SharedServer(server.url, issue(SECRET, "late", 1, time.time() - 150))
        with progress_report.reporting_to(late):
            assert not check_accept_key(wrong_accept_key)  # the check itself is unharmed
        refused_at = time.monotonic()
        late_reporter = progress_report.reporter(late)
        wait_until(lambda: late_reporter.refusal is not None, 1.0, "the expired token refused")
        assert time.monotonic() - refused_at < 1.0
        assert late_reporter.refusal == (
            "your token was rejected: expired 2 min ago — ask your instructor for a new one"
        )
        page.wait_for_selector('dd[data-refusal="401 (token)"] >> text=1', timeout=5_000)
        assert grid_on_page(page) == expected  # nothing of "late" reached the grid
        page.screenshot(path=str(SCREENSHOT), full_page=True)

        # A student's token, or none, cannot open the instructor's view.
        intruder = browser.new_page()
        intruder.goto(f"{server.http_url}teacher#token={token('student05')}")
        intruder.wait_for_selector("#refused:not([hidden])", timeout=10_000)
        assert intruder.inner_text("#refused") == f"refused: {NOT_AN_INSTRUCTOR}"
        assert intruder.locator("#grid tbody tr").count() == 0
        expired = issue(SECRET, "teach", 1, time.time() - 150, "instructor")
        late_teacher = browser.new_page()
        late_teacher.goto(f"{server.http_url}teacher#token={expired}")
        late_teacher.wait_for_selector("#refused:not([hidden])", timeout=10_000)
        assert late_teacher.inner_text("#refused") == (
            "your token was rejected: expired 2 min ago — make a new one with "
            "rtlab token --role instructor"
        )
        anonymous = browser.new_page()
        anonymous.goto(f"{server.http_url}teacher")
        anonymous.click("#login button")
        assert anonymous.inner_text("#refused").startswith("give an instructor's token")
        page_text = page.content() + intruder.content()
        assert token("teach", "instructor").partition(".")[0] not in page_text
        for client in chatting:
            client.close()

        # The class server's log (what rtlab serve writes to stderr), line by line: every
        # student came in, the expired token was refused with its reason, no token shown.
        log = list(server.log)
        opened = {m[1] for line in log if (m := re.match(r"INFO open #\d+ /ws as (\S+) ", line))}
        assert set(STUDENTS) <= opened, sorted(set(STUDENTS) - opened)
        expired_line = "INFO refused 401 /ws from 127.0.0.1: invalid token: expired 1"
        assert any(line.startswith(expired_line) for line in log), log[-20:]
        assert not [line for line in log if "token=" in line or SECRET in line]
        assert time.monotonic() - started < 60


def test_a_token_added_after_the_hash_of_an_open_instructors_page_opens_it(browser):
    """docs/workshop.md: open /teacher, or /teacher#token=TOKEN. An instructor who opened
    /teacher first and then adds #token=... in the address bar gets no reload (only the
    hash changed): the page still takes the token, and out of the address bar."""
    with rtlab.start_server(secret=SECRET) as server:
        page = browser.new_page()
        page.goto(f"{server.http_url}teacher")
        page.wait_for_selector("#status >> text=no token yet")
        page.goto(f"{server.http_url}teacher#token={token('teach', 'instructor')}")
        page.wait_for_selector("#status.open", timeout=10_000)
        assert "token=" not in page.url


def test_a_report_on_the_instructors_page_redraws_its_cell_alone(browser):
    """A class of 40 by 30 exercises: a report of a cell on screen changes that cell,
    never the whole grid (drawing it is what a big class cannot afford at each report);
    a new student or exercise draws the grid again, at most once a frame."""
    students, exercises = [f"s{i:02}" for i in range(40)], [f"e{j:02}" for j in range(30)]
    with rtlab.start_server(secret=SECRET) as server:
        progress = server.server.progress.store.progress
        server.call(
            lambda: [
                progress.record(Report(user, "x", exercise, False, 1, "k"))
                for user in students
                for exercise in exercises
            ]
        )
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        page.goto(f"{server.http_url}teacher#token={token('teach', 'instructor')}")
        page.wait_for_selector("#status.open", timeout=10_000)
        cells = page.locator("#grid tbody td")
        assert cells.count() == len(students) * len(exercises)
        page.evaluate(
            """() => {
                window.redrawn = 0;
                new MutationObserver(() => { window.redrawn += 1; })
                    .observe(document.querySelector("#grid tbody"), { childList: true });
            }"""
        )

        async def report_all(made: list[tuple[str, str]]) -> None:
            async def one(user: str, exercise: str) -> None:
                client = await EventClient.connect(server.url, user, token=token(user))
                data = {"lesson": "x", "exercise": exercise, "passed": True, "attempt": 2}
                await client.emit("report", {**data, "run": "k"}, ns=NAMESPACE, ack=True)
                await client.close()

            await asyncio.gather(*(one(user, exercise) for user, exercise in made))

        def send(made: list[tuple[str, str]]) -> None:  # Playwright owns this thread's loop
            thread = threading.Thread(target=asyncio.run, args=(report_all(made),))
            thread.start()
            thread.join(30)

        # Every student passes their own exercise, in a burst, each on screen already.
        send([(u, exercises[i % 30]) for i, u in enumerate(students)])
        passed = page.locator("#grid tbody td[data-state=passed]")
        passed.nth(len(students) - 1).wait_for(timeout=10_000)
        assert passed.count() == len(students)
        page.wait_for_timeout(2_500)  # a snapshot came meanwhile: it finds nothing to draw
        assert page.evaluate("window.redrawn") == 0
        summary = page.inner_text("#summary")
        assert summary.startswith("x/e00: 2/40 · x/e01: 2/40 ·"), summary
        title = "s31, x/e01: passed after 2 attempt(s)"
        assert page.locator(f'td[data-state="passed"][title="{title}"]').count() == 1

        # A new student and a new exercise: the grid is drawn again, with both.
        send([("newcomer", "e00"), ("s00", "extra")])
        page.locator('tr[data-user="newcomer"] td[data-state="passed"]').wait_for(timeout=10_000)
        page.locator('td[data-exercise="x/extra"][data-state="passed"]').wait_for(timeout=10_000)
        assert 1 <= page.evaluate("window.redrawn") <= 2
        assert cells.count() == (len(students) + 1) * (len(exercises) + 1)
        assert page.inner_text('dd[data-bound="exercises replaced"]') == "0"

        # The grid full, a made-up name: it takes the place of one s00 alone tried, and
        # the next snapshot shows the column gone and the count.
        server.call(lambda: setattr(progress, "max_exercises", len(exercises) + 1))
        send([("s01", "made-up")])
        page.wait_for_selector('dd[data-bound="exercises replaced"] >> text=1')
        page.locator('td[data-exercise="x/made-up"]').first.wait_for(timeout=10_000)
        gone = "() => !document.querySelector('td[data-exercise=\"x/extra\"]')"
        page.wait_for_function(gone, timeout=10_000)  # drawn the frame after the snapshot
        assert page.inner_text('dd[data-bound="reports ignored"]') == "0"


def test_new_columns_in_a_stream_redraw_the_instructors_grid_at_most_once_a_second(browser):
    """Students reporting one made-up exercise each, one every 50 ms, for 3 s: a new
    column each time. The grid is drawn again at most once a second, not at each, so that
    a class cannot keep the instructor's page busy redrawing; every column is there in
    the end."""
    students = [f"s{i:02}" for i in range(60)]
    with rtlab.start_server(secret=SECRET) as server:
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        page.goto(f"{server.http_url}teacher#token={token('teach', 'instructor')}")
        page.wait_for_selector("#status.open", timeout=10_000)
        page.evaluate(
            """() => {
                window.redrawn = 0;
                new MutationObserver(() => { window.redrawn += 1; })
                    .observe(document.querySelector("#grid tbody"), { childList: true });
            }"""
        )

        async def stream() -> None:
            clients = [
                await EventClient.connect(server.url, user, token=token(user)) for user in students
            ]
            started = time.monotonic()
            for i, client in enumerate(clients):
                data = {"lesson": "x", "exercise": f"made-up-{i:02}", "passed": False}
                await client.emit("report", {**data, "attempt": 1, "run": "k"}, ns=NAMESPACE)
                await asyncio.sleep(max(0, started + 0.05 * (i + 1) - time.monotonic()))
            for client in clients:
                await client.close()

        thread = threading.Thread(target=asyncio.run, args=(stream(),))  # Playwright's loop
        thread.start()
        thread.join(30)
        last = 'tr[data-user="s59"] td[data-exercise="x/made-up-59"][data-state="failing"]'
        page.locator(last).wait_for(timeout=10_000)
        assert page.locator("#grid tbody tr").count() == len(students)
        assert page.locator("#grid thead th.exercise").count() == len(students)
        assert page.evaluate("window.redrawn") <= 6  # 3 s of reports: one a second, and the end


# -- servers sharing Redis (--redis, --workers) ------------------------------------------------


def test_with_redis_every_process_sees_the_whole_class_and_a_restart_keeps_it():
    async def client(server: LabServer, user: str, role: str = "student") -> EventClient:
        return await EventClient.connect(server.url, user, token=token(user, role))

    def sent(exercise: str, passed: bool, attempt: int, run: str = "k1") -> dict[str, object]:
        return {
            "lesson": "handshake",
            "exercise": exercise,
            "passed": passed,
            "attempt": attempt,
            "run": run,
        }

    async def view_until(teacher: EventClient, ready) -> dict:
        deadline = time.monotonic() + 10
        while not ready(view := await teacher.emit("snapshot", ns=NAMESPACE, ack=True)):
            assert time.monotonic() < deadline, view
            await asyncio.sleep(0.1)
        return view

    async def main(url: str) -> None:
        async with (
            LabServer(secret=SECRET, redis=url) as one,
            LabServer(secret=SECRET, redis=url) as two,
        ):
            teacher = await client(two, "teach", "instructor")
            await teacher.emit("subscribe", ns=NAMESPACE, ack=True)
            ann, bob = await client(one, "ann"), await client(two, "bob")
            await ann.emit("report", sent("accept_key", False, 1), ns=NAMESPACE, ack=True)
            ack = await ann.emit("report", sent("accept_key", True, 2), ns=NAMESPACE, ack=True)
            assert ack == {"state": "passed", "attempts": 2}
            # the same attempt reaching the other process (a reconnection there): once
            again = await client(two, "ann")
            ack = await again.emit("report", sent("accept_key", True, 2), ns=NAMESPACE, ack=True)
            assert ack == {"state": "passed", "attempts": 2}
            await bob.emit("report", sent("frame_header", False, 1), ns=NAMESPACE, ack=True)
            live = await teacher.wait_for("progress", count=3, ns=NAMESPACE, timeout=5)
            assert [(u["user"], u["state"], u["attempts"]) for u in live] == [
                ("ann", "failing", 1),
                ("ann", "passed", 2),
                ("bob", "failing", 1),
            ]  # ann's from the other process, live
            await ann.emit("join-room", "table-1", ack=True)
            view = await view_until(teacher, lambda v: v["rooms"] and v["online"] == ["ann", "bob"])
            assert view["students"] == {
                "ann": {ACCEPT: {"state": "passed", "attempts": 2}},
                "bob": {FRAME: {"state": "failing", "attempts": 1}},
            }
            assert view["rooms"] == [{"ns": "/", "room": "table-1", "members": ["ann"]}]
            # The door of every process: a refusal on one, seen from two; an instructor
            # watching on one is no student online.
            other = await client(one, "teach2", "instructor")
            await other.emit("subscribe", ns=NAMESPACE, ack=True)
            with pytest.raises(InvalidStatus) as refused:
                await connect(f"{one.url}/ws?token=not.a-token")
            assert refused.value.response.status_code == 401
            view = await view_until(teacher, lambda v: v["refused"].get("401") == 1)
            assert view["online"] == ["ann", "bob"]
            for each in (ann, again, bob, teacher, other):
                await each.close()
        async with LabServer(secret=SECRET, redis=url) as three:  # every process restarted
            teacher = await client(three, "teach", "instructor")
            view = await teacher.emit("subscribe", ns=NAMESPACE, ack=True)
            assert sorted(view["students"]) == ["ann", "bob"]
            await teacher.close()

    redis_server = RedisServer().start()
    try:
        asyncio.run(asyncio.wait_for(main(redis_server.url), 60))
    finally:
        redis_server.kill()
