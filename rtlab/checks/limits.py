"""Checks for lesson 07, limits: the tutorial's rate limit, written as a Python class.

The exercise: a class whose ``allow(session, now) -> bool`` lets each *user*
(``session.user``, whatever connection ``session`` is) send at most 10 events in any 60
seconds. The check makes a fresh limiter for each scenario and compares every answer with
:class:`rtlab.core.ratelimit.SlidingWindow`: small scenarios aimed at the usual mistakes,
then generated traffic. Then it installs a fresh limiter in an event handler on a real lab
server and floods it: mallory from two tabs, bob beside her.

Every scenario is fixed (generated traffic comes from a seeded generator), and a right
limiter lets exactly the same events through on the server whatever order they arrive
in, so a cell that ends with the check always shows the same line.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rtlab.aio.client import AckError
from rtlab.aio.events import Session
from rtlab.checks import Verdict, describe, grade
from rtlab.checks.bounded import STILL_RUNNING, call_within
from rtlab.core.envelope import EnvelopeError, ErrorCode
from rtlab.core.ratelimit import SlidingWindow
from rtlab.notebook.background import start_server
from rtlab.notebook.clients import Client, connect

__all__ = ["Sender", "check_limiter"]

Problem = tuple[str, str]  # what went wrong, and the hint for it

LIMIT, WINDOW = 10, 60.0  # the tutorial's 10 events a minute

LIMITER_HINT = (
    "keep, for each user (session.user), the times of their allowed events; on each call "
    "drop the times 60 s or more before `now`, refuse when 10 remain, otherwise note `now` "
    "and allow."
)
NUDGE = (
    "start with the list of times of session.user's allowed events: "
    "self.seen.setdefault(session.user, [])"
)
TOO_MANY = (
    "at most 10 in any 60 s: allow while fewer than 10 of the user's allowed events are in "
    "the window, refuse from the 11th on (refuse when len(times) >= 10)"
)
PER_USER = (
    "the limit is per user: keep a separate list of times for each user (a dict keyed by "
    "session.user), so that one user's flood never uses up another user's budget"
)
PER_CONNECTION = (
    "key by session.user, not by the session or session.id: those are one connection, "
    "and a user with two tabs (or a script with a hundred connections) would get 10 a "
    "minute on each"
)
UNITS = (
    "`now` is in seconds, so the window is 60 (the tutorial's Date.now() counts "
    "milliseconds, hence its 60000): an event ten minutes old no longer counts"
)
OWN_CLOCK = (
    "use the `now` you are given, not time.time() or time.monotonic(): the server passes "
    "each event's time, and the check replays hours of traffic in a moment"
)
BOUNDARY = (
    "an event exactly 60 s ago is out of the window: drop times t with now - t >= 60 "
    "(with > 60 the user waits one event longer than the limit says)"
)
REFUSED_COUNT = (
    "count only the events you allowed: a refused event was never delivered, so it must "
    "not use up the budget. Otherwise a client that keeps retrying stays locked out for good"
)
FIXED_WINDOW = (
    "that is a fixed window (a counter reset every minute, or 60 s after the first event): "
    "a user can send 10 just before the reset and 10 just after, 20 within seconds. A "
    "sliding window looks back 60 s from each event: keep the times, not a counter"
)


@dataclass(frozen=True)
class Sender:
    """What the check passes as ``session`` off the server: a connection's id and user."""

    id: int
    user: str

    def __repr__(self) -> str:
        return f"<Session {self.id} {self.user!r}>"


Event = tuple[Sender, float]


@dataclass(frozen=True)
class Scenario:
    """Events ``(sender, now)`` in order, and the hint if the answers differ."""

    name: str
    events: tuple[Event, ...]
    hint: str


def _times(sender: Sender, times: Sequence[float]) -> list[Event]:
    return [(sender, float(t)) for t in times]


ALICE, ALICE_TAB, BOB = Sender(1, "alice"), Sender(2, "alice"), Sender(3, "bob")


def _traffic(seed: int = 2026, seconds: float = 600.0) -> Scenario:
    """Chatters with the odd burst, some on two tabs, and mallory, who floods from two."""
    rng = random.Random(seed)
    events: list[Event] = []
    ids = iter(range(10, 100))
    for user, tabs in [("alice", 2), ("bob", 1), ("carol", 1), ("dave", 2), ("mallory", 2)]:
        senders = [Sender(next(ids), user) for _ in range(tabs)]
        mean_gap = 2.0 if user == "mallory" else 12.0
        t = rng.uniform(0, 20)
        while t < seconds:
            burst = rng.randint(4, 12) if rng.random() < 0.15 else 1
            for _ in range(burst):
                events.append((rng.choice(senders), round(t, 2)))
                t += rng.uniform(0.05, 0.5)
            t += rng.expovariate(1 / mean_gap)
    events.sort(key=lambda event: event[1])
    return Scenario("generated traffic", tuple(events), LIMITER_HINT)


def _scenario(name: str, hint: str, *events: Event) -> Scenario:
    return Scenario(name, tuple(events), hint)


SCENARIOS: tuple[Scenario, ...] = (
    _scenario("a burst of 12 from alice", TOO_MANY, *_times(ALICE, range(12))),
    _scenario(
        "alice sends 10, then bob sends his first",
        PER_USER,
        *_times(ALICE, range(10)),
        (BOB, 10.0),
        (ALICE, 11.0),
        (BOB, 12.0),
    ),
    _scenario(
        "alice sends 6 from each of her two tabs, in turn",
        PER_CONNECTION,
        *[event for t in range(6) for event in ((ALICE, 2.0 * t), (ALICE_TAB, 2.0 * t + 1))],
    ),
    _scenario(
        "alice sends 10, then comes back ten minutes later",
        UNITS,
        *_times(ALICE, range(10)),
        *_times(ALICE, [30, 600, 601]),
    ),
    _scenario(
        "alice sends 10 at once, then waits about a minute",
        BOUNDARY,
        *_times(ALICE, [0] * 10),
        *_times(ALICE, [59.9, 60, 60]),
    ),
    _scenario(
        "alice sends 10, then keeps retrying every 5 s",
        REFUSED_COUNT,
        *_times(ALICE, range(10)),
        *_times(ALICE, range(10, 60, 5)),
        *_times(ALICE, range(60, 70)),
    ),
    _scenario(
        "alice sends 1 at t=0 and 9 just before t=60, then 3 just after",
        FIXED_WINDOW,
        *_times(ALICE, [0, *range(51, 60), 61, 62, 63, 111, 112]),
    ),
    _traffic(),
)


def reference(events: Sequence[Event]) -> list[bool]:
    """The tutorial's limit: what ``SlidingWindow(10, 60)`` keyed by user answers."""
    policy = SlidingWindow(LIMIT, WINDOW)
    return [policy.check(sender.user, now).allowed for sender, now in events]


def _in_window(events: Sequence[Event], allowed: list[bool], index: int) -> int:
    """How many of this user's events were allowed in the 60 s before event ``index``."""
    sender, now = events[index]
    return sum(
        1
        for (other, t), ok in zip(events[:index], allowed, strict=False)
        if ok and other.user == sender.user and now - t < WINDOW
    )


def _answer(got: Any, where: str) -> Problem | None:
    if got is None:
        return f"{where}: allow returned None; did you forget `return`?", LIMITER_HINT
    if not isinstance(got, bool):
        return f"{where}: allow returned {got!r}; return True or False", LIMITER_HINT
    return None


SCENARIOS_WITHIN = 5.0  # seconds every scenario together may take (a right answer: ms)


def _scenarios_problem(make: Any) -> Problem | None:
    for scenario in SCENARIOS:
        limiter = make()
        if not callable(getattr(limiter, "allow", None)):
            return "the class has no method allow(session, now)", LIMITER_HINT
        expected = reference(scenario.events)
        counts: dict[str, int] = {}
        for index, (sender, now) in enumerate(scenario.events):
            user = sender.user
            counts[user] = counts.get(user, 0) + 1
            where = f"{scenario.name}: {user}'s event #{counts[user]} at t={now:g}"
            try:
                got = limiter.allow(sender, now)
            except NotImplementedError:
                raise
            except Exception as error:
                return f"{where}: allow raised {describe(error)}", scenario.hint
            problem = _answer(got, where)
            if problem is not None:
                return problem
            if got != expected[index]:
                before = _in_window(scenario.events, expected, index)
                said, right = ("allowed", "refused") if got else ("refused", "allowed")
                hint = OWN_CLOCK if scenario.hint == UNITS and _own_clock(make) else scenario.hint
                return (
                    f"{where}: you {said} it, the tutorial's limit says {right} "
                    f"({user} had {before} allowed in the 60 s before)",
                    hint,
                )
    return None


def _own_clock(make: Any) -> bool:
    """Whether a fresh limiter still refuses alice a year after her 10 events: then it
    reads a clock of its own (a window in milliseconds, 60000, would have let her in)."""
    limiter = make()
    try:
        for now in range(LIMIT):
            limiter.allow(ALICE, float(now))
        return limiter.allow(ALICE, 365 * 86_400.0) is False
    except Exception:
        return False


# -- on a real server ----------------------------------------------------------------------

FLOOD = 8  # posts from each of mallory's two tabs
BOB_POSTS = 3
REFUSAL = "slow down: 10 events a minute"


class _Installed:
    """A ``post`` handler that asks the learner's limiter, noting what it raises or returns."""

    def __init__(self, limiter: Any) -> None:
        self.limiter = limiter
        self.problems: list[str] = []

    def __call__(self, session: Session, data: Any) -> str:
        try:
            allowed = self.limiter.allow(session, time.monotonic())
        except Exception as error:
            self.problems.append(f"allow(session, now) raised {describe(error)}")
            raise
        if not isinstance(allowed, bool):
            self.problems.append(f"allow(session, now) returned {allowed!r}")
        if not allowed:
            raise EnvelopeError(ErrorCode.RATE_LIMITED, REFUSAL)
        return "posted"


def _outcome(future: concurrent.futures.Future[Any]) -> str:
    """``posted``, ``refused``, or what else came back."""
    try:
        future.result(timeout=5)
    except AckError as error:
        return "refused" if error.code == ErrorCode.RATE_LIMITED else f"{error.code}: {error}"
    except (TimeoutError, concurrent.futures.TimeoutError):
        return "no answer within 5 s"
    except Exception as error:
        return f"the client saw {describe(error)}"
    return "posted"


def _flood(clients: dict[str, Client]) -> dict[str, list[str]]:
    tab1, tab2, bob = clients["mallory"], clients["mallory's tab"], clients["bob"]
    futures: dict[str, list[concurrent.futures.Future[Any]]] = {"mallory": [], "bob": []}
    for i in range(FLOOD):
        for tab in (tab1, tab2):
            futures["mallory"].append(tab.emit_soon("post", f"BUY NOW {i}", ack=True, timeout=3))
        if i < BOB_POSTS:
            futures["bob"].append(bob.emit_soon("post", f"hello {i}", ack=True, timeout=3))
    return {user: [_outcome(f) for f in pending] for user, pending in futures.items()}


def _live_problem(make: Any) -> Problem | None:
    handler = _Installed(make())
    server = start_server(ping_interval=None)
    clients: dict[str, Client] = {}
    try:
        server.server.namespace("/").on("post")(handler)  # before anyone connects: no race
        for name, user in [("mallory", "mallory"), ("mallory's tab", "mallory"), ("bob", "bob")]:
            clients[name] = connect(server, user)
        outcomes = _flood(clients)
    finally:
        for client in clients.values():
            with contextlib.suppress(Exception):
                client.close()
        server.stop()
    if handler.problems:
        return f"on a real server, {handler.problems[0]}", LIMITER_HINT
    for user, results in outcomes.items():
        odd = [result for result in results if result not in ("posted", "refused")]
        if odd:
            return f"on a real server, one of {user}'s posts got {odd[0]}", LIMITER_HINT
    mallory, bob = outcomes["mallory"].count("posted"), outcomes["bob"].count("posted")
    story = (
        f"on a real server, mallory flooded {2 * FLOOD} posts from two tabs while bob sent "
        f"{BOB_POSTS}: {mallory} of mallory's and {bob} of bob's got through"
    )
    if mallory == 2 * FLOOD and bob == BOB_POSTS:  # each tab got a budget of its own
        return f"{story}, expected 10 and {BOB_POSTS}", PER_CONNECTION
    if (mallory, bob) != (LIMIT, BOB_POSTS):
        return f"{story}, expected 10 and {BOB_POSTS}", LIMITER_HINT
    return None


def _limiter_problem(make: Any) -> Problem | None:
    if hasattr(make, "allow") and not isinstance(make, type):
        return (
            "got a limiter object; pass the class itself: check_limiter(TutorialLimiter)",
            "the check makes a fresh limiter for each scenario by calling the class",
        )
    if not callable(make):
        return f"expected a class, got {type(make).__name__}", LIMITER_HINT
    problem = call_within(lambda: _scenarios_problem(make), SCENARIOS_WITHIN)
    if problem is STILL_RUNNING:
        return (
            f"the scenarios ({sum(len(s.events) for s in SCENARIOS)} events) did not end "
            f"within {SCENARIOS_WITHIN:g} s: does a loop in allow never end?",
            LIMITER_HINT,
        )
    return problem or _live_problem(make)


def check_limiter(limiter_class: Any) -> Verdict:
    """Grade a class whose ``allow(session, now)`` allows 10 events per user in any 60 s,
    on scenarios, then inside a handler of a real server flooded from two tabs."""
    return grade("limiter", lambda: _limiter_problem(limiter_class), LIMITER_HINT, NUDGE)
