"""The check of lesson 07 passes right limiters written differently, fails the usual wrong
ones with the hint for their mistake (on scenarios, and on a real server flooded from two
tabs), and says "not done yet" to a learner copy."""

from __future__ import annotations

import collections
import threading
import time

import pytest

from rtlab.checks import limits
from rtlab.checks.limits import SCENARIOS, Sender, check_limiter
from rtlab.core.ratelimit import SlidingWindow


@pytest.fixture(autouse=True)
def nothing_printed(capfd):
    yield
    assert capfd.readouterr() == ("", "")


class RightLimiter:
    """The lesson's answer: a deque of allowed times per user."""

    def __init__(self):
        self.seen = {}

    def allow(self, session, now):
        times = self.seen.setdefault(session.user, collections.deque())
        while times and now - times[0] >= 60:
            times.popleft()
        if len(times) >= 10:
            return False
        times.append(now)
        return True


class ListLimiter:
    """The tutorial's code translated line by line: filter a list, in seconds."""

    def __init__(self):
        self.seen = collections.defaultdict(list)

    def allow(self, session, now):
        recent = [t for t in self.seen[session.user] if now - t < 60]
        self.seen[session.user] = recent
        if len(recent) < 10:
            recent.append(now)
            return True
        return False


class CountingLimiter:
    """Counts the times newer than now - 60 with a bisect, keeps them all."""

    def __init__(self):
        self.seen = {}

    def allow(self, session, now):
        import bisect

        times = self.seen.setdefault(session.user, [])
        if len(times) - bisect.bisect_right(times, now - 60) >= 10:
            return False
        times.append(now)
        return True


class ReferenceLimiter:
    def __init__(self):
        self.policy = SlidingWindow(10, 60)

    def allow(self, session, now):
        return self.policy.check(session.user, now).allowed


@pytest.mark.parametrize("limiter", [RightLimiter, ListLimiter, CountingLimiter, ReferenceLimiter])
def test_right_limiters_pass(limiter) -> None:
    verdict = check_limiter(limiter)
    assert verdict.passed, verdict
    assert str(verdict) == "✅ limiter: correct"


def test_a_learner_copy_is_not_done_yet() -> None:
    class Blank:
        def __init__(self):
            self.seen = {}

        def allow(self, session, now):
            raise NotImplementedError  # your code here

    verdict = check_limiter(Blank)
    assert verdict.message == "limiter: not done yet"
    assert verdict.hint == f"{limits.NUDGE} (rtlab.hint() shows the recipe)"


def test_the_scenarios_each_have_refusals_and_the_traffic_is_mixed() -> None:
    for scenario in SCENARIOS:
        allowed = limits.reference(scenario.events)
        assert any(allowed) and not all(allowed), scenario.name
    traffic = SCENARIOS[-1].events
    assert len({sender.user for sender, _ in traffic}) == 5
    assert len({sender for sender, _ in traffic}) == 8  # three users on two tabs
    assert len(traffic) > 400


def wrong(allow):
    """RightLimiter with another allow(self, session, now)."""
    return type(allow.__name__, (RightLimiter,), {"allow": allow})


def over_by_one(self, session, now):
    times = self.seen.setdefault(session.user, collections.deque())
    while times and now - times[0] >= 60:
        times.popleft()
    if len(times) > 10:
        return False
    times.append(now)
    return True


def under_by_one(self, session, now):
    times = self.seen.setdefault(session.user, [])
    times[:] = [t for t in times if now - t < 60]
    if len(times) >= 9:
        return False
    times.append(now)
    return True


def one_counter_for_everyone(self, session, now):
    return RightLimiter.allow(self, Sender(0, "everyone"), now)


def per_connection_id(self, session, now):
    return RightLimiter.allow(self, Sender(0, session.id), now)


def per_session_object(self, session, now):
    times = self.seen.setdefault(session, [])  # the connection, not the user
    times[:] = [t for t in times if now - t < 60]
    if len(times) >= 10:
        return False
    times.append(now)
    return True


def milliseconds(self, session, now):
    times = self.seen.setdefault(session.user, [])
    times[:] = [t for t in times if now - t < 60000]  # the tutorial's 60000, kept
    if len(times) >= 10:
        return False
    times.append(now)
    return True


def own_clock(self, session, now):
    now = time.monotonic()  # the server's clock, not the event's
    times = self.seen.setdefault(session.user, [])
    times[:] = [t for t in times if now - t < 60]
    if len(times) >= 10:
        return False
    times.append(now)
    return True


def keeps_exactly_60_s(self, session, now):
    times = self.seen.setdefault(session.user, collections.deque())
    while times and now - times[0] > 60:
        times.popleft()
    if len(times) >= 10:
        return False
    times.append(now)
    return True


def counts_refused(self, session, now):
    times = self.seen.setdefault(session.user, collections.deque())
    while times and now - times[0] >= 60:
        times.popleft()
    times.append(now)  # before deciding: refused attempts count too
    return len(times) <= 10


def fixed_window(self, session, now):
    start, count = self.seen.get(session.user, (None, 0))
    if start is None or now // 60 != start:
        start, count = now // 60, 0
    if count >= 10:
        return False
    self.seen[session.user] = (start, count + 1)
    return True


def anchored_window(self, session, now):
    start, count = self.seen.get(session.user, (None, 0))
    if start is None or now - start >= 60:
        start, count = now, 0
    if count >= 10:
        return False
    self.seen[session.user] = (start, count + 1)
    return True


@pytest.mark.parametrize(
    ("allow", "message", "hint"),
    [
        (
            over_by_one,
            "limiter: a burst of 12 from alice: alice's event #11 at t=10: you allowed it, "
            "the tutorial's limit says refused (alice had 10 allowed in the 60 s before)",
            limits.TOO_MANY,
        ),
        (
            under_by_one,
            "limiter: a burst of 12 from alice: alice's event #10 at t=9: you refused it, "
            "the tutorial's limit says allowed (alice had 9 allowed in the 60 s before)",
            limits.TOO_MANY,
        ),
        (
            one_counter_for_everyone,
            "limiter: alice sends 10, then bob sends his first: bob's event #1 at t=10: you "
            "refused it, the tutorial's limit says allowed (bob had 0 allowed in the 60 s before)",
            limits.PER_USER,
        ),
        (
            per_connection_id,
            "limiter: alice sends 6 from each of her two tabs, in turn: alice's event #11 at "
            "t=10: you allowed it, the tutorial's limit says refused (alice had 10 allowed in "
            "the 60 s before)",
            limits.PER_CONNECTION,
        ),
        (
            milliseconds,
            "limiter: alice sends 10, then comes back ten minutes later: alice's event #12 at "
            "t=600: you refused it, the tutorial's limit says allowed (alice had 0 allowed in "
            "the 60 s before)",
            limits.UNITS,
        ),
        (
            own_clock,
            "limiter: alice sends 10, then comes back ten minutes later: alice's event #12 at "
            "t=600: you refused it, the tutorial's limit says allowed (alice had 0 allowed in "
            "the 60 s before)",
            limits.OWN_CLOCK,
        ),
        (
            keeps_exactly_60_s,
            "limiter: alice sends 10 at once, then waits about a minute: alice's event #12 at "
            "t=60: you refused it, the tutorial's limit says allowed (alice had 0 allowed in "
            "the 60 s before)",
            limits.BOUNDARY,
        ),
        (
            counts_refused,
            "limiter: alice sends 10, then keeps retrying every 5 s: alice's event #21 at "
            "t=60: you refused it, the tutorial's limit says allowed (alice had 9 allowed in "
            "the 60 s before)",
            limits.REFUSED_COUNT,
        ),
        (
            fixed_window,
            "limiter: alice sends 1 at t=0 and 9 just before t=60, then 3 just after: "
            "alice's event #12 at t=62: you allowed it, the tutorial's limit says refused "
            "(alice had 10 allowed in the 60 s before)",
            limits.FIXED_WINDOW,
        ),
        (
            anchored_window,
            "limiter: alice sends 1 at t=0 and 9 just before t=60, then 3 just after: "
            "alice's event #12 at t=62: you allowed it, the tutorial's limit says refused "
            "(alice had 10 allowed in the 60 s before)",
            limits.FIXED_WINDOW,
        ),
    ],
    ids=lambda value: value.__name__ if callable(value) else "",
)
def test_wrong_limiters_fail_with_the_hint_for_their_mistake(allow, message, hint) -> None:
    verdict = check_limiter(wrong(allow))
    assert not verdict.passed
    assert verdict.message == message
    assert verdict.hint == hint


def test_a_session_object_as_key_fails_with_the_per_connection_hint() -> None:
    verdict = check_limiter(wrong(per_session_object))
    assert "alice sends 6 from each of her two tabs" in verdict.message
    assert verdict.hint == limits.PER_CONNECTION


def real_session(session) -> bool:
    return hasattr(session, "connection")  # a Session of the server, not the check's Sender


def per_connection_on_the_server(self, session, now):
    key = session.id if real_session(session) else session.user
    return RightLimiter.allow(self, Sender(0, key), now)


def crashes_on_the_server(self, session, now):
    if real_session(session):
        return self.seen["nobody"]  # KeyError
    return RightLimiter.allow(self, session, now)


def yes_on_the_server(self, session, now):
    return "yes" if real_session(session) else RightLimiter.allow(self, session, now)


def eleven_on_the_server(self, session, now):
    if real_session(session) and session.user == "mallory":
        self.extra = getattr(self, "extra", 0) + 1
        if self.extra == 16:  # one more than the limit, at the end of the flood
            return True
    return RightLimiter.allow(self, session, now)


@pytest.mark.slow
def test_the_flood_on_a_real_server_catches_what_the_scenarios_cannot() -> None:
    verdict = check_limiter(wrong(per_connection_on_the_server))
    assert verdict.message == (
        "limiter: on a real server, mallory flooded 16 posts from two tabs while bob sent 3: "
        "16 of mallory's and 3 of bob's got through, expected 10 and 3"
    )
    assert verdict.hint == limits.PER_CONNECTION

    verdict = check_limiter(wrong(eleven_on_the_server))
    assert verdict.message.endswith("11 of mallory's and 3 of bob's got through, expected 10 and 3")
    assert verdict.hint == limits.LIMITER_HINT

    verdict = check_limiter(wrong(crashes_on_the_server))
    assert verdict.message == (
        "limiter: on a real server, allow(session, now) raised KeyError: 'nobody'"
    )
    verdict = check_limiter(wrong(yes_on_the_server))
    assert verdict.message == "limiter: on a real server, allow(session, now) returned 'yes'"


def test_forgetting_return_crashing_and_passing_an_instance_are_explained() -> None:
    def silent(self, session, now):
        RightLimiter.allow(self, session, now)

    verdict = check_limiter(wrong(silent))
    assert verdict.message.endswith("allow returned None; did you forget `return`?")
    verdict = check_limiter(wrong(lambda self, session, now: "yes"))
    assert verdict.message.endswith("allow returned 'yes'; return True or False")
    verdict = check_limiter(RightLimiter())
    assert verdict.message == (
        "limiter: got a limiter object; pass the class itself: check_limiter(TutorialLimiter)"
    )
    assert not check_limiter(42).passed

    verdict = check_limiter(wrong(lambda self, session, now: self.seen[session.user]))
    assert verdict.message == (
        "limiter: a burst of 12 from alice: alice's event #1 at t=0: allow raised KeyError: 'alice'"
    )
    assert verdict.hint == limits.TOO_MANY


def test_a_constructor_that_fails_is_a_cross_naming_the_exception() -> None:
    class Broken(RightLimiter):
        def __init__(self):
            raise RuntimeError("no memory today")

    verdict = check_limiter(Broken)
    assert verdict.message == "limiter: raised RuntimeError: no memory today"
    assert verdict.hint == limits.LIMITER_HINT


def test_a_limiter_whose_loop_never_ends_is_a_cross_in_time(monkeypatch) -> None:
    monkeypatch.setattr(limits, "SCENARIOS_WITHIN", 0.5)
    done = threading.Event()  # set at the end, so that no loop spins on after the test

    class Spins(RightLimiter):
        def allow(self, session, now):
            times = self.seen.setdefault(session.user, collections.deque())
            while times and now - times[0] >= 60 and not done.is_set():
                pass  # times.popleft() forgotten
            return RightLimiter.allow(self, session, now)

    try:
        verdict = check_limiter(Spins)
    finally:
        done.set()
    assert not verdict.passed
    assert "did not end within 0.5 s: does a loop in allow never end?" in verdict.message
    assert verdict.hint == limits.LIMITER_HINT
