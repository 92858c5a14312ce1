"""The class-progress model (rtlab/core/progress.py) and the instructor's role in a token."""

from __future__ import annotations

import json

import pytest

from rtlab.core import progress as progress_module
from rtlab.core.progress import (
    FAILING,
    MAX_RUNS,
    NOT_TRIED,
    PASSED,
    ClassProgress,
    Report,
    parse_report,
    rooms_shown,
)
from rtlab.core.ratelimit import SlidingWindow, TokenBucket
from rtlab.core.tokens import Claims, TokenError, _b64, _sign, issue, verify, verify_claims


def report(
    user="ann", exercise="accept_key", passed=False, attempt=1, run="k1", lesson="handshake"
):
    return Report(user, lesson, exercise, passed, attempt, run)


def test_a_cell_goes_from_not_tried_to_failing_to_passed_and_stays_passed():
    progress = ClassProgress()
    assert progress.cell("ann", "handshake/accept_key").state == NOT_TRIED
    progress.record(report(attempt=1))
    assert progress.cell("ann", "handshake/accept_key").to_json() == {
        "state": FAILING,
        "attempts": 1,
    }
    progress.record(report(passed=True, attempt=2))
    progress.record(report(passed=False, attempt=3))  # a later wrong try: still passed
    assert progress.cell("ann", "handshake/accept_key").to_json() == {
        "state": PASSED,
        "attempts": 3,
    }


def test_each_attempt_counts_once_whatever_arrives_twice_or_late():
    progress = ClassProgress()
    assert progress.record(report(attempt=1)) is not None
    assert progress.record(report(attempt=1)) is None  # delivered twice: nothing new
    assert progress.record(report(attempt=3)) is not None  # attempt 2 lost: 3 says 3
    assert progress.record(report(attempt=2)) is None  # late
    assert progress.cell("ann", "handshake/accept_key").attempts == 3
    progress.record(report(attempt=1, run="k2"))  # the kernel restarted: counts on
    assert progress.cell("ann", "handshake/accept_key").attempts == 4


def test_old_runs_fold_into_a_base_count():
    progress = ClassProgress()
    for run in range(MAX_RUNS + 3):
        progress.record(report(attempt=2, run=f"k{run}"))
    cell = progress.cell("ann", "handshake/accept_key")
    assert len(cell.runs) == MAX_RUNS
    assert cell.attempts == 2 * (MAX_RUNS + 3)


def test_its_reports_rebuild_the_same_grid_in_the_same_eviction_order():
    progress = ClassProgress(max_students=3)
    for run in range(MAX_RUNS + 2):
        progress.record(report("ann", attempt=3, run=f"k{run}"))
    progress.record(report("bob", "frame_header", passed=True, attempt=2))
    progress.record(report("cat", passed=False))
    rebuilt = ClassProgress(max_students=3)
    for made in progress.reports():
        rebuilt.record(made)
    assert rebuilt.grid() == progress.grid()
    rebuilt.record(report("dan"))  # ann reported longest ago in both
    assert rebuilt.students == ["bob", "cat", "dan"]


def test_the_grid_lists_students_and_exercises_sorted_with_the_cells_tried():
    progress = ClassProgress()
    progress.record(report("bob", "frame_header", passed=True))
    progress.record(report("ann", "accept_key"))
    assert progress.grid() == {
        "exercises": ["handshake/accept_key", "handshake/frame_header"],
        "students": {
            "ann": {"handshake/accept_key": {"state": FAILING, "attempts": 1}},
            "bob": {"handshake/frame_header": {"state": PASSED, "attempts": 1}},
        },
    }
    json.dumps(progress.grid())  # what the instructor's page reads


def test_past_max_students_the_one_whose_last_report_is_oldest_is_evicted():
    progress = ClassProgress(max_students=2)
    progress.record(report("ann"))
    progress.record(report("bob"))
    progress.record(report("ann", attempt=2))  # ann reported last: bob is the oldest now
    progress.record(report("cat"))
    assert progress.students == ["ann", "cat"]
    assert (progress.evicted, len(progress)) == (1, 2)


def test_past_max_exercises_a_new_one_replaces_one_of_who_tried_most_alone():
    progress = ClassProgress(max_exercises=3)
    progress.record(report("ann", "c"))
    progress.record(report("bob", "b"))
    progress.record(report("ann", "a"))
    assert progress.record(report("cat", "d")) is not None  # ann has two alone: a goes
    assert (progress.exercises, progress.replaced) == (
        ["handshake/b", "handshake/c", "handshake/d"],
        1,
    )
    assert progress.grid()["students"]["ann"] == {"handshake/c": {"state": FAILING, "attempts": 1}}
    progress.record(report("bob", "b", attempt=1))  # changes nothing: bob's stays the oldest
    progress.record(report("dan", "e"))  # one alone each: bob's grid changed longest ago
    assert progress.exercises == ["handshake/c", "handshake/d", "handshake/e"]
    assert progress.grid()["students"]["bob"] == {}


def test_an_exercise_two_students_tried_stays_and_a_new_one_is_then_ignored():
    progress = ClassProgress(max_exercises=2)
    for user in ("ann", "bob"):
        progress.record(report(user, "a"))
        progress.record(report(user, "b"))
    assert progress.record(report("cat", "c")) is None
    assert progress.record(report("cat", "a")) is not None  # a known one still counts
    assert (progress.exercises, progress.ignored, progress.replaced) == (
        ["handshake/a", "handshake/b"],
        1,
        0,
    )


def test_made_up_exercise_names_never_keep_the_class_out():
    """A curious student reports every name they can think of, before and after the class
    starts on an exercise: the class's exercise gets its column and keeps it."""
    progress = ClassProgress(max_exercises=200)
    for i in range(200):
        progress.record(report("mallory", f"junk{i}", lesson="x"))
    assert progress.record(report("ann", "accept_key")) is not None
    assert progress.record(report("bob", "accept_key", passed=True)) is not None
    for i in range(200, 1000):
        progress.record(report("mallory", f"junk{i}", lesson="x"))
    assert "handshake/accept_key" in progress.exercises
    assert len(progress.exercises) == 200
    assert progress.cell("ann", "handshake/accept_key").state == FAILING
    assert progress.cell("bob", "handshake/accept_key").state == PASSED
    assert (progress.replaced, progress.ignored) == (801, 0)
    assert len(progress.grid()["students"]["mallory"]) == 199  # the rest are theirs


def test_an_evicted_student_takes_the_exercises_nobody_else_tried():
    progress = ClassProgress(max_students=2)
    progress.record(report("ann", "a"))
    progress.record(report("ann", "b"))
    progress.record(report("bob", "b"))
    progress.record(report("cat", "c"))  # ann reported longest ago
    assert progress.exercises == ["handshake/b", "handshake/c"]


def test_the_rooms_shown_are_those_with_the_most_members(monkeypatch):
    monkeypatch.setattr(progress_module, "MAX_ROOMS_SHOWN", 3)
    junk = [(1, "/", f"aaa{i}") for i in range(50)]  # one student's rooms, named to sort first
    tables = [(3, "/", "table-2"), (4, "/", "table-1"), (3, "/chat", "table-1")]
    assert rooms_shown(junk + tables) == [
        (4, "/", "table-1"),
        (3, "/", "table-2"),
        (3, "/chat", "table-1"),
    ]
    assert rooms_shown(junk[:2]) == [(1, "/", "aaa0"), (1, "/", "aaa1")]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (None, "a report is an object: {lesson, exercise, passed, attempt, run}"),
        ({"lesson": "x"}, "exercise must be 1 to 64 letters, digits or _. - , got None"),
        (
            {"lesson": "x", "exercise": "y", "passed": 1, "attempt": 1, "run": "k"},
            "passed must be true or false, got 1",
        ),
        (
            {"lesson": "x", "exercise": "y", "passed": True, "attempt": 1.0, "run": "k"},
            "attempt must be a whole number from 1 to 1000000, got 1.0",
        ),
        (
            {"lesson": "x", "exercise": "y", "passed": True, "attempt": 1, "run": "k k"},
            "run must be 1 to 32 letters, digits, _ or -, got 'k k'",
        ),
    ],
)
def test_parse_report_says_what_is_wrong(data, message):
    with pytest.raises(ValueError) as error:
        parse_report("ann", data)
    assert str(error.value) == message


def test_parse_report_reads_a_good_one():
    data = {"lesson": "handshake", "exercise": "binary samples", "passed": True, "attempt": 2}
    parsed = parse_report("ann", {**data, "run": "3f9a"})
    assert parsed == Report("ann", "handshake", "binary samples", True, 2, "3f9a")
    assert parsed.key == "handshake/binary samples"


# -- the role in a token ----------------------------------------------------------------------


def test_an_instructor_token_says_its_role_and_a_student_token_is_unchanged():
    teacher = issue("s", "teach", 60, 1000.0, "instructor")
    assert verify_claims("s", teacher, 1001.0) == Claims("teach", "instructor")
    assert verify("s", teacher, 1001.0) == "teach"
    student = issue("s", "ann", 60, 1000.0)
    assert verify_claims("s", student, 1001.0) == Claims("ann", "student")
    payload = _b64(json.dumps({"sub": "ann", "exp": 1060}, separators=(",", ":")).encode())
    assert student == f"{payload}.{_sign('s', payload)}"  # as tokens were before roles


def test_an_unknown_role_is_refused_both_ways():
    with pytest.raises(ValueError, match="role must be one of student, instructor"):
        issue("s", "ann", 60, 1000.0, "admin")
    payload = _b64(json.dumps({"sub": "ann", "exp": 1060, "role": "admin"}).encode())
    with pytest.raises(TokenError, match="unknown role 'admin'"):
        verify_claims("s", f"{payload}.{_sign('s', payload)}", 1001.0)


def test_the_rate_limited_users_are_those_an_event_now_would_be_refused_for():
    bucket = TokenBucket(rate=1, burst=2)
    for _ in range(3):
        bucket.check("ann", 0.0)
    bucket.check("bob", 0.0)
    assert (bucket.limited(0.0), bucket.limited(1.5)) == (["ann"], [])
    window = SlidingWindow(limit=2, window=10)
    window.check("ann", 0.0)
    window.check("ann", 1.0)
    window.check("bob", 1.0)
    assert (window.limited(5.0), window.limited(10.5)) == (["ann"], [])
