"""Checks for lesson 01, the handshake: ``Sec-WebSocket-Accept`` and frame headers.

Exercise 1: ``accept_key(key)`` returns the ``Sec-WebSocket-Accept`` value that a
server sends back for a client's ``Sec-WebSocket-Key`` (RFC 6455 §4.2.2).

Exercise 2: ``frame_header(payload_length, masked)`` returns the header bytes of a
final text frame, without the masking key (RFC 6455 §5.2). Its check also puts
frames built with the learner's headers on the wire: over a raw socket to a real lab
server's ``/echo``, and grades what the server answers (its echo, or its close code).

Both checks are plain functions that return a :class:`~rtlab.checks.Verdict`. Their
cases are fixed (the random keys come from a seeded generator), so a cell that ends
with a check always shows the same line.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import random
import socket
from collections.abc import Callable

import websockets.utils

from rtlab.checks import Problem, Verdict, describe, grade
from rtlab.checks.bounded import STILL_RUNNING, call_within
from rtlab.checks.calls import uses_answer_of
from rtlab.core import frames
from rtlab.core import handshake as core
from rtlab.core.handshake import GUID
from rtlab.core.handshake import accept_key as reference_accept_key
from rtlab.notebook.background import start_server

__all__ = ["check_accept_key", "check_frame_header"]

# RFC 6455 §1.3 and §4.2.2: the sample key (its accept value comes from rtlab.core).
RFC_KEY = "dGhlIHNhbXBsZSBub25jZQ=="

N_RANDOM_KEYS = 50
LIMIT = 2.0  # seconds the learner's function may take for one case


def _random_keys(n: int = N_RANDOM_KEYS, seed: int = 6455) -> tuple[str, ...]:
    """Keys shaped like real ones (base64 of 16 random bytes), the same on every run."""
    rng = random.Random(seed)
    return tuple(base64.b64encode(rng.randbytes(16)).decode("ascii") for _ in range(n))


KEYS: tuple[str, ...] = (RFC_KEY, *_random_keys())

ACCEPT_NUDGE = (
    "three steps, as in section 2: append the GUID to the key, hash that with SHA-1, "
    "then base64-encode the hash"
)

# Functions whose answer carries the accept value: the reference itself, and the lesson's
# module's builders of the 101 answer, whose Sec-WebSocket-Accept is it.
LIBRARY_ACCEPT_KEYS = (
    reference_accept_key,
    websockets.utils.accept_key,
    core.build_response,
    core.accept,
)
YOUR_OWN = (
    "the check compares with handshake.accept_key: calling it proves nothing. Compute the "
    "value yourself, with hashlib and base64, as section 2 did by hand"
)
ACCEPT_HINT = (
    "base64(SHA-1(key + GUID)): append the GUID to the key, as text; hash the result "
    "with hashlib.sha1(...).digest() (the 20 raw bytes, not .hexdigest()); then "
    "base64-encode those bytes and return the result as a str."
)


def _sha1(text: str) -> bytes:
    return hashlib.sha1(text.encode()).digest()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _accept_slips(key: str) -> list[tuple[object, str]]:
    """Typical wrong answers for ``key``, each with what went wrong."""
    right = reference_accept_key(key)
    digest = _sha1(key + GUID)
    slips: list[tuple[object, str]] = [
        (right.encode(), "it returned bytes: return a str (call .decode() on the base64 bytes)"),
        (str(right.encode()), "it returned str(bytes), with b'...' around it: use .decode()"),
        (_b64(_sha1(key)), "the GUID is missing: hash key + GUID, not the key alone"),
        (_b64(_sha1(GUID + key)), "the GUID goes after the key: key + GUID"),
        (_b64(_sha1(key + GUID.lower())), f"the GUID must be exactly {GUID}, in capitals"),
        (_b64(_sha1(key.rstrip("=") + GUID)), "use the whole key, its '=' padding included"),
        (_b64(_sha1(key.strip("=") + GUID)), "use the whole key, its '=' padding included"),
        (right.rstrip("="), "keep the base64 result whole: its '=' padding is part of it"),
        (
            right + "\n",
            "it ends with a newline (base64.encodebytes adds one): use base64.b64encode",
        ),
        (
            base64.urlsafe_b64encode(digest).decode(),
            "that is URL-safe base64 (- and _): use standard base64, base64.b64encode",
        ),
        (digest.hex(), "that is the hex digest: base64-encode the raw digest, .digest(), instead"),
        (
            _b64(digest.hex().encode()),
            "that is base64 of the hex digest: base64-encode .digest(), the 20 raw bytes",
        ),
        (_b64((key + GUID).encode()), "that is base64 of key + GUID: hash it with SHA-1 first"),
        (_b64(key.encode()), "that is base64 of the key itself: hash key + GUID with SHA-1 first"),
        (
            _b64(hashlib.sha256((key + GUID).encode()).digest()),
            "that is SHA-256: the handshake uses SHA-1",
        ),
        (
            _b64(hashlib.md5((key + GUID).encode()).digest()),
            "that is MD5: the handshake uses SHA-1",
        ),
    ]
    try:
        decoded = base64.b64decode(key)
        slips.append(
            (
                _b64(hashlib.sha1(decoded + GUID.encode()).digest()),
                "use the key as sent, its base64 text: do not decode it first",
            )
        )
    except ValueError:
        pass
    return slips


def _shorten(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def check_accept_key(function: Callable[[str], str]) -> Verdict:
    """Grade ``accept_key(key)`` on the RFC sample and 50 random keys."""

    def attempt() -> Problem | None:
        if not callable(function):
            return f"expected a function, got {type(function).__name__}"
        for key in KEYS:
            call = f"accept_key({key!r})"
            try:
                got = call_within(lambda key=key: function(key), LIMIT)
            except NotImplementedError:
                raise
            except Exception as error:
                return f"{call} raised {describe(error)}"
            if got is STILL_RUNNING:
                return f"{call} did not return within {LIMIT:g} s: does a loop never end?"
            expected = reference_accept_key(key)
            if got == expected:
                continue
            if got is None:
                return f"{call} returned None: did you forget `return`?"
            for slip, why in _accept_slips(key):
                if got == slip:
                    return f"{call} returned {_shorten(got)}: {why}"
            return f"{call} returned {_shorten(got)}, expected {expected!r}"
        if uses_answer_of(function, LIBRARY_ACCEPT_KEYS):
            return "right answers, but they come from a library's accept_key", YOUR_OWN
        return None

    return grade("accept_key", attempt, ACCEPT_HINT, ACCEPT_NUDGE)


# --------------------------------------------------------------------------
# Exercise 2: frame_header(payload_length, masked)
# --------------------------------------------------------------------------

# (payload_length, masked): short forms first, then each boundary of the 126/127 rule.
CASES: tuple[tuple[int, bool], ...] = (
    (5, True),  # "Hello" from a client: the frame built in the lesson
    (5, False),  # the same from a server: no MASK bit
    (0, True),  # an empty message
    (125, True),  # the longest length that fits in 7 bits
    (126, True),  # the shortest that needs the 16-bit form
    (300, False),
    (65535, True),  # the longest that fits in 16 bits
    (65536, True),  # the shortest that needs the 64-bit form
    (70000, False),
    (2**32, True),  # beyond 32 bits
    (2**63 - 1, False),  # the largest length a frame can announce
)

# Client frames (masked) short enough to send: each goes to a lab server's /echo.
LIVE = frozenset((n, masked) for n, masked in CASES if masked and n <= 2**17)
LIVE_KEY = bytes([0x37, 0xFA, 0x21, 0x3D])  # the lesson's masking key
LIVE_TIMEOUT = 1.0  # seconds to wait for the server's answer to one frame

FRAME_NUDGE = (
    "start with the short form: byte 0 holds FIN and the opcode, byte 1 the MASK bit and "
    "the length (section 4's Hello frame); then the two longer forms of section 5"
)

FRAME_HINT = (
    "byte 0 is 0x81 (FIN = 1, opcode 1 = text); byte 1 is the MASK bit (0x80 when masked) "
    "plus a 7-bit length: the length itself for 0 to 125; 126 followed by the length in "
    "2 bytes for 126 to 65535; 127 followed by the length in 8 bytes beyond. Extended "
    "lengths are big-endian: n.to_bytes(2, 'big'), n.to_bytes(8, 'big')."
)


def expected_header(payload_length: int, masked: bool) -> bytes:
    """The header of a FIN text frame of ``payload_length`` bytes, mask key left out."""
    first = 0x80 | 0x1
    mask_bit = 0x80 if masked else 0
    if payload_length <= 125:
        return bytes([first, mask_bit | payload_length])
    if payload_length <= 0xFFFF:
        return bytes([first, mask_bit | 126]) + payload_length.to_bytes(2, "big")
    return bytes([first, mask_bit | 127]) + payload_length.to_bytes(8, "big")


def _length_rule(n: int) -> str:
    if n <= 125:
        return f"{n} fits in the 7-bit field: byte 1 holds the length itself, {n}"
    if n <= 0xFFFF:
        return f"{n} is 126 to 65535: byte 1 says 126 and the next 2 bytes hold the length"
    return f"{n} is over 65535: byte 1 says 127 and the next 8 bytes hold the length"


def _diagnose_header(got: bytes, expected: bytes, n: int, masked: bool) -> str:
    """Say which part of a wrong header is wrong."""
    if got[:1] != expected[:1]:
        first = got[0] if got else None
        if first == 0x01:
            return "byte 0 is 0x01: set the FIN bit too (0x80 | opcode 1 = 0x81)"
        if first is not None and first & 0x0F != 1:
            return f"byte 0 is 0x{first:02x}: a text frame has opcode 1, so byte 0 is 0x81"
        shown = "missing" if first is None else f"0x{first:02x}"
        return f"byte 0 is {shown}: it should be 0x81 (FIN = 1, opcode 1 = text)"
    if len(got) < 2:
        return "the header needs at least 2 bytes"
    got_bit, want_bit = got[1] & 0x80, expected[1] & 0x80
    if got_bit != want_bit:
        if masked:
            return "the MASK bit (0x80 in byte 1) is missing: the frame is masked"
        return "the MASK bit (0x80 in byte 1) is set, but this frame is not masked"
    if got[1] & 0x7F != expected[1] & 0x7F:
        return f"byte 1's 7-bit length is {got[1] & 0x7F}, but {_length_rule(n)}"
    if len(got) == len(expected) + 4:
        return "leave the 4-byte masking key out: only the header before it"
    extended = got[2:]
    if len(extended) != len(expected) - 2:
        return f"{len(extended)} byte(s) after byte 1, but {_length_rule(n)}"
    if extended == n.to_bytes(len(extended), "little"):
        return "the extended length is little-endian: network byte order is big-endian"
    return f"the extended length should be {expected[2:].hex(' ')}, not {extended.hex(' ')}"


def _open_echo(host: str, port: int) -> tuple[socket.socket, bytearray]:
    """A raw TCP connection to the lab server's /echo, past the opening handshake."""
    sock = socket.create_connection((host, port), timeout=LIVE_TIMEOUT)
    try:
        request, key = core.build_request(f"{host}:{port}", "/echo")
        sock.sendall(request)
        received = b""
        while (parts := core.split_head(received)) is None:
            chunk = sock.recv(4096)
            if not chunk:
                raise ConnectionError("the lab server closed the connection during the handshake")
            received += chunk
        head, rest = parts
        core.parse_response(head, key)
    except BaseException:
        sock.close()
        raise
    return sock, bytearray(rest)


def _server_answer(host: str, port: int, header: bytes, n: int) -> str | None:
    """Send a frame with ``header`` and an n-byte text payload to /echo: what went
    wrong with the server's answer, or None when it echoed the text."""
    payload = b"x" * n
    sock, inbox = _open_echo(host, port)
    with sock:
        # The server may close before it has read everything: its answer says why.
        with contextlib.suppress(OSError):
            sock.sendall(header + LIVE_KEY + frames.mask(payload, LIVE_KEY))
        try:
            while (result := frames.decode(inbox)) is None:
                chunk = sock.recv(65536)
                if not chunk:
                    return "dropped the connection without a close frame"
                inbox += chunk
        except TimeoutError:
            return (
                f"sent nothing back within {LIVE_TIMEOUT:g} s: it is still waiting, for "
                "bytes your header announced or for the rest of the message"
            )
        except OSError as error:
            return f"dropped the connection ({type(error).__name__})"
        frame, _, _ = result
        if frame.opcode == frames.Opcode.CLOSE:
            code, reason = frames.decode_close(frame.payload)
            return f"closed the connection with {frames.describe_close(code)} ({reason!r})"
        if frame.opcode == frames.Opcode.TEXT and frame.payload == b"Echo: " + payload:
            return None
        return f"answered a {frame.opcode.name} frame of {len(frame.payload)} bytes, not the echo"


def _header_problem(
    function: Callable[[int, bool], bytes], n: int, masked: bool, server: tuple[str, int]
) -> Problem | None:
    call = f"frame_header({n}, masked={masked})"
    try:
        got = call_within(lambda: function(n, masked), LIMIT)
    except NotImplementedError:
        raise
    except Exception as error:
        return f"{call} raised {describe(error)}", f"{_length_rule(n)}. The rule: {FRAME_HINT}"
    if got is STILL_RUNNING:
        return f"{call} did not return within {LIMIT:g} s: does a loop never end?"
    if got is None:
        return f"{call} returned None: did you forget `return`?"
    if not isinstance(got, bytes | bytearray):
        return (
            f"{call} returned {type(got).__name__} {_shorten(got)}: "
            "return bytes, e.g. bytes([0x81, 5])"
        )
    got, expected = bytes(got), expected_header(n, masked)
    answer = _server_answer(*server, got, n) if (n, masked) in LIVE else None
    if got == expected and answer is None:
        return None
    message = f"{call} returned {got.hex(' ') or 'nothing'}, expected {expected.hex(' ')}"
    if (n, masked) in LIVE:
        said = answer or "echoed it, though a sender must use the shortest length form"
        message += f"; sent to a lab server's /echo with {n:,} bytes of payload, it {said}"
    if got == expected:  # right, yet the server did not echo: say what it did
        return message
    return message, _diagnose_header(got, expected, n, masked)


def check_frame_header(function: Callable[[int, bool], bytes]) -> Verdict:
    """Grade ``frame_header(payload_length, masked)`` on every form of the length; the
    client frames short enough to send also go to a live lab server's ``/echo``."""

    def attempt() -> Problem | None:
        if not callable(function):
            return f"expected a function, got {type(function).__name__}"
        with start_server(ping_interval=None) as server:
            for n, masked in CASES:
                if problem := _header_problem(function, n, masked, (server.host, server.port)):
                    return problem
        return None

    verdict = grade("frame_header", attempt, FRAME_HINT, FRAME_NUDGE)
    if verdict.passed:
        sizes = ", ".join(f"{n:,}" for n, _ in sorted(LIVE))
        return Verdict(True, f"{verdict.message}; a lab server echoed frames of {sizes} bytes")
    return verdict
