"""Checks for lesson 06, security: an Origin check, and a token verified by hand.

Exercise 1: ``origin_allowed(origin, host, allow_list) -> bool``, the decision the lab
server's admission makes about a handshake's ``Origin`` header
(:mod:`rtlab.aio.admission`). The check asks it about fixed cases, then installs it on
a real lab server and makes real handshakes with forged ``Origin`` headers.

Exercise 2: ``verify_token(secret, token, now)``, the user a token of
:mod:`rtlab.core.tokens` names, or ``None`` for any token that proves nothing; its
source must call ``hmac.compare_digest`` (found with :mod:`ast`, not by the word).

Every case is fixed, so a cell that ends with a check always shows the same line.
"""

from __future__ import annotations

import base64
import hmac
import json
import string
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from rtlab.checks import Verdict, describe, grade
from rtlab.checks.calls import uses_answer_of
from rtlab.core.tokens import TokenError, issue, verify
from rtlab.notebook.background import start_server

__all__ = ["check_origin_allowed", "check_verify_token"]

Problem = tuple[str, str]  # what went wrong, and the hint for it


# -- exercise 1: origin_allowed(origin, host, allow_list) ------------------------------------

ORIGIN_HINT = (
    "allow when there is no Origin (None), when the origin's host:port is the server's "
    "(urlsplit(origin).netloc == host), or when the whole origin equals an entry of the "
    "allow-list, both without a trailing '/' (or the list has '*'); refuse everything else"
)
ORIGIN_NUDGE = (
    "first the easy one: `if origin is None: return True` (no Origin header, not a browser)"
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
LISTED_PORT = (
    "the allow-list names whole origins, port included: https://class.example.org:8443 is "
    "another server than https://class.example.org, so compare the whole origin"
)
TRAILING_SLASH = (
    "an Origin never ends with '/', but an allow-list typed by a person may "
    "(--origins https://class.example.org/): compare entry.rstrip('/') with the origin"
)
EMPTY = (
    "an empty Origin header is still a header, sent by something that is no browser "
    "you know: only None means there was none, so refuse ''"
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
    OriginCase(f"http://1{HERE}", HERE, (), False, WHOLE),
    OriginCase(f"https://evil{LAB}", LAB, (), False, WHOLE),
    OriginCase(f"{CLASS}.evil.example", LAB, (CLASS,), False, WHOLE),
    OriginCase("https://myclass.example.org", LAB, (CLASS,), False, WHOLE),
    OriginCase("https://class.example", LAB, (CLASS,), False, WHOLE),
    OriginCase("https://class.example.org.evil.com", LAB, (CLASS,), False, WHOLE),
    OriginCase("https://class-example.org", LAB, (CLASS,), False, WHOLE),
    OriginCase("http://class.example.org", LAB, (CLASS,), False, SCHEME),
    OriginCase(f"{CLASS}:8443", LAB, (CLASS,), False, LISTED_PORT),
    OriginCase("", HERE, (), False, EMPTY),
    OriginCase("null", HERE, (), False, NULL),
    OriginCase("null", LAB, (CLASS,), False, NULL),
    OriginCase(CLASS, LAB, (f"{CLASS}/",), True, TRAILING_SLASH),
    OriginCase(CLASS, LAB, ("https://school.example.org/", f"{CLASS}/"), True, TRAILING_SLASH),
)


def _cases_problem(origin_allowed: Callable[..., Any]) -> Problem | None:
    for case in ORIGIN_CASES:
        call = f"origin_allowed({case.origin!r}, {case.host!r}, {list(case.allow_list)!r})"
        try:
            got = origin_allowed(case.origin, case.host, list(case.allow_list))
        except NotImplementedError:
            raise
        except Exception as error:
            return f"{call} raised {describe(error)}", case.hint
        if got is None:
            return f"{call} returned None; did you forget `return`?", ORIGIN_HINT
        if not isinstance(got, bool):
            return f"{call} returned {got!r}; return True or False", ORIGIN_HINT
        if got != case.expected:
            return f"{call} returned {got}, expected {case.expected}", case.hint
    return None


# On a real server: the rule installed in its admission, graded by real handshakes.


def _live_origins(port: int) -> list[tuple[str | None, int]]:
    """``Origin`` headers a server allowing CLASS gets, and the status each must get."""
    return [
        (None, 101),
        (f"http://127.0.0.1:{port}", 101),
        (CLASS, 101),
        ("http://evil.example", 403),
        (f"{CLASS}.evil.com", 403),
        (f"http://1127.0.0.1:{port}", 403),
        ("http://localhost:1", 403),
    ]


def _handshake(url: str, origin: str | None) -> str:
    """The status of a real opening handshake with that ``Origin``, or what went wrong."""
    try:
        with connect(url, origin=origin, open_timeout=3):  # type: ignore[arg-type]
            return "101"
    except InvalidStatus as refusal:
        return str(refusal.response.status_code)
    except Exception as error:
        return f"no answer ({describe(error)})"


def _live_problem(origin_allowed: Callable[..., Any]) -> Problem | None:
    raised: list[str] = []

    def installed(origin: str | None, host: str, allow_list: Iterable[str]) -> bool:
        try:
            return origin_allowed(origin, host, sorted(allow_list)) is True
        except Exception as error:
            raised.append(describe(error))
            return False

    server = start_server(origins=[CLASS])
    try:
        server.call(setattr, server.server.admission, "origin_rule", installed)
        for origin, expected in _live_origins(server.port):
            status = _handshake(server.echo_url, origin)
            what = f"on a real server allowing {CLASS}, a handshake with Origin {origin!r}"
            if raised:
                return f"{what} made your function raise {raised[0]}", ORIGIN_HINT
            if status != str(expected):
                return f"{what} got {status}, expected {expected}", ORIGIN_HINT
    finally:
        server.stop()
    return None


def _origin_problem(origin_allowed: Callable[..., Any]) -> Problem | None:
    if not callable(origin_allowed):
        return f"expected a function, got {type(origin_allowed).__name__}", ORIGIN_HINT
    return _cases_problem(origin_allowed) or _live_problem(origin_allowed)


def check_origin_allowed(origin_allowed: Callable[..., Any]) -> Verdict:
    """Grade ``origin_allowed(origin, host, allow_list) -> bool``: fixed cases, then
    installed on a real server and asked by real handshakes with forged origins."""
    return grade(
        "origin_allowed", lambda: _origin_problem(origin_allowed), ORIGIN_HINT, ORIGIN_NUDGE
    )


# -- exercise 2: verify_token(secret, token, now) --------------------------------------------

TOKEN_HINT = (
    "split PAYLOAD.SIGNATURE at the dot; compute the HMAC-SHA256 of the payload text with "
    "the secret, base64url without '='; compare it with the signature, both as bytes "
    "(.encode()), using hmac.compare_digest; only then decode the payload and check that now < exp"
)
TOKEN_NUDGE = (
    "start by splitting the token safely: payload, dot, signature = token.partition('.'), "
    "and return None when a part is missing"
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
NON_ASCII = (
    "a token is ASCII, but whoever sends one can put anything in it, and compare_digest "
    "raises TypeError for a str with other characters: compare bytes, "
    "hmac.compare_digest(signature.encode(), expected.encode())"
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


B64URL = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"


def _other(character: str) -> str:
    """Another base64url character, one of whose data bits differs (the last character of
    a signature carries 4 bits and 2 of padding): different bytes, not just another text."""
    return B64URL[B64URL.index(character) ^ 0b010000]


def _resigned(change: Callable[[str], str]) -> str:
    """alice's token with its signature changed by ``change``."""
    payload, signature = issue(TOKEN_SECRET, "alice", TTL, ISSUED).split(".")
    return f"{payload}.{change(signature)}"


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
    TokenCase(
        "alice's token with the first character of its signature changed",
        _resigned(lambda sig: _other(sig[0]) + sig[1:]),
        ISSUED,
        SIGNATURE,
    ),
    TokenCase(
        "alice's token with the last character of its signature changed",
        _resigned(lambda sig: sig[:-1] + _other(sig[-1])),
        ISSUED,
        SIGNATURE,
    ),
    TokenCase(
        "alice's token with only the first character of its signature",
        _resigned(lambda sig: sig[:1]),
        ISSUED,
        SIGNATURE,
    ),
    TokenCase(
        "alice's token with its signature's last character cut",
        _resigned(lambda sig: sig[:-1]),
        ISSUED,
        SIGNATURE,
    ),
    TokenCase(
        "alice's token with a character added to its signature",
        _resigned(lambda sig: sig + "A"),
        ISSUED,
        SIGNATURE,
    ),
    TokenCase("alice's token, 1 s after its exp", ALICE, ISSUED + TTL + 1, EXPIRY),
    TokenCase("alice's token, exactly at its exp", ALICE, ISSUED + TTL, EXPIRY),
    TokenCase("the token 'garbage'", "garbage", ISSUED, MALFORMED),
    TokenCase("the empty token ''", "", ISSUED, MALFORMED),
    TokenCase("alice's token cut after its dot", ALICE[: ALICE.index(".") + 1], ISSUED, MALFORMED),
    TokenCase("alice's payload alone", ALICE.split(".")[0], ISSUED, MALFORMED),
    TokenCase(
        "alice's token with an 'é' in place of its signature's first character",
        _resigned(lambda sig: "é" + sig[1:]),
        ISSUED,
        NON_ASCII,
    ),
)


def _expected_user(case: TokenCase) -> str | None:
    try:
        return verify(TOKEN_SECRET, case.token, case.now)
    except TokenError:
        return None


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
            hint = case.hint if case.hint != TOKEN_HINT else MALFORMED
            if expected is None:
                return f"{where}: raised {describe(error)}; return None instead", hint
            return f"{where}: raised {describe(error)}", TOKEN_HINT
        if got != expected:
            shown = "None" if expected is None else repr(expected)
            return f"{where}: returned {got!r}, expected {shown}", case.hint
    if uses_answer_of(verify_token, {hmac.compare_digest}) is False:
        return "right answers, but the signatures are not compared with compare_digest", TIMING
    return None


def check_verify_token(verify_token: Callable[..., Any]) -> Verdict:
    """Grade ``verify_token(secret, token, now)``: the user a valid token names, else None."""
    return grade("verify_token", lambda: _token_problem(verify_token), TOKEN_HINT, TOKEN_NUDGE)
