"""Checks for lesson 08, performance: binary attachments and a compression threshold.

Exercise 1: ``pack_samples(samples) -> bytes`` packs float samples as little-endian
float32 (4 bytes each), ``unpack_samples(raw) -> list[float]`` reads them back. The
check sends the packed bytes through a real lab server to another client, in a
binary frame, verifies they arrive intact and read back to the samples, then tries
three samples, so that a format written for 1,000 only does not pass.

Exercise 2: a threshold for permessage-deflate, chosen for a given mix of messages:
compress every message that deflate makes at least ``WORTH`` smaller, and leave the
others as they are. The check compresses each message for real to find which
thresholds do that.
"""

from __future__ import annotations

import base64
import contextlib
import json
import math
import numbers
import random
import struct
import zlib
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from rtlab.aio.client import EventClient
from rtlab.aio.compression import COMPRESS_SETTINGS, WINDOW_BITS
from rtlab.aio.server import LabServer
from rtlab.checks import Problem, Verdict, describe, grade
from rtlab.checks.bounded import STILL_RUNNING, call_within
from rtlab.notebook.background import BackgroundLoop

__all__ = [
    "WORTH",
    "check_binary_samples",
    "check_threshold",
    "deflated_size",
    "message_mix",
    "thresholds_that_work",
]

WORTH = 0.5  # compress a message when deflate saves at least half of its bytes
SAMPLE_COUNT = 1000
LEARNER_TIMEOUT = 5.0  # seconds the learner's function may take for one call
FEW = [1.5, -2.0, 0.25]  # float32 holds these exactly

SAMPLES_NUDGE = (
    "start with pack_samples: struct.pack takes a format, then the values (*samples), as "
    "section 1 packs the readings"
)
SAMPLES_HINT = (
    "struct.pack(f'<{len(samples)}f', *samples) gives 4 bytes per sample, little-endian; "
    "struct.unpack(f'<{len(raw) // 4}f', raw) reads them back, and list(...) makes the "
    "tuple a list"
)
ANY_LENGTH = (
    "build the format from the number of samples, f'<{len(samples)}f', or from the bytes, "
    "f'<{len(raw) // 4}f': the functions must work for any number of samples"
)
THRESHOLD_NUDGE = (
    "start by measuring: for each message, the bytes deflate makes of it (as the exercise "
    "says) against len(message); which ones shrink by at least half?"
)
THRESHOLD_HINT = (
    "compress each message on its own (zlib.compressobj(wbits=-12), compress + "
    "flush(zlib.Z_SYNC_FLUSH), minus the last 4 bytes, as permessage-deflate does) and "
    f"compare sizes; a message is worth it when it shrinks by at least {WORTH:.0%}. "
    "The threshold must be above every message not worth it and at most every message "
    "worth it"
)


def sensor_samples(count: int = SAMPLE_COUNT, seed: int = 6) -> list[float]:
    """``count`` readings of a noisy sensor, as Python floats."""
    rng = random.Random(seed)
    return [20 + 5 * math.sin(i / 50) + rng.gauss(0, 0.3) for i in range(count)]


# -- exercise 1: binary samples -------------------------------------------------------


async def _through_a_server(raw: bytes) -> bytes:
    """Send ``raw`` in an event to a room of a fresh lab server; what the other member got."""
    async with LabServer() as server:

        @server.on("samples")
        def relay(session: object, data: dict[str, object]) -> int:
            return server.emit("samples", data, to="check")

        sender = await EventClient.connect(server.url, "sender")
        receiver = await EventClient.connect(server.url, "receiver")
        try:
            await receiver.emit("join-room", "check", ack=True)
            await sender.emit("samples", {"raw": raw}, ack=True)
            [data] = await receiver.wait_for("samples")
        finally:
            await sender.close()
            await receiver.close()
    return data["raw"]


def _run(coro: Coroutine[Any, Any, bytes]) -> bytes:
    """Run the round trip on a loop of its own (a cell's loop may be running)."""
    background = BackgroundLoop(name="rtlab-check")
    try:
        return background.run(coro, 20)
    finally:
        background.close()


def _float32(samples: Sequence[float], order: str = "<") -> bytes:
    return struct.pack(f"{order}{len(samples)}f", *samples)


class _Raised(Exception):
    """The learner's function raised: the message says which, and with what."""


def _call(name: str, function: Callable[[Any], Any], argument: Any, when: str) -> Any:
    """``function(argument)``; what it raises becomes a :class:`_Raised` that says where."""
    try:
        result = call_within(lambda: function(argument), LEARNER_TIMEOUT)
    except NotImplementedError:
        raise
    except (Exception, SystemExit) as error:
        shown = f"struct.{describe(error)}" if isinstance(error, struct.error) else describe(error)
        raise _Raised(f"{name}{when} raised {shown}") from None
    if result is STILL_RUNNING:
        raise _Raised(
            f"{name}{when} did not return within {LEARNER_TIMEOUT:g} s: does a loop never end?"
        )
    return result


def _size_hint(raw: bytes, samples: Sequence[float]) -> str:
    """Why ``raw`` has the wrong length: the packing it most likely is."""
    if raw == base64.b64encode(_float32(samples)):
        return "that is base64 text: a binary frame carries the bytes as they are, 4 per sample"
    with contextlib.suppress(ValueError):
        json.loads(raw)
        return "these bytes are text (JSON): pack each number with struct.pack, 4 bytes each"
    sizes = {8: "'d' is float64 (8 bytes)", 2: "'e' is float16 (2 bytes)"}
    per_sample = len(raw) / len(samples) if samples else 0
    if per_sample in sizes:
        return f"{sizes[int(per_sample)]}; 'f' is float32, 4 bytes"
    return SAMPLES_HINT


def _packed_problem(raw: Any, samples: Sequence[float], when: str) -> Problem | None:
    """What is wrong with ``pack_samples``'s answer ``raw``, if anything."""
    if raw is None:
        return f"pack_samples{when} returned None: did you forget `return`?"
    if not isinstance(raw, bytes | bytearray | memoryview):
        return f"pack_samples{when} must return bytes, got {type(raw).__name__}"
    raw = bytes(raw)
    if len(raw) != 4 * len(samples):
        return (
            f"pack_samples{when}: {len(samples)} samples packed into {len(raw)} bytes; "
            f"float32 takes 4 bytes each: {4 * len(samples)}",
            _size_hint(raw, samples),
        )
    if raw != _float32(samples):
        if raw == _float32(samples, ">"):
            return (
                f"pack_samples{when}: the bytes are big-endian",
                "the format asks for little-endian: start it with '<'",
            )
        return f"pack_samples{when}: the bytes are not the samples as float32, in order"
    return None


def _same(got: Any, value: float) -> bool:
    """Equal, NaN included (garbage read as float32 may be NaN)."""
    if not isinstance(got, numbers.Real):
        return False
    return got == value or (math.isnan(got) and math.isnan(value))


def _read_back_problem(back: Any, samples: Sequence[float], when: str) -> Problem | None:
    """What is wrong with ``unpack_samples``'s answer ``back``, if anything."""
    if back is None:
        return f"unpack_samples{when} returned None: did you forget `return`?"
    if isinstance(back, str | bytes | bytearray) or not hasattr(back, "__len__"):
        return f"unpack_samples{when} should give a list of floats, got {type(back).__name__}"
    if len(back) != len(samples):
        return (
            f"unpack_samples{when} should give {len(samples)} floats, got "
            f"{type(back).__name__} of {len(back)}",
            "each float32 takes 4 bytes: the bytes hold len(raw) // 4 samples",
        )
    for i, (got, sent) in enumerate(zip(back, samples, strict=True)):
        if not isinstance(got, numbers.Real) or not math.isclose(got, sent, rel_tol=1e-6):
            problem = f"unpack_samples{when}: sample {i}: sent {sent!r}, read back {got!r}"
            swapped = struct.unpack(f">{len(samples)}f", _float32(samples))
            if all(_same(a, b) for a, b in zip(back, swapped, strict=True)):
                return problem, "read with the format you packed with: '<', little-endian"
            return problem
    return None


def check_binary_samples(
    pack_samples: Callable[[Sequence[float]], bytes],
    unpack_samples: Callable[[bytes], Sequence[float]],
) -> Verdict:
    """Grade ``pack_samples`` and ``unpack_samples``: 1,000 sensor readings sent for real
    through a lab server, then three samples, to be sure any number works."""
    samples = sensor_samples()

    def attempt() -> Problem | None:
        if not callable(pack_samples) or not callable(unpack_samples):
            return "expected two functions: pack_samples(samples) and unpack_samples(raw)"
        few = ""  # set once the many samples passed: a failure is then about the length
        try:
            raw = _call("pack_samples", pack_samples, list(samples), "")
            problem = _packed_problem(raw, samples, "")
            if problem is not None:
                return problem
            arrived = _run(_through_a_server(bytes(raw)))
            if arrived != bytes(raw):
                return "the bytes that arrived differ from the bytes sent"
            back = _call("unpack_samples", unpack_samples, arrived, "")
            problem = _read_back_problem(back, samples, "")
            if problem is not None:
                return problem
            few = f" with {len(FEW)} samples"
            raw = _call("pack_samples", pack_samples, list(FEW), few)
            problem = _packed_problem(raw, FEW, few)
            if problem is None:
                back = _call("unpack_samples", unpack_samples, bytes(raw), few)
                problem = _read_back_problem(back, FEW, few)
        except _Raised as raised:
            return str(raised), ANY_LENGTH if few else SAMPLES_HINT
        if problem is None or isinstance(problem, tuple):
            return problem
        return problem, ANY_LENGTH

    return grade("binary samples", attempt, SAMPLES_HINT, SAMPLES_NUDGE)


# -- exercise 2: a compression threshold ----------------------------------------------


def deflated_size(message: bytes) -> int:
    """The bytes permessage-deflate puts on the wire for ``message`` alone (a fresh context,
    the server's settings)."""
    compressor = zlib.compressobj(wbits=-WINDOW_BITS, **COMPRESS_SETTINGS)
    data = compressor.compress(message) + compressor.flush(zlib.Z_SYNC_FLUSH)
    return len(data) - 4  # the sync flush's 00 00 ff ff is not sent


def worth_compressing(message: bytes) -> bool:
    return deflated_size(message) <= (1 - WORTH) * len(message)


def message_mix(
    seed: int = 6, histories: Sequence[int] = (3, 8, 20, 50), pictures: int = 0
) -> list[bytes]:
    """A day of chat traffic: short lines, join-room acks with ``histories`` messages of
    history, presence lists, and ``pictures`` lines carrying a thumbnail in base64 (random
    bytes: deflate cannot halve them)."""
    rng = random.Random(seed)
    words = [
        "hello",
        "there",
        "ok",
        "yes",
        "no",
        "lunch",
        "soon",
        "see",
        "you",
        "the",
        "lab",
        "is",
        "open",
        "today",
        "who",
        "is",
        "in",
    ]
    users = [f"user{n}" for n in range(40)]

    def line(i: int) -> dict[str, object]:
        text = " ".join(rng.choice(words) for _ in range(rng.randint(1, 12)))
        return {
            "userId": rng.choice(users),
            "roomId": "lobby",
            "message": text,
            "timestamp": f"2026-11-24T17:{i % 60:02d}:{rng.randint(0, 59):02d}.{i % 1000:03d}Z",
            "seq": i,
        }

    mix = []
    for i in range(30):
        mix.append({"event": "receive-message", "data": line(i), "ns": "/"})
    for i in range(pictures):
        thumbnail = base64.b64encode(rng.randbytes(rng.randint(300, 600))).decode()
        mix.append({"event": "receive-message", "data": {**line(i), "image": thumbnail}})
    for n in histories:
        history = [line(i) for i in range(n)]
        mix.append({"ack": n, "data": {"roomId": "lobby", "history": history, "seq": n}})
    for n in (1, 2):
        mix.append({"event": "typing", "data": {"roomId": "lobby", "userId": users[n]}})
    mix.append({"ack": 1, "data": {"presence": [{"userId": u, "online": True} for u in users]}})
    return [json.dumps(m, separators=(",", ":")).encode() for m in mix]


def thresholds_that_work(messages: Sequence[bytes]) -> range:
    """Every threshold that compresses exactly the messages worth compressing."""
    worth = [len(m) for m in messages if worth_compressing(m)]
    not_worth = [len(m) for m in messages if not worth_compressing(m)]
    low = max(not_worth, default=-1) + 1
    high = min(worth, default=2**31)
    return range(low, high + 1)


def days() -> list[list[bytes]]:
    """The mixes the check grades on: the lesson's, another day's, and a day with pictures,
    whose thresholds that work share none with the others' (no constant passes)."""
    return [message_mix(6), message_mix(8), message_mix(7, (10, 25, 50), pictures=6)]


def _whole(threshold: object) -> int | None:
    """``threshold`` as an int of bytes (``426``, ``numpy.int64(426)``, ``426.0``), or None."""
    if isinstance(threshold, bool):
        return None
    if isinstance(threshold, numbers.Integral):
        return int(threshold)
    if isinstance(threshold, float) and threshold.is_integer():
        return int(threshold)
    return None


def _threshold_problem(chosen: object, mix: Sequence[bytes]) -> str | None:
    threshold = _whole(chosen)
    if threshold is None:
        return f"expected a whole number of bytes, got {chosen!r:.40}"
    if not thresholds_that_work(mix):
        return "no threshold compresses exactly the right messages in this mix"
    wasted = [m for m in mix if len(m) >= threshold and not worth_compressing(m)]
    missed = [m for m in mix if len(m) < threshold and worth_compressing(m)]
    if wasted:
        small = min(wasted, key=len)
        saved = 1 - deflated_size(small) / len(small)
        return (
            f"{threshold} compresses a {len(small)}-byte message that deflate makes only "
            f"{saved:.0%} smaller"
        )
    if missed:
        big = max(missed, key=len)
        saved = 1 - deflated_size(big) / len(big)
        return (
            f"{threshold} leaves a {len(big)}-byte message uncompressed that deflate "
            f"makes {saved:.0%} smaller"
        )
    return None


def check_threshold(
    choose_threshold: Callable[[list[bytes]], int],
    mixes: Sequence[Sequence[bytes]] | None = None,
) -> Verdict:
    """Grade ``choose_threshold(messages) -> int`` on each mix (default: :func:`days`):
    the threshold must compress exactly the messages worth it."""
    chosen = days() if mixes is None else mixes

    def attempt() -> str | None:
        if not callable(choose_threshold):
            return f"expected a function choose_threshold(messages), got {choose_threshold!r:.40}"
        for number, mix in enumerate(chosen, 1):
            threshold = call_within(lambda mix=mix: choose_threshold(list(mix)), LEARNER_TIMEOUT)
            if threshold is STILL_RUNNING:
                return (
                    f"mix {number}: choose_threshold did not return within "
                    f"{LEARNER_TIMEOUT:g} s: does a loop never end?"
                )
            if threshold is None:
                return "choose_threshold returned None: did you forget `return`?"
            problem = _threshold_problem(threshold, mix)
            if problem is not None:
                return f"mix {number}: {problem}"
        return None

    return grade("choose_threshold", attempt, THRESHOLD_HINT, THRESHOLD_NUDGE)
