"""Checks for lesson 05, security: a rate limiter, an Origin check, and a token by hand.

Exercise 1: a class whose ``allow(user, now) -> bool`` lets each user send at most 10
events in any 60 seconds (the seed's limit). The check makes a fresh limiter for each
scenario and compares every answer with :class:`rtlab.core.ratelimit.SlidingWindow`:
first small scenarios aimed at the usual mistakes, then generated traffic.

Exercise 2: ``origin_allowed(origin, host, allow_list) -> bool``, the decision the
lab server's admission makes about a handshake's ``Origin`` header
(:mod:`rtlab.aio.admission`).

Exercise 3: ``verify_token(secret, token, now)``, the user a token of
:mod:`rtlab.core.tokens` names, or ``None`` for any token that proves nothing.

Every case is fixed (generated traffic comes from a seeded generator), so a cell that
ends with a check always shows the same line.
"""

from __future__ import annotations

import base64
import inspect
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rtlab.checks import Verdict, grade
from rtlab.core.ratelimit import SlidingWindow
from rtlab.core.tokens import TokenError, issue, verify

__all__ = ["check_limiter", "check_origin_allowed", "check_verify_token"]

Problem = tuple[str, str]  # what went wrong, and the hint for it

LIMIT, WINDOW = 10, 60.0  # the seed's 10 events a minute


def _seconds(t: float) -> str:
    return f"t={t:g}"


# -- exercise 1: a sliding-window limiter ----------------------------------------------------

LIMITER_HINT = (
    "keep, for each user, the times of their allowed events; on each call drop the times "
    "60 s or more before `now`, refuse when 10 remain, otherwise note `now` and allow."
)
TOO_MANY = (
    "at most 10 in any 60 s: when a user already has 10 allowed events in the window, "
    "the next one is refused (compare with >= 10, not > 10)"
)
PER_USER = (
    "the limit is per user: keep a separate list of times for each user (a dict keyed by "
    "user), so that one user's flood never uses up another user's budget"
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
class Scenario:
    """Events ``(user, now)`` in order, the answers expected, and the hint if they differ."""

    name: str
    events: tuple[tuple[str, float], ...]
    hint: str


def _scenario(name: str, hint: str, *events: tuple[str, float]) -> Scenario:
    return Scenario(name, tuple(events), hint)


def _times(user: str, times: Sequence[float]) -> list[tuple[str, float]]:
    return [(user, float(t)) for t in times]


def _traffic(seed: int = 2026, seconds: float = 600.0) -> Scenario:
    """Generated traffic: chatters with the odd burst, and mallory, who floods and retries."""
    rng = random.Random(seed)
    events: list[tuple[str, float]] = []
    for user in ("alice", "bob", "carol", "dave", "erin", "mallory"):
        mean_gap = 2.0 if user == "mallory" else 12.0
        t = rng.uniform(0, 20)
        while t < seconds:
            burst = rng.randint(4, 12) if rng.random() < 0.15 else 1
            for _ in range(burst):
                events.append((user, round(t, 2)))
                t += rng.uniform(0.05, 0.5)
            t += rng.expovariate(1 / mean_gap)
    events.sort(key=lambda event: event[1])
    return Scenario("generated traffic", tuple(events), LIMITER_HINT)


SCENARIOS: tuple[Scenario, ...] = (
    _scenario("a burst of 12 from alice", TOO_MANY, *_times("alice", range(12))),
    _scenario(
        "alice sends 10, then bob sends his first",
        PER_USER,
        *_times("alice", range(10)),
        ("bob", 10.0),
        ("alice", 11.0),
        ("bob", 12.0),
    ),
    _scenario(
        "alice sends 10 at once, then waits about a minute",
        BOUNDARY,
        *_times("alice", [0] * 10),
        ("alice", 59.9),
        ("alice", 60.0),
        ("alice", 60.0),
    ),
    _scenario(
        "alice sends 10, then keeps retrying every 5 s",
        REFUSED_COUNT,
        *_times("alice", range(10)),
        *_times("alice", range(10, 60, 5)),
        *_times("alice", range(60, 70)),
    ),
    _scenario(
        "alice sends 1 at t=0 and 9 just before t=60, then 3 just after",
        FIXED_WINDOW,
        *_times("alice", [0, *range(51, 60), 61, 62, 63, 111, 112]),
    ),
    _traffic(),
)


def _reference(events: Sequence[tuple[str, float]]) -> list[bool]:
    policy = SlidingWindow(LIMIT, WINDOW)
    return [policy.check(user, now).allowed for user, now in events]


def _in_window(events: Sequence[tuple[str, float]], allowed: list[bool], index: int) -> int:
    """How many of this user's events were allowed in the 60 s before event ``index``."""
    user, now = events[index]
    return sum(
        1
        for (u, t), ok in zip(events[:index], allowed, strict=False)
        if ok and u == user and now - t < WINDOW
    )


def _describe(event: tuple[str, float], number: int) -> str:
    user, now = event
    return f"{user}'s event #{number} at {_seconds(now)}"


def _limiter_problem(make: Any) -> Problem | None:
    if hasattr(make, "allow") and not isinstance(make, type):
        return (
            "got a limiter object; pass the class itself: check_limiter(SeedLimiter)",
            "the check makes a fresh limiter for each scenario by calling the class",
        )
    if not callable(make):
        return f"expected a class, got {type(make).__name__}", LIMITER_HINT
    for scenario in SCENARIOS:
        limiter = make()
        if not callable(getattr(limiter, "allow", None)):
            return "the class has no method allow(user, now)", LIMITER_HINT
        expected = _reference(scenario.events)
        counts: dict[str, int] = {}
        for index, (user, now) in enumerate(scenario.events):
            counts[user] = counts.get(user, 0) + 1
            got = limiter.allow(user, now)
            where = f"{scenario.name}: {_describe((user, now), counts[user])}"
            if got is None:
                return f"{where}: allow returned None; did you forget `return`?", LIMITER_HINT
            if not isinstance(got, bool):
                return (
                    f"{where}: allow returned {got!r}; return True or False",
                    LIMITER_HINT,
                )
            if got != expected[index]:
                before = _in_window(scenario.events, expected, index)
                said, right = ("allowed", "refused") if got else ("refused", "allowed")
                return (
                    f"{where}: you {said} it, the seed's limit says {right} "
                    f"({user} had {before} allowed in the 60 s before)",
                    scenario.hint,
                )
    return None


def check_limiter(limiter_class: Any) -> Verdict:
    """Grade a class whose ``allow(user, now)`` allows 10 events per user in any 60 s."""
    return grade("limiter", lambda: _limiter_problem(limiter_class), LIMITER_HINT)


# -- exercise 2: origin_allowed(origin, host, allow_list) ------------------------------------

ORIGIN_HINT = (
    "allow when there is no Origin (None), when the origin's host:port is the server's "
    "(urlsplit(origin).netloc == host), or when the whole origin is in the allow-list "
    "(or the list has '*'); refuse everything else"
)
NO_ORIGIN = (
    "None means the request had no Origin header: not a browser, so there is no visitor's "
    "browser to protect. Allow it (tokens still decide who it is)"
)
OWN_PAGE = (
    "a page the server served itself has the server's own host:port as its origin: "
    "compare urlsplit(origin).netloc with host"
)
FOREIGN = "an origin that is neither the server's own nor in the allow-list is refused"
LISTED = "an origin in the allow-list is allowed: compare the whole origin with each entry"
STAR = "'*' in the allow-list allows any origin (an unprotected server)"
OTHER_PORT = (
    "the port is part of the origin: a page served on another port is another program's "
    "page, so compare host and port together (netloc), not the host name alone"
)
WHOLE = (
    "compare whole values (==), never substrings, prefixes or suffixes: an attacker "
    "registers a name that contains yours, such as class.example.org.evil.example"
)
SCHEME = (
    "the scheme is part of the origin: http://class.example.org is not "
    "https://class.example.org (anyone on the network can change an http page)"
)
NULL = (
    "'null' is the origin of sandboxed frames and local files: it is not the server's own "
    "page, and nothing in the allow-list matches it, so refuse it"
)

HERE = "127.0.0.1:8765"
LAB = "lab.example.org"
CLASS = "https://class.example.org"


@dataclass(frozen=True)
class OriginCase:
    origin: str | None
    host: str
    allow_list: tuple[str, ...]
    expected: bool
    hint: str


ORIGIN_CASES: tuple[OriginCase, ...] = (
    OriginCase(None, HERE, (), True, NO_ORIGIN),
    OriginCase(f"http://{HERE}", HERE, (), True, OWN_PAGE),
    OriginCase("http://evil.example", HERE, (), False, FOREIGN),
    OriginCase(f"https://{LAB}", LAB, (CLASS,), True, OWN_PAGE),
    OriginCase(CLASS, LAB, (CLASS,), True, LISTED),
    OriginCase(CLASS, LAB, ("https://school.example.org", CLASS), True, LISTED),
    OriginCase("https://evil.example", LAB, (CLASS,), False, FOREIGN),
    OriginCase("https://anything.example", LAB, ("*",), True, STAR),
    OriginCase("http://127.0.0.1:9999", HERE, (), False, OTHER_PORT),
    OriginCase(f"http://{HERE}.evil.example", HERE, (), False, WHOLE),
    OriginCase(f"{CLASS}.evil.example", LAB, (CLASS,), False, WHOLE),
    OriginCase("https://myclass.example.org", LAB, (CLASS,), False, WHOLE),
    OriginCase("https://class.example", LAB, (CLASS,), False, WHOLE),
    OriginCase("http://class.example.org", LAB, (CLASS,), False, SCHEME),
    OriginCase("null", HERE, (), False, NULL),
    OriginCase("null", LAB, (CLASS,), False, NULL),
)


def _origin_problem(origin_allowed: Callable[..., Any]) -> Problem | None:
    if not callable(origin_allowed):
        return f"expected a function, got {type(origin_allowed).__name__}", ORIGIN_HINT
    for case in ORIGIN_CASES:
        call = f"origin_allowed({case.origin!r}, {case.host!r}, {list(case.allow_list)!r})"
        try:
            got = origin_allowed(case.origin, case.host, list(case.allow_list))
        except NotImplementedError:
            raise
        except Exception as error:
            return f"{call} raised {type(error).__name__}: {error}", case.hint
        if got is None:
            return f"{call} returned None; did you forget `return`?", ORIGIN_HINT
        if not isinstance(got, bool):
            return f"{call} returned {got!r}; return True or False", ORIGIN_HINT
        if got != case.expected:
            return f"{call} returned {got}, expected {case.expected}", case.hint
    return None


def check_origin_allowed(origin_allowed: Callable[..., Any]) -> Verdict:
    """Grade ``origin_allowed(origin, host, allow_list) -> bool`` against the server's rule."""
    return grade("origin_allowed", lambda: _origin_problem(origin_allowed), ORIGIN_HINT)


# -- exercise 3: verify_token(secret, token, now) --------------------------------------------

TOKEN_HINT = (
    "split PAYLOAD.SIGNATURE at the dot; compute the HMAC-SHA256 of the payload text with "
    "the secret, base64url without '='; compare it with the signature using "
    "hmac.compare_digest; only then decode the payload and check that now < exp"
)
SIGNATURE = (
    "check the signature before believing anything in the payload: recompute it from the "
    "payload text and the secret, and refuse (None) when it differs"
)
EXPIRY = (
    "a token is valid while now < exp: at exp and after, return None (the server says "
    "'expired N s ago')"
)
MALFORMED = (
    "a token without a dot, or with an empty part, proves nothing: return None instead of "
    "raising (str.partition('.') splits safely)"
)
TIMING = (
    "compare signatures with hmac.compare_digest, not ==: == stops at the first character "
    "that differs, so the time a refusal takes tells an attacker how much of a forged "
    "signature is right, and they can guess it one character at a time. compare_digest "
    "takes the same time whatever differs"
)

TOKEN_SECRET = "classroom-secret"
ISSUED = 1_800_000_000  # a fixed clock: the same tokens on every run
TTL = 3600


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _tampered_payload() -> str:
    """alice's token with 'admin' written into its payload, and alice's signature kept."""
    payload, signature = issue(TOKEN_SECRET, "alice", TTL, ISSUED).split(".")
    body = json.dumps({"sub": "admin", "exp": ISSUED + TTL}, separators=(",", ":"))
    assert payload != _b64(body.encode())
    return f"{_b64(body.encode())}.{signature}"


def _tampered_signature() -> str:
    payload, signature = issue(TOKEN_SECRET, "alice", TTL, ISSUED).split(".")
    first = "B" if signature[0] != "B" else "C"  # a whole character: different bytes
    return f"{payload}.{first}{signature[1:]}"


@dataclass(frozen=True)
class TokenCase:
    what: str
    token: str
    now: float
    hint: str


ALICE = issue(TOKEN_SECRET, "alice", TTL, ISSUED)

TOKEN_CASES: tuple[TokenCase, ...] = (
    TokenCase("alice's token, 10 s after it was made", ALICE, ISSUED + 10, TOKEN_HINT),
    TokenCase(
        "bob's token, 50 minutes after it was made",
        issue(TOKEN_SECRET, "bob", TTL, ISSUED),
        ISSUED + 3000,
        TOKEN_HINT,
    ),
    TokenCase(
        "a token for alice made with another secret",
        issue("another-secret", "alice", TTL, ISSUED),
        ISSUED + 10,
        SIGNATURE,
    ),
    TokenCase("alice's token with 'admin' in its payload", _tampered_payload(), ISSUED, SIGNATURE),
    TokenCase("alice's token with a changed signature", _tampered_signature(), ISSUED, SIGNATURE),
    TokenCase("alice's token, 1 s after its exp", ALICE, ISSUED + TTL + 1, EXPIRY),
    TokenCase("alice's token, exactly at its exp", ALICE, ISSUED + TTL, EXPIRY),
    TokenCase("the token 'garbage'", "garbage", ISSUED, MALFORMED),
    TokenCase("the empty token ''", "", ISSUED, MALFORMED),
    TokenCase("alice's token cut after its dot", ALICE[: ALICE.index(".") + 1], ISSUED, MALFORMED),
    TokenCase("alice's payload alone", ALICE.split(".")[0], ISSUED, MALFORMED),
)


def _expected_user(case: TokenCase) -> str | None:
    try:
        return verify(TOKEN_SECRET, case.token, case.now)
    except TokenError:
        return None


def _uses_compare_digest(function: Callable[..., Any]) -> bool | None:
    """Whether the function's source calls compare_digest; None when there is no source."""
    try:
        source = inspect.getsource(function)
    except (OSError, TypeError):
        return None
    return "compare_digest" in source


def _token_problem(verify_token: Callable[..., Any]) -> Problem | None:
    if not callable(verify_token):
        return f"expected a function, got {type(verify_token).__name__}", TOKEN_HINT
    for case in TOKEN_CASES:
        expected = _expected_user(case)
        where = case.what
        try:
            got = verify_token(TOKEN_SECRET, case.token, case.now)
        except NotImplementedError:
            raise
        except Exception as error:
            if expected is None:
                return (
                    f"{where}: raised {type(error).__name__}: {error}; return None instead",
                    case.hint if case.hint != TOKEN_HINT else MALFORMED,
                )
            raise
        if got != expected:
            shown = "None" if expected is None else repr(expected)
            return f"{where}: returned {got!r}, expected {shown}", case.hint
    if _uses_compare_digest(verify_token) is False:
        return "right answers, but the signatures are not compared with compare_digest", TIMING
    return None


def check_verify_token(verify_token: Callable[..., Any]) -> Verdict:
    """Grade ``verify_token(secret, token, now)``: the user a valid token names, else None."""
    return grade("verify_token", lambda: _token_problem(verify_token), TOKEN_HINT)
