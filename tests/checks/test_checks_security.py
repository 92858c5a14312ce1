"""The checks of lesson 06 pass right answers written differently, fail realistic wrong ones
with the hint for their mistake (the Origin check on a real server too), and say "not done
yet" to a learner copy."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from hmac import compare_digest as timing_safe
from urllib.parse import urlsplit

import pytest

from rtlab.aio.admission import origin_allowed
from rtlab.checks import security
from rtlab.checks.security import (
    ORIGIN_CASES,
    TOKEN_CASES,
    check_origin_allowed,
    check_verify_token,
)
from rtlab.core.tokens import issue


@pytest.fixture(autouse=True)
def nothing_printed(capfd):
    yield
    assert capfd.readouterr() == ("", "")


# -- exercise 1: origin_allowed -----------------------------------------------------------


def origin_right(origin, host, allow_list):
    """The lesson's answer."""
    if origin is None:
        return True  # not a browser
    if urlsplit(origin).netloc == host:
        return True  # one of the server's own pages
    allowed = [entry.rstrip("/") for entry in allow_list]
    return "*" in allowed or origin in allowed


def origin_parsed(origin, host, allow_list):
    """Another right answer: parts compared, case-insensitively, one return."""
    if origin is None:
        return True
    scheme, netloc = urlsplit(origin)[:2]
    listed = {tuple(urlsplit(entry.lower())[:2]) for entry in allow_list if entry != "*"}
    return (
        netloc.lower() == host.lower()
        or "*" in allow_list
        or (scheme.lower(), netloc.lower()) in listed
    )


def origin_loop(origin, host, allow_list):
    """Another right answer: the server's own origins spelled out, then the list."""
    if origin is None or origin in (f"http://{host}", f"https://{host}"):
        return True
    return any(entry == "*" or entry.removesuffix("/") == origin for entry in allow_list)


def test_the_reference_agrees_with_every_case_and_the_server() -> None:
    for case in ORIGIN_CASES:
        assert origin_allowed(case.origin, case.host, case.allow_list) is case.expected
    assert {case.expected for case in ORIGIN_CASES} == {True, False}


@pytest.mark.parametrize("right", [origin_right, origin_parsed, origin_loop, origin_allowed])
def test_right_origin_checks_pass_on_the_cases_and_on_a_real_server(right) -> None:
    verdict = check_origin_allowed(right)
    assert verdict.passed, verdict
    assert str(verdict) == "✅ origin_allowed: correct"


def test_origin_not_done_yet() -> None:
    def blank(origin, host, allow_list):
        raise NotImplementedError  # your code here

    verdict = check_origin_allowed(blank)
    assert verdict.message == "origin_allowed: not done yet"
    assert verdict.hint == f"{security.ORIGIN_NUDGE} (rtlab.hint() shows the recipe)"


def test_origin_refusing_non_browsers_fails_with_its_hint() -> None:
    def no_origin_refused(origin, host, allow_list):
        return origin is not None and origin_right(origin, host, allow_list)

    verdict = check_origin_allowed(no_origin_refused)
    assert verdict.message == (
        "origin_allowed: origin_allowed(None, '127.0.0.1:8765', []) returned False, expected True"
    )
    assert verdict.hint == security.NO_ORIGIN


def test_origin_crashing_on_none_is_a_cross_naming_the_exception() -> None:
    def crashes(origin, host, allow_list):
        return origin.lower() in allow_list or urlsplit(origin).netloc == host

    verdict = check_origin_allowed(crashes)
    assert verdict.message == (
        "origin_allowed: origin_allowed(None, '127.0.0.1:8765', []) raised AttributeError: "
        "'NoneType' object has no attribute 'lower'"
    )
    assert verdict.hint == security.NO_ORIGIN


def substring(origin, host, allow):
    return origin is None or "*" in allow or host in origin or any(a in origin for a in allow)


def prefix(origin, host, allow):
    return (
        origin is None
        or "*" in allow
        or urlsplit(origin).netloc.startswith(host)
        or any(origin.startswith(a.rstrip("/")) for a in allow)
    )


def suffix(origin, host, allow):
    return (
        origin is None
        or urlsplit(origin).netloc == host
        or "*" in allow
        or any(origin.endswith(urlsplit(a).netloc) for a in allow)
    )


def host_name_only(origin, host, allow):
    if origin is None or urlsplit(origin).hostname == host.split(":")[0]:
        return True
    return origin_right(origin, "", allow)


def listed_host_names(origin, host, allow):
    if origin is None or urlsplit(origin).netloc == host or "*" in allow:
        return True
    u = urlsplit(origin)
    return any(f"{u.scheme}://{u.hostname}" == a.rstrip("/") for a in allow)


def netloc_only(origin, host, allow):
    if origin is None or urlsplit(origin).netloc == host or "*" in allow:
        return True
    return urlsplit(origin).netloc in {urlsplit(a).netloc for a in allow}


def port_none(origin, host, allow):
    if origin is None:
        return True
    u = urlsplit(origin)
    return f"{u.hostname}:{u.port}" == host or origin_right(origin, "", allow)


def no_star(origin, host, allow):
    return origin is None or urlsplit(origin).netloc == host or origin in allow


def star_only_alone(origin, host, allow):
    return allow == ["*"] or origin_right(origin, host, [a for a in allow if a != "*"])


def no_own_page(origin, host, allow):
    return origin is None or "*" in allow or origin in [a.rstrip("/") for a in allow]


def allows_null(origin, host, allow):
    return origin == "null" or origin_right(origin, host, allow)


def as_given(origin, host, allow):
    return origin is None or urlsplit(origin).netloc == host or "*" in allow or origin in allow


def none_as_text(origin, host, allow):
    return origin_right(str(origin) if origin is None else origin, host, allow)


def compares_lists(origin, host, allow):
    return origin is None or urlsplit(origin).netloc == host or "*" in allow or [origin] == allow


def own_suffix(origin, host, allow):
    listed = "*" in allow or origin in allow
    return origin is None or urlsplit(origin).netloc.endswith(host) or listed


def own_text_suffix(origin, host, allow):
    return origin is None or origin.endswith(host) or "*" in allow or origin in allow


def listed_patterns(origin, host, allow):
    return (
        origin is None
        or urlsplit(origin).netloc == host
        or any(entry == "*" or re.fullmatch(entry.rstrip("/"), origin) for entry in allow)
    )


def empty_as_none(origin, host, allow):
    if not origin:
        return True
    return urlsplit(origin).netloc == host or "*" in allow or origin in allow


@pytest.mark.parametrize(
    ("wrong", "message", "hint"),
    [
        (
            own_suffix,
            "origin_allowed('http://1127.0.0.1:8765', '127.0.0.1:8765', []) "
            "returned True, expected False",
            security.WHOLE,
        ),
        (
            own_text_suffix,
            "origin_allowed('http://1127.0.0.1:8765', '127.0.0.1:8765', []) "
            "returned True, expected False",
            security.WHOLE,
        ),
        (
            listed_patterns,
            "origin_allowed('https://class-example.org', 'lab.example.org', "
            "['https://class.example.org']) returned True, expected False",
            security.WHOLE,
        ),
        (
            empty_as_none,
            "origin_allowed('', '127.0.0.1:8765', []) returned True, expected False",
            security.EMPTY,
        ),
        (
            substring,
            "origin_allowed('http://127.0.0.1:8765.evil.example', '127.0.0.1:8765', []) "
            "returned True, expected False",
            security.WHOLE,
        ),
        (
            prefix,
            "origin_allowed('http://127.0.0.1:8765.evil.example', '127.0.0.1:8765', []) "
            "returned True, expected False",
            security.WHOLE,
        ),
        (
            suffix,
            "origin_allowed('https://myclass.example.org', 'lab.example.org', "
            "['https://class.example.org']) returned True, expected False",
            security.WHOLE,
        ),
        (
            host_name_only,
            "origin_allowed('http://127.0.0.1:9999', '127.0.0.1:8765', []) returned True, "
            "expected False",
            security.OTHER_PORT,
        ),
        (
            listed_host_names,
            "origin_allowed('https://class.example.org:8443', 'lab.example.org', "
            "['https://class.example.org']) returned True, expected False",
            security.LISTED_PORT,
        ),
        (
            netloc_only,
            "origin_allowed('http://class.example.org', 'lab.example.org', "
            "['https://class.example.org']) returned True, expected False",
            security.SCHEME,
        ),
        (
            port_none,
            "origin_allowed('https://lab.example.org', 'lab.example.org', "
            "['https://class.example.org']) returned False, expected True",
            security.OWN_PAGE,
        ),
        (
            no_star,
            "origin_allowed('https://anything.example', 'lab.example.org', ['*']) "
            "returned False, expected True",
            security.STAR,
        ),
        (
            no_own_page,
            "origin_allowed('http://127.0.0.1:8765', '127.0.0.1:8765', []) returned False, "
            "expected True",
            security.OWN_PAGE,
        ),
        (
            allows_null,
            "origin_allowed('null', '127.0.0.1:8765', []) returned True, expected False",
            security.NULL,
        ),
        (
            as_given,
            "origin_allowed('https://class.example.org', 'lab.example.org', "
            "['https://class.example.org/']) returned False, expected True",
            security.TRAILING_SLASH,
        ),
        (
            none_as_text,
            "origin_allowed(None, '127.0.0.1:8765', []) returned False, expected True",
            security.NO_ORIGIN,
        ),
        (
            compares_lists,
            "origin_allowed('https://class.example.org', 'lab.example.org', "
            "['https://school.example.org', 'https://class.example.org']) returned False, "
            "expected True",
            security.LISTED,
        ),
    ],
    ids=lambda value: value.__name__ if callable(value) else "",
)
def test_wrong_origin_checks_fail_with_the_hint_for_their_mistake(wrong, message, hint) -> None:
    verdict = check_origin_allowed(wrong)
    assert not verdict.passed
    assert verdict.message == f"origin_allowed: {message}"
    assert verdict.hint == hint


def test_star_only_when_alone_passes_the_cases_it_sees() -> None:
    # '*' is only ever alone in the cases: a rule that special-cases ["*"] is not wrong there.
    assert check_origin_allowed(star_only_alone).passed


def test_origin_answers_must_be_booleans() -> None:
    verdict = check_origin_allowed(lambda origin, host, allow: "yes")
    assert "returned 'yes'; return True or False" in verdict.message
    verdict = check_origin_allowed(lambda origin, host, allow: None)
    assert "did you forget `return`?" in verdict.message


def on_the_server_only(decide):
    """A rule right on the fixed cases that decides otherwise for the live server's host."""

    def rule(origin, host, allow_list):
        if host.startswith("127.0.0.1:") and host != "127.0.0.1:8765":
            return decide(origin, host, allow_list)
        return origin_right(origin, host, allow_list)

    return rule


def test_the_real_server_grades_the_rule_by_real_handshakes() -> None:
    def allow_all(origin, host, allow_list):
        return True

    verdict = check_origin_allowed(on_the_server_only(allow_all))
    assert verdict.message == (
        "origin_allowed: on a real server allowing https://class.example.org, a handshake "
        "with Origin 'http://evil.example' got 101, expected 403"
    )
    assert verdict.hint == security.ORIGIN_HINT

    verdict = check_origin_allowed(on_the_server_only(prefix))
    assert verdict.message.endswith(
        "a handshake with Origin 'https://class.example.org.evil.com' got 101, expected 403"
    )

    def crash(origin, host, allow_list):
        raise KeyError(origin)

    verdict = check_origin_allowed(on_the_server_only(crash))
    assert verdict.message == (
        "origin_allowed: on a real server allowing https://class.example.org, a handshake "
        "with Origin None made your function raise KeyError: None"
    )


# -- exercise 2: verify_token -------------------------------------------------------------


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token_right(secret, token, now):
    payload, dot, signature = token.partition(".")
    if not dot or not payload or not signature:
        return None
    expected = b64(hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(signature.encode(), expected.encode()):
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
        if check_signature and not compare(signature.encode(), expected.encode()):
            return None
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        if (expired or (lambda now, exp: now >= exp))(now, claims["exp"]):
            return None
        return claims["sub"]

    return verify_token


def signed(secret, token):
    """The payload and both signatures, or None for a malformed token (compare_digest
    compares ASCII text alone)."""
    payload, dot, signature = token.partition(".")
    if not token.isascii():
        return None
    if not dot or not payload or not signature:
        return None
    return payload, signature, b64(hmac.new(secret.encode(), payload.encode(), "sha256").digest())


def claims_of(payload, now):
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return claims["sub"] if now < claims["exp"] else None


def token_imported_name(secret, token, now):
    parts = signed(secret, token)
    if parts is None or not timing_safe(parts[1], parts[2]):
        return None
    return claims_of(parts[0], now)


def token_local_import(secret, token, now):
    import hmac as h

    parts = signed(secret, token)
    if parts and h.compare_digest(parts[1].encode(), parts[2].encode()):
        return claims_of(parts[0], now)
    return None


def token_secrets(secret, token, now):
    parts = signed(secret, token)
    return claims_of(parts[0], now) if parts and secrets.compare_digest(*parts[1:]) else None


def same_signature(given, expected):
    return hmac.compare_digest(given, expected)


def token_helper(secret, token, now):
    parts = signed(secret, token)
    return claims_of(parts[0], now) if parts and same_signature(*parts[1:]) else None


@pytest.mark.parametrize(
    "right", [token_right, token_imported_name, token_local_import, token_secrets, token_helper]
)
def test_right_verify_tokens_written_differently_pass(right) -> None:
    verdict = check_verify_token(right)
    assert verdict.passed, verdict


def token_comment(secret, token, now):
    parts = signed(secret, token)
    if parts is None or parts[1] != parts[2]:  # should be hmac.compare_digest(a, b)
        return None
    return claims_of(parts[0], now)


def token_string(secret, token, now):
    parts = signed(secret, token)
    if parts is None or parts[1] != parts[2]:
        return None  # "hmac.compare_digest"
    return claims_of(parts[0], now) if "compare_digest" else None


def token_variable(secret, token, now):
    parts = signed(secret, token)
    compare_digest = parts is not None and parts[1] == parts[2]
    return claims_of(parts[0], now) if compare_digest else None


def token_discarded(secret, token, now):
    parts = signed(secret, token)
    if parts is None:
        return None
    hmac.compare_digest(parts[1], parts[2])  # called, and its answer thrown away
    return claims_of(parts[0], now) if parts[1] == parts[2] else None


def compare_digest(given, expected):  # a look-alike of the learner's own
    return given == expected


def token_look_alike(secret, token, now):
    parts = signed(secret, token)
    return claims_of(parts[0], now) if parts and compare_digest(*parts[1:]) else None


@pytest.mark.parametrize(
    "wrong", [token_comment, token_string, token_variable, token_discarded, token_look_alike]
)
def test_compare_digest_named_but_not_called_gets_the_timing_hint(wrong) -> None:
    verdict = check_verify_token(wrong)
    assert verdict.message == (
        "verify_token: right answers, but the signatures are not compared with compare_digest"
    )
    assert verdict.hint == security.TIMING


def test_a_crash_on_a_valid_token_is_a_cross_naming_it() -> None:
    def crashes(secret, token, now):
        return token_right(secret, token, now).upper().decode()

    verdict = check_verify_token(crashes)
    assert verdict.message == (
        "verify_token: alice's token, 10 s after it was made: raised AttributeError: "
        "'str' object has no attribute 'decode'"
    )
    assert verdict.hint == security.TOKEN_HINT


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
    assert verdict.hint == f"{security.TOKEN_NUDGE} (rtlab.hint() shows the recipe)"


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


def prefix_of_expected(secret, token, now):
    parts = signed(secret, token)
    if parts is None or not parts[1]:
        return None
    given, expected = parts[1], parts[2][: len(parts[1])]  # any prefix of the right one
    return claims_of(parts[0], now) if hmac.compare_digest(given, expected) else None


def first_characters(secret, token, now):
    parts = signed(secret, token)
    same = parts and hmac.compare_digest(parts[1][:8], parts[2][:8])
    return claims_of(parts[0], now) if same else None


@pytest.mark.parametrize(
    ("wrong", "case"),
    [
        (prefix_of_expected, "alice's token with only the first character of its signature"),
        (first_characters, "alice's token with the last character of its signature changed"),
    ],
    ids=lambda value: value.__name__ if callable(value) else "",
)
def test_a_part_of_the_signature_compared_fails_with_its_hint(wrong, case) -> None:
    verdict = check_verify_token(wrong)
    assert verdict.message == f"verify_token: {case}: returned 'alice', expected None"
    assert verdict.hint == security.SIGNATURE


def test_signature_cases_change_bytes_not_just_text() -> None:
    # A base64url signature's last character carries 2 bits of padding: a change there alone
    # would leave the bytes as they were, and a right answer comparing bytes would pass it.
    def decoded(text: str) -> bytes | None:
        try:
            return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        except ValueError:  # no bytes at all: refused by any answer that decodes
            return None

    right = security.ALICE.split(".")[1]
    for case in TOKEN_CASES:
        signature = case.token.partition(".")[2]
        if "signature" in case.what and signature.isascii():
            assert decoded(signature) != decoded(right), case.what


def test_compare_digest_on_text_that_is_not_ascii_fails_with_its_hint() -> None:
    def text_compared(secret, token, now):
        payload, dot, signature = token.partition(".")
        if not dot or not payload or not signature:
            return None
        expected = b64(hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest())
        return claims_of(payload, now) if hmac.compare_digest(signature, expected) else None

    verdict = check_verify_token(text_compared)
    assert verdict.message == (
        "verify_token: alice's token with an 'é' in place of its signature's first character: "
        "raised TypeError: comparing strings with non-ASCII characters is not supported; "
        "return None instead"
    )
    assert verdict.hint == security.NON_ASCII


def test_compare_digest_whose_answer_is_kept_but_never_read_gets_the_timing_hint() -> None:
    def kept(secret, token, now):
        parts = signed(secret, token)
        if parts is None:
            return None
        same = hmac.compare_digest(parts[1], parts[2])  # noqa: F841 - the mistake itself
        return claims_of(parts[0], now) if parts[1] == parts[2] else None

    def read(secret, token, now):
        parts = signed(secret, token)
        same = parts is not None and hmac.compare_digest(parts[1], parts[2])
        return claims_of(parts[0], now) if same else None

    assert check_verify_token(kept).hint == security.TIMING
    assert check_verify_token(read).passed
