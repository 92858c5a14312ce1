"""Checks for lesson 07, performance: binary attachments and a compression threshold.

Exercise 1: ``pack_samples(samples) -> bytes`` packs float samples as little-endian
float32 (4 bytes each), ``unpack_samples(raw) -> list[float]`` reads them back. The
check sends the packed bytes through a real lab server to another client, in a
binary frame, and verifies they arrive intact and smaller than the JSON form.

Exercise 2: a threshold for permessage-deflate, chosen for a given mix of messages:
compress every message that deflate makes at least ``WORTH`` smaller, and leave the
others as they are. The check compresses each message for real to find which
thresholds do that.
"""

from __future__ import annotations

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
from rtlab.checks import Verdict, grade
from rtlab.core.envelope import encode_event
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

SAMPLES_HINT = (
    "struct.pack(f'<{len(samples)}f', *samples) gives 4 bytes per sample, little-endian; "
    "struct.unpack reads them back, and list(...) makes the tuple a list"
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


def check_binary_samples(
    pack_samples: Callable[[Sequence[float]], bytes],
    unpack_samples: Callable[[bytes], list[float]],
) -> Verdict:
    """Grade ``pack_samples`` and ``unpack_samples`` with 1,000 sensor readings, sent for real."""
    samples = sensor_samples()
    expected = struct.pack(f"<{len(samples)}f", *samples)

    def attempt() -> str | tuple[str, str] | None:
        if not callable(pack_samples) or not callable(unpack_samples):
            return "expected two functions: pack_samples(samples) and unpack_samples(raw)"
        raw = pack_samples(samples)
        if raw is None:
            return "pack_samples returned None: did you forget `return`?"
        if not isinstance(raw, bytes | bytearray):
            return f"pack_samples must return bytes, got {type(raw).__name__}"
        raw = bytes(raw)
        if len(raw) != 4 * len(samples):
            return (
                f"{len(samples)} samples packed into {len(raw)} bytes; float32 takes 4 bytes "
                f"each: {4 * len(samples)}",
                "'f' is float32 (4 bytes), 'd' is float64 (8 bytes)",
            )
        if raw != expected:
            if raw == struct.pack(f">{len(samples)}f", *samples):
                return "the bytes are big-endian; the format asks for little-endian ('<')"
            return "the bytes are not the samples as float32: compare with struct.pack"
        arrived = _run(_through_a_server(raw))
        if arrived != raw:
            return "the bytes that arrived differ from the bytes sent"
        back = unpack_samples(arrived)
        if not isinstance(back, list) or len(back) != len(samples):
            size = len(back) if isinstance(back, Sequence) else "?"
            return (
                f"unpack_samples should give a list of {len(samples)} floats, "
                f"got {type(back).__name__} of {size}"
            )
        for i, (got, sent) in enumerate(zip(back, samples, strict=True)):
            if not isinstance(got, numbers.Real) or not math.isclose(got, sent, rel_tol=1e-6):
                return f"sample {i}: sent {sent!r}, read back {got!r}"
        binary = len(encode_event("samples", {"raw": raw}))
        text = len(encode_event("samples", {"raw": samples}).encode())
        if binary >= text:
            return f"the binary frame ({binary} B) is not smaller than the JSON one ({text} B)"
        return None

    return grade("binary samples", attempt, SAMPLES_HINT)


# -- exercise 2: a compression threshold ----------------------------------------------


def deflated_size(message: bytes) -> int:
    """The bytes permessage-deflate puts on the wire for ``message`` alone (a fresh context,
    the server's settings)."""
    compressor = zlib.compressobj(wbits=-WINDOW_BITS, **COMPRESS_SETTINGS)
    data = compressor.compress(message) + compressor.flush(zlib.Z_SYNC_FLUSH)
    return len(data) - 4  # the sync flush's 00 00 ff ff is not sent


def worth_compressing(message: bytes) -> bool:
    return deflated_size(message) <= (1 - WORTH) * len(message)


def message_mix(seed: int = 6) -> list[bytes]:
    """A day of chat traffic: short lines, join-room acks with history, and presence lists."""
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
    for n in (3, 8, 20, 50):
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


MIX_SEEDS = (6, 8)  # the lesson's mix, and another day's


def _threshold_problem(threshold: object, mix: Sequence[bytes]) -> str | None:
    if isinstance(threshold, bool) or not isinstance(threshold, int):
        return f"expected a whole number of bytes, got {threshold!r:.40}"
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
    """Grade ``choose_threshold(messages) -> int`` on each mix (default: two days of
    :func:`message_mix`): the threshold must compress exactly the messages worth it."""
    chosen = [message_mix(seed) for seed in MIX_SEEDS] if mixes is None else mixes

    def attempt() -> str | None:
        if not callable(choose_threshold):
            return f"expected a function choose_threshold(messages), got {choose_threshold!r:.40}"
        for number, mix in enumerate(chosen, 1):
            threshold = choose_threshold(list(mix))
            if threshold is None:
                return "choose_threshold returned None: did you forget `return`?"
            problem = _threshold_problem(threshold, mix)
            if problem is not None:
                return f"mix {number}: {problem}"
        return None

    return grade("choose_threshold", attempt, THRESHOLD_HINT)
