"""The checks of lesson 05 pass right answers, fail typical wrong ones with the right hint,
and say "not done yet" to a learner copy."""

from __future__ import annotations

import base64
import collections
import hashlib
import hmac
import json
from urllib.parse import urlsplit

import pytest

from rtlab.aio.admission import origin_allowed
from rtlab.checks import security
from rtlab.checks.security import (
    ORIGIN_CASES,
    SCENARIOS,
    TOKEN_CASES,
    check_limiter,
    check_origin_allowed,
    check_verify_token,
)
from rtlab.core.ratelimit import SlidingWindow
from rtlab.core.tokens import issue


@pytest.fixture(autouse=True)
def nothing_printed(capfd):
    yield
    assert capfd.readouterr() == ("", "")


# -- exercise 1: the limiter -----------------------------------------------------------------


class RightLimiter:
    def __init__(self):
        self.times = {}

    def allow(self, user, now):
        times = self.times.setdefault(user, collections.deque())
        while times and now - times[0] >= 60:
            times.popleft()
        if len(times) >= 10:
            return False
        times.append(now)
        return True


class ListLimiter:
    """Another right answer: filters a list instead of popping a deque."""

    def __init__(self):
        self.allowed = collections.defaultdict(list)

    def allow(self, user, now):
        recent = [t for t in self.allowed[user] if now - t < 60]
        self.allowed[user] = recent
        if len(recent) < 10:
            recent.append(now)
            return True
        return False


class ReferenceLimiter:
    def __init__(self):
        self.policy = SlidingWindow(10, 60)

    def allow(self, user, now):
        return self.policy.check(user, now).allowed


@pytest.mark.parametrize("limiter", [RightLimiter, ListLimiter, ReferenceLimiter])
def test_right_limiters_pass(limiter) -> None:
    verdict = check_limiter(limiter)
    assert verdict.passed, verdict
    assert str(verdict) == "✅ limiter: correct"


def test_a_learner_copy_is_not_done_yet() -> None:
    class Blank:
        def __init__(self):
            raise NotImplementedError  # your code here

        def allow(self, user, now):
            raise NotImplementedError  # your code here

    verdict = check_limiter(Blank)
    assert not verdict.passed
    assert verdict.message == "limiter: not done yet"
    assert verdict.hint == security.LIMITER_HINT


def test_the_scenarios_each_have_refusals_and_the_traffic_is_mixed() -> None:
    for scenario in SCENARIOS:
        allowed = security._reference(scenario.events)
        assert any(allowed) and not all(allowed), scenario.name
    traffic = SCENARIOS[-1]
    assert len({user for user, _ in traffic.events}) == 6
    assert len(traffic.events) > 500


def test_eleven_a_minute_fails_with_its_hint() -> None:
    class Eleven(RightLimiter):
        def allow(self, user, now):
            times = self.times.setdefault(user, collections.deque())
            while times and now - times[0] >= 60:
                times.popleft()
            if len(times) > 10:
                return False
            times.append(now)
            return True

    verdict = check_limiter(Eleven)
    assert verdict.message == (
        "limiter: a burst of 12 from alice: alice's event #11 at t=10: you allowed it, "
        "the seed's limit says refused (alice had 10 allowed in the 60 s before)"
    )
    assert verdict.hint == security.TOO_MANY


def test_one_counter_for_everyone_fails_with_the_per_user_hint() -> None:
    class Everyone(RightLimiter):
        def allow(self, user, now):
            return super().allow("everyone", now)

    verdict = check_limiter(Everyone)
    assert "alice sends 10, then bob sends his first: bob's event #1 at t=10" in verdict.message
    assert "you refused it" in verdict.message
    assert verdict.hint == security.PER_USER


def test_a_window_that_keeps_events_exactly_60_s_old_fails_with_its_hint() -> None:
    class Strict(RightLimiter):
        def allow(self, user, now):
            times = self.times.setdefault(user, collections.deque())
            while times and now - times[0] > 60:
                times.popleft()
            if len(times) >= 10:
                return False
            times.append(now)
            return True

    verdict = check_limiter(Strict)
    assert "alice's event #12 at t=60: you refused it" in verdict.message
    assert verdict.hint == security.BOUNDARY


def test_counting_refused_events_fails_with_its_hint() -> None:
    class CountsRefused(RightLimiter):
        def allow(self, user, now):
            times = self.times.setdefault(user, collections.deque())
            while times and now - times[0] >= 60:
                times.popleft()
            times.append(now)  # before deciding: refused attempts count too
            return len(times) <= 10

    verdict = check_limiter(CountsRefused)
    assert verdict.message.startswith("limiter: alice sends 10, then keeps retrying every 5 s:")
    assert verdict.hint == security.REFUSED_COUNT


@pytest.mark.parametrize("anchored", [False, True])
def test_fixed_windows_fail_with_their_hint(anchored) -> None:
    class Fixed:
        def __init__(self):
            self.windows = {}  # user: (start, count)

        def allow(self, user, now):
            start, count = self.windows.get(user, (None, 0))
            current = now if anchored else now // 60 * 60
            if start is None or now - start >= 60 or (not anchored and current != start):
                start, count = current, 0
            if count >= 10:
                return False
            self.windows[user] = (start, count + 1)
            return True

    verdict = check_limiter(Fixed)
    assert "alice sends 1 at t=0 and 9 just before t=60, then 3 just after" in verdict.message
    assert "alice's event #12 at t=62: you allowed it" in verdict.message
    assert verdict.hint == security.FIXED_WINDOW


def test_forgetting_return_and_passing_an_instance_are_explained() -> None:
    class Silent(RightLimiter):
        def allow(self, user, now):
            super().allow(user, now)

    assert "allow returned None; did you forget `return`?" in check_limiter(Silent).message
    verdict = check_limiter(RightLimiter())
    assert verdict.message == (
        "limiter: got a limiter object; pass the class itself: check_limiter(SeedLimiter)"
    )
    assert not check_limiter(42).passed


def test_a_crash_is_reported() -> None:
    class Crashes(RightLimiter):
        def allow(self, user, now):
            return self.times[user]  # KeyError

    verdict = check_limiter(Crashes)
    assert verdict.message.startswith("limiter: raised KeyError")


# -- exercise 2: origin_allowed -----------------------------------------------------------


def origin_right(origin, host, allow_list):
    if origin is None:
        return True
    if urlsplit(origin).netloc == host:
        return True
    return "*" in allow_list or origin in allow_list


def test_the_reference_agrees_with_every_case_and_the_server() -> None:
    for case in ORIGIN_CASES:
        assert origin_allowed(case.origin, case.host, case.allow_list) is case.expected
    assert {case.expected for case in ORIGIN_CASES} == {True, False}


def test_right_origin_checks_pass() -> None:
    verdict = check_origin_allowed(origin_right)
    assert verdict.passed, verdict
    assert str(verdict) == "✅ origin_allowed: correct"
    assert check_origin_allowed(origin_allowed).passed


def test_origin_not_done_yet() -> None:
    def blank(origin, host, allow_list):
        raise NotImplementedError  # your code here

    verdict = check_origin_allowed(blank)
    assert verdict.message == "origin_allowed: not done yet"
    assert verdict.hint == security.ORIGIN_HINT


def test_origin_refusing_non_browsers_fails_with_its_hint() -> None:
    def no_origin_refused(origin, host, allow_list):
        return origin is not None and origin_right(origin, host, allow_list)

    verdict = check_origin_allowed(no_origin_refused)
    assert verdict.message == (
        "origin_allowed: origin_allowed(None, '127.0.0.1:8765', []) returned False, expected True"
    )
    assert verdict.hint == security.NO_ORIGIN


def test_origin_crashing_on_none_gets_the_same_hint() -> None:
    def crashes(origin, host, allow_list):
        return origin.lower() in allow_list or urlsplit(origin).netloc == host

    verdict = check_origin_allowed(crashes)
    assert verdict.message.startswith("origin_allowed: origin_allowed(None, '127.0.0.1:8765', [])")
    assert "raised AttributeError" in verdict.message
    assert verdict.hint == security.NO_ORIGIN


@pytest.mark.parametrize(
    "wrong",
    [
        lambda origin, host, allow: (
            origin is None or "*" in allow or host in origin or any(a in origin for a in allow)
        ),
        lambda origin, host, allow: (
            origin is None
            or "*" in allow
            or urlsplit(origin).netloc.startswith(host)
            or any(origin.startswith(a) for a in allow)
        ),
        lambda origin, host, allow: (
            origin is None
            or urlsplit(origin).netloc == host
            or any(origin.endswith(urlsplit(a).netloc) for a in allow)
        ),
    ],
    ids=["substring", "prefix", "suffix"],
)
def test_partial_matches_fail_with_the_whole_value_hint(wrong) -> None:
    verdict = check_origin_allowed(wrong)
    assert not verdict.passed
    assert verdict.hint == security.WHOLE, verdict


def test_ignoring_the_port_or_the_scheme_fails_with_their_hints() -> None:
    def host_name_only(origin, host, allow_list):
        if origin is None or urlsplit(origin).hostname == host.split(":")[0]:
            return True
        return "*" in allow_list or origin in allow_list

    verdict = check_origin_allowed(host_name_only)
    assert "origin_allowed('http://127.0.0.1:9999', '127.0.0.1:8765', [])" in verdict.message
    assert verdict.hint == security.OTHER_PORT

    def netloc_only(origin, host, allow_list):
        if origin is None or urlsplit(origin).netloc == host or "*" in allow_list:
            return True
        return urlsplit(origin).netloc in {urlsplit(a).netloc for a in allow_list}

    verdict = check_origin_allowed(netloc_only)
    assert "'http://class.example.org'" in verdict.message
    assert verdict.hint == security.SCHEME


def test_forgetting_the_star_or_the_own_page_fails_with_their_hints() -> None:
    def no_star(origin, host, allow_list):
        return origin is None or urlsplit(origin).netloc == host or origin in allow_list

    assert check_origin_allowed(no_star).hint == security.STAR

    def no_own_page(origin, host, allow_list):
        return origin is None or "*" in allow_list or origin in allow_list

    assert check_origin_allowed(no_own_page).hint == security.OWN_PAGE

    def allows_null(origin, host, allow_list):
        return origin == "null" or origin_right(origin, host, allow_list)

    assert check_origin_allowed(allows_null).hint == security.NULL


def test_origin_answers_must_be_booleans() -> None:
    verdict = check_origin_allowed(lambda origin, host, allow: "yes")
    assert "returned 'yes'; return True or False" in verdict.message
    verdict = check_origin_allowed(lambda origin, host, allow: None)
    assert "did you forget `return`?" in verdict.message


# -- exercise 3: verify_token -------------------------------------------------------------


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token_right(secret, token, now):
    payload, dot, signature = token.partition(".")
    if not dot or not payload or not signature:
        return None
    expected = b64(hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(signature, expected):
        return None
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    if now >= claims["exp"]:
        return None
    return claims["sub"]


def variant(*, compare=hmac.compare_digest, check_signature=True, expired=None, split=True):
    """The right answer with one thing changed."""

    def verify_token(secret, token, now):
        if split:
            payload, dot, signature = token.partition(".")
            if not dot or not payload or not signature:
                return None
        else:
            payload, signature = token.split(".")  # ValueError without exactly one dot
        expected = b64(hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest())
        if check_signature and not compare(signature, expected):
            return None
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        if (expired or (lambda now, exp: now >= exp))(now, claims["exp"]):
            return None
        return claims["sub"]

    return verify_token


def test_the_token_cases_are_what_the_server_decides() -> None:
    users = [security._expected_user(case) for case in TOKEN_CASES]
    assert users[:2] == ["alice", "bob"]
    assert users[2:] == [None] * (len(TOKEN_CASES) - 2)
    assert TOKEN_CASES[0].token == issue("classroom-secret", "alice", 3600, 1_800_000_000)


def test_a_right_verify_token_passes() -> None:
    verdict = check_verify_token(token_right)
    assert verdict.passed, verdict
    assert str(verdict) == "✅ verify_token: correct"
    # The variants get every answer right; their source only names compare_digest elsewhere.
    assert check_verify_token(variant()).message.startswith("verify_token: right answers, but")


def test_verify_token_not_done_yet() -> None:
    def blank(secret, token, now):
        raise NotImplementedError  # your code here

    verdict = check_verify_token(blank)
    assert verdict.message == "verify_token: not done yet"
    assert verdict.hint == security.TOKEN_HINT


def test_double_equals_gets_the_timing_hint() -> None:
    def plain(secret, token, now):
        payload, dot, signature = token.partition(".")
        if not dot or not payload or not signature:
            return None
        expected = b64(hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest())
        if signature != expected:
            return None
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return claims["sub"] if now < claims["exp"] else None

    verdict = check_verify_token(plain)
    assert verdict.message == (
        "verify_token: right answers, but the signatures are not compared with compare_digest"
    )
    assert verdict.hint == security.TIMING


def test_no_signature_check_fails_with_its_hint() -> None:
    verdict = check_verify_token(variant(check_signature=False))
    assert verdict.message == (
        "verify_token: a token for alice made with another secret: returned 'alice', expected None"
    )
    assert verdict.hint == security.SIGNATURE


def test_expiry_mistakes_fail_with_its_hint() -> None:
    never = check_verify_token(variant(expired=lambda now, exp: False))
    assert never.message.startswith("verify_token: alice's token, 1 s after its exp")
    assert never.hint == security.EXPIRY
    late = check_verify_token(variant(expired=lambda now, exp: now > exp))
    assert late.message == (
        "verify_token: alice's token, exactly at its exp: returned 'alice', expected None"
    )
    assert late.hint == security.EXPIRY


def test_raising_on_a_malformed_token_fails_with_its_hint() -> None:
    verdict = check_verify_token(variant(split=False))
    assert verdict.message.startswith("verify_token: the token 'garbage': raised ValueError")
    assert verdict.message.endswith("return None instead")
    assert verdict.hint == security.MALFORMED


def test_a_wrong_user_is_reported() -> None:
    verdict = check_verify_token(lambda secret, token, now: "alice")
    assert verdict.message == (
        "verify_token: bob's token, 50 minutes after it was made: returned 'alice', expected 'bob'"
    )
