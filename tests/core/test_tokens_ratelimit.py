"""Signed tokens and rate-limit policies: pure functions, driven with explicit clocks."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtlab.core.ratelimit import SlidingWindow, TokenBucket
from rtlab.core.tokens import TokenError, issue, verify

NOW = 1_800_000_000.0


def test_a_token_names_its_user_until_it_expires():
    token = issue("s3cret", "alice", ttl=60, now=NOW)
    assert verify("s3cret", token, NOW + 59) == "alice"
    with pytest.raises(TokenError, match="expired 1 s ago"):
        verify("s3cret", token, NOW + 61)


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("", "malformed token"),
        ("no-dot", "malformed token"),
        (".sig", "malformed token"),
        ("payload.", "malformed token"),
        ("payload.sïg", "tokens are ASCII"),
        ("p\u0430yload.sig", "tokens are ASCII"),  # a Cyrillic a
    ],
)
def test_malformed_tokens_are_refused(token, message):
    with pytest.raises(TokenError, match=message):
        verify("s3cret", token, NOW)


def test_another_secret_or_any_changed_byte_breaks_the_signature():
    token = issue("s3cret", "alice", ttl=60, now=NOW)
    with pytest.raises(TokenError, match="bad signature"):
        verify("other", token, NOW)
    for i in range(len(token)):
        if token[i] == ".":
            continue
        changed = token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1 :]
        with pytest.raises(TokenError):
            verify("s3cret", changed, NOW)


def test_a_signed_payload_that_is_not_a_claim_is_refused():
    from rtlab.core import tokens

    payload = tokens._b64(b"[1, 2]")
    forged = f"{payload}.{tokens._sign('s3cret', payload)}"
    with pytest.raises(TokenError, match="not a JSON object"):
        verify("s3cret", forged, NOW)


@given(user=st.text(min_size=1, max_size=40), secret=st.text(min_size=1, max_size=40))
def test_round_trip_for_any_user_and_secret(user, secret):
    assert verify(secret, issue(secret, user, ttl=10, now=NOW), NOW) == user


def test_bad_issue_arguments_are_refused():
    with pytest.raises(ValueError, match="secret must not be empty"):
        issue("", "alice", 60, NOW)
    with pytest.raises(ValueError, match="ttl must be positive"):
        issue("s", "alice", 0, NOW)


def test_sliding_window_allows_ten_a_minute_per_user():
    limit = SlidingWindow(limit=10, window=60)
    assert all(limit.check("alice", NOW + i).allowed for i in range(10))
    refused = limit.check("alice", NOW + 10)
    assert not refused.allowed
    assert refused.retry_after == pytest.approx(50)
    assert limit.check("bob", NOW + 10).allowed  # other users are unaffected
    assert limit.check("alice", NOW + 60).allowed  # the first one left the window


def test_token_bucket_allows_a_burst_then_the_rate():
    bucket = TokenBucket(rate=2, burst=5)
    assert all(bucket.check("alice", NOW).allowed for _ in range(5))
    refused = bucket.check("alice", NOW)
    assert not refused.allowed
    assert refused.retry_after == pytest.approx(0.5)
    assert bucket.check("alice", NOW + 0.5).allowed
    assert not bucket.check("alice", NOW + 0.5).allowed


def test_an_event_charged_more_than_one_makes_the_next_ones_wait():
    bucket = TokenBucket(rate=2, burst=5)
    assert bucket.check("alice", NOW).allowed
    bucket.charge("alice", NOW, 10)  # 4 tokens left, 10 taken: 6 owed, but a burst at most
    refused = bucket.check("alice", NOW)
    assert not refused.allowed and refused.retry_after == pytest.approx(3.0)  # 5 owed, +1
    assert bucket.check("bob", NOW).allowed
    window = SlidingWindow(limit=10, window=60)
    window.charge("alice", NOW, 8)
    assert [window.check("alice", NOW + 1).allowed for _ in range(3)] == [True, True, False]
    window.charge("alice", NOW + 2, 1_000_000)  # never more than the limit kept
    assert len(window._times["alice"]) == 10


@given(st.lists(st.floats(0, 1000), min_size=1, max_size=200))
def test_sliding_window_never_allows_more_than_its_limit_in_any_window(offsets):
    limit = SlidingWindow(limit=5, window=10)
    allowed = [t for t in sorted(offsets) if limit.check("k", t).allowed]
    for t in allowed:
        assert sum(1 for u in allowed if t <= u < t + 10) <= 5


def test_idle_keys_are_forgotten_so_memory_stays_bounded():
    window, bucket = SlidingWindow(2, 10), TokenBucket(1, 2)
    for user in map(str, range(100)):
        window.check(user, NOW)
        bucket.check(user, NOW)
    window.forget_idle(NOW + 10)
    bucket.forget_idle(NOW + 10)
    assert (len(window), len(bucket)) == (0, 0)


@pytest.mark.parametrize(
    "make", [lambda: SlidingWindow(0, 1), lambda: SlidingWindow(1, 0), lambda: TokenBucket(0, 1)]
)
def test_bad_policies_are_refused(make):
    with pytest.raises(ValueError, match="need"):
        make()
