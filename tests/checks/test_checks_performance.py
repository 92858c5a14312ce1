"""The checks of lesson 08 pass right answers written in different ways, fail realistic
wrong ones with the message and hint the learner would see, and nudge a learner copy:
binary samples sent for real, and a compression threshold."""

from __future__ import annotations

import array
import base64
import json
import statistics
import struct
import sys
import time
import zlib

import numpy as np
import pytest

from rtlab.checks import Verdict, hint, performance
from rtlab.checks.performance import (
    WORTH,
    check_binary_samples,
    check_threshold,
    deflated_size,
    message_mix,
    thresholds_that_work,
)


def pack(samples):  # type: ignore[no-untyped-def]
    return struct.pack(f"<{len(samples)}f", *samples)


def unpack(raw):  # type: ignore[no-untyped-def]
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))


# -- exercise 1 -------------------------------------------------------------------------


def pack_array(samples):  # type: ignore[no-untyped-def]
    values = array.array("f", samples)
    if sys.byteorder == "big":
        values.byteswap()
    return memoryview(values)  # bytes-like, not bytes


def pack_numpy(samples):  # type: ignore[no-untyped-def]
    return np.asarray(samples, dtype="<f4").tobytes()


def unpack_numpy(raw):  # type: ignore[no-untyped-def]
    return np.frombuffer(raw, dtype="<f4")  # an array, not a list: the same floats


def unpack_iter(raw):  # type: ignore[no-untyped-def]
    return [value for (value,) in struct.iter_unpack("<f", raw)]


def unpack_tuple(raw):  # type: ignore[no-untyped-def]
    return struct.unpack(f"<{len(raw) // 4}f", raw)


@pytest.mark.parametrize(
    ("packer", "unpacker"),
    [(pack, unpack), (pack_array, unpack_iter), (pack_numpy, unpack_numpy), (pack, unpack_tuple)],
)
def test_right_samples_pass(packer, unpacker) -> None:  # type: ignore[no-untyped-def]
    verdict = check_binary_samples(packer, unpacker)
    assert isinstance(verdict, Verdict)
    assert verdict.passed, verdict
    assert str(verdict) == "✅ binary samples: correct"


def pack_1000(samples):  # type: ignore[no-untyped-def]
    return struct.pack("<1000f", *samples)  # as section 1 packs the readings


def unpack_1000(raw):  # type: ignore[no-untyped-def]
    return list(struct.unpack("<1000f", raw))


FLOAT64 = "'d' is float64 (8 bytes); 'f' is float32, 4 bytes"
WRONG_SAMPLES = [
    (
        "JSON text",
        lambda s: json.dumps(s),
        unpack,
        "pack_samples must return bytes, got str",
        performance.SAMPLES_HINT,
    ),
    (
        "JSON bytes",
        lambda s: json.dumps(s).encode(),
        unpack,
        "pack_samples: 1000 samples packed into 19658 bytes; float32 takes 4 bytes each: 4000",
        "these bytes are text (JSON): pack each number with struct.pack, 4 bytes each",
    ),
    (
        "float64",
        lambda s: struct.pack(f"<{len(s)}d", *s),
        unpack,
        "pack_samples: 1000 samples packed into 8000 bytes; float32 takes 4 bytes each: 4000",
        FLOAT64,
    ),
    (
        "float16",
        lambda s: struct.pack(f"<{len(s)}e", *s),
        unpack,
        "pack_samples: 1000 samples packed into 2000 bytes; float32 takes 4 bytes each: 4000",
        "'e' is float16 (2 bytes); 'f' is float32, 4 bytes",
    ),
    (
        "base64",
        lambda s: base64.b64encode(pack(s)),
        unpack,
        "pack_samples: 1000 samples packed into 5336 bytes; float32 takes 4 bytes each: 4000",
        "that is base64 text: a binary frame carries the bytes as they are, 4 per sample",
    ),
    (
        "big-endian",
        lambda s: struct.pack(f">{len(s)}f", *s),
        unpack,
        "pack_samples: the bytes are big-endian",
        "the format asks for little-endian: start it with '<'",
    ),
    (
        "reversed",
        lambda s: pack(s[::-1]),
        unpack,
        "pack_samples: the bytes are not the samples as float32, in order",
        performance.SAMPLES_HINT,
    ),
    (
        "rounded",
        lambda s: pack([round(x, 1) for x in s]),
        unpack,
        "pack_samples: the bytes are not the samples as float32, in order",
        performance.SAMPLES_HINT,
    ),
    (
        "no return",
        lambda s: None,
        unpack,
        "pack_samples returned None: did you forget `return`?",
        performance.SAMPLES_HINT,
    ),
    (
        "a pack that fails",
        lambda s: struct.pack("<f", s),
        unpack,
        "pack_samples raised struct.error: required argument is not a float",
        performance.SAMPLES_HINT,
    ),
    (
        "pack for 1000 only",
        pack_1000,
        unpack,
        "pack_samples with 3 samples raised struct.error: ",
        performance.ANY_LENGTH,
    ),
    (
        "unpack for 1000 only",
        pack,
        unpack_1000,
        "unpack_samples with 3 samples raised struct.error: ",
        performance.ANY_LENGTH,
    ),
    (
        "unpack as float64",
        pack,
        lambda raw: list(struct.unpack(f"<{len(raw) // 8}d", raw)),
        "unpack_samples should give 1000 floats, got list of 500",
        "each float32 takes 4 bytes: the bytes hold len(raw) // 4 samples",
    ),
    (
        "unpack one short",
        pack,
        lambda raw: unpack(raw)[:-1],
        "unpack_samples should give 1000 floats, got list of 999",
        "each float32 takes 4 bytes: the bytes hold len(raw) // 4 samples",
    ),
    (
        "unpack big-endian",
        pack,
        lambda raw: list(struct.unpack(f">{len(raw) // 4}f", raw)),
        "unpack_samples: sample 0: sent 20.149902677940744, read back",
        "read with the format you packed with: '<', little-endian",
    ),
    (
        "unpack gives the bytes back",
        pack,
        lambda raw: raw,
        "unpack_samples should give a list of floats, got bytes",
        performance.SAMPLES_HINT,
    ),
    (
        "unpack without return",
        pack,
        lambda raw: None,
        "unpack_samples returned None: did you forget `return`?",
        performance.SAMPLES_HINT,
    ),
    (
        "unpack that exits",
        pack,
        lambda raw: sys.exit(2),
        "unpack_samples raised SystemExit: 2",
        performance.SAMPLES_HINT,
    ),
]


@pytest.mark.parametrize(
    ("packer", "unpacker", "message", "expected_hint"),
    [w[1:] for w in WRONG_SAMPLES],
    ids=[w[0] for w in WRONG_SAMPLES],
)
def test_wrong_samples_fail_with_their_hint(packer, unpacker, message, expected_hint) -> None:  # type: ignore[no-untyped-def]
    verdict = check_binary_samples(packer, unpacker)
    assert not verdict.passed
    assert verdict.message.startswith(f"binary samples: {message}"), verdict.message
    assert verdict.hint == expected_hint


def test_samples_endless_loop_is_a_cross(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(performance, "LEARNER_TIMEOUT", 0.2)

    def slow_pack(samples):  # type: ignore[no-untyped-def]
        time.sleep(0.5)  # stands for a loop that never ends (which would keep a core busy)

    verdict = check_binary_samples(slow_pack, unpack)
    assert verdict.message == (
        "binary samples: pack_samples did not return within 0.2 s: does a loop never end?"
    )
    assert verdict.hint == performance.SAMPLES_HINT


def test_samples_not_functions() -> None:
    verdict = check_binary_samples(b"\x00", unpack)  # type: ignore[arg-type]
    assert verdict.message == (
        "binary samples: expected two functions: pack_samples(samples) and unpack_samples(raw)"
    )


def test_samples_not_done_yet_gets_the_nudge_then_hint_gives_the_recipe() -> None:
    def learner_copy(samples):  # type: ignore[no-untyped-def]
        raise NotImplementedError  # your code here

    verdict = check_binary_samples(pack, learner_copy)
    assert not verdict.passed
    assert verdict.message == "binary samples: not done yet"
    assert verdict.hint == f"{performance.SAMPLES_NUDGE} (rtlab.hint() shows the recipe)"
    assert hint().recipe == performance.SAMPLES_HINT


# -- exercise 2 -------------------------------------------------------------------------


def really_deflated(message: bytes) -> int:
    """What a permessage-deflate sender puts on the wire, independently computed."""
    compressor = zlib.compressobj(wbits=-12, memLevel=5)
    return len(compressor.compress(message) + compressor.flush(zlib.Z_SYNC_FLUSH)[:-4])


def test_the_mix_has_a_range_of_good_thresholds_computed_from_real_compression() -> None:
    mix = message_mix()
    works = thresholds_that_work(mix)
    assert len(works) > 50  # room to choose, not one magic number
    for message in mix:
        assert deflated_size(message) == really_deflated(message)
        worth = really_deflated(message) <= (1 - WORTH) * len(message)
        assert worth == (len(message) >= works.start)


def smallest_worth(messages):  # type: ignore[no-untyped-def]
    return min(len(m) for m in messages if really_deflated(m) <= len(m) / 2)


def above_the_largest_not_worth(messages):  # type: ignore[no-untyped-def]
    return max(len(m) for m in messages if really_deflated(m) > len(m) / 2) + 1


def with_zlib_compress(messages):  # type: ignore[no-untyped-def]
    """zlib's own header and checksum, level 9: a few bytes off, the same idea."""
    return min(len(m) for m in messages if len(zlib.compress(m, 9)) <= len(m) / 2)


def as_numpy(messages):  # type: ignore[no-untyped-def]
    sizes = np.array([len(m) for m in messages])
    worth = np.array([really_deflated(m) <= len(m) / 2 for m in messages])
    return sizes[worth].min()  # a numpy integer


def as_float(messages):  # type: ignore[no-untyped-def]
    return float(smallest_worth(messages))


@pytest.mark.parametrize(
    "choose",
    [smallest_worth, above_the_largest_not_worth, with_zlib_compress, as_numpy, as_float],
)
def test_right_thresholds_pass(choose) -> None:  # type: ignore[no-untyped-def]
    verdict = check_threshold(choose)
    assert verdict.passed, verdict
    assert str(verdict) == "✅ choose_threshold: correct"


def one_compressor_for_all(messages):  # type: ignore[no-untyped-def]
    """Context takeover: each message measured after all the ones before it."""
    compressor = zlib.compressobj(wbits=-12)
    sizes = [
        len(compressor.compress(m) + compressor.flush(zlib.Z_SYNC_FLUSH)) - 4 for m in messages
    ]
    return min(len(m) for m, n in zip(messages, sizes, strict=True) if n <= len(m) / 2)


def any_saving(messages):  # type: ignore[no-untyped-def]
    return min(len(m) for m in messages if really_deflated(m) < len(m))


def largest_not_worth(messages):  # type: ignore[no-untyped-def]
    return max(len(m) for m in messages if really_deflated(m) > len(m) / 2)  # one too low


def largest_worth(messages):  # type: ignore[no-untyped-def]
    return max(len(m) for m in messages if really_deflated(m) <= len(m) / 2)


HARD_CODED = next(
    t for t in thresholds_that_work(message_mix(6)) if t not in thresholds_that_work(message_mix(8))
)
WRONG_THRESHOLDS = [
    (
        "one compressor",
        one_compressor_for_all,
        "mix 1: 61 compresses a 61-byte message that deflate makes only 10% smaller",
    ),
    (
        "any saving",
        any_saving,
        "mix 1: 61 compresses a 61-byte message that deflate makes only 10% smaller",
    ),
    (
        "off by one",
        largest_not_worth,
        "mix 1: 189 compresses a 189-byte message that deflate makes only 25% smaller",
    ),
    (
        "the largest worth it",
        largest_worth,
        "mix 1: 6142 leaves a 2502-byte message uncompressed that deflate makes 76% smaller",
    ),
    (
        "the median size",
        lambda m: int(statistics.median(map(len, m))),
        "mix 1: 170 compresses a 170-byte message that deflate makes only 20% smaller",
    ),
    (
        "the mean size",
        lambda m: sum(map(len, m)) // len(m),
        "mix 1: 450 leaves a 426-byte message uncompressed that deflate makes 52% smaller",
    ),
    (
        "the tutorial's 1024",
        lambda m: 1024,
        "mix 1: 1024 leaves a 426-byte message uncompressed that deflate makes",
    ),
    ("compress everything", lambda m: 0, "mix 1: 0 compresses a 61-byte message"),
    ("hard-coded for one day", lambda m: HARD_CODED, "mix 2: "),
    ("a round number", lambda m: 256, "mix 3: 256 compresses a 688-byte message"),
    ("a text", lambda m: "400", "mix 1: expected a whole number of bytes, got '400'"),
    ("a bool", lambda m: True, "mix 1: expected a whole number of bytes, got True"),
    ("half a byte", lambda m: 425.5, "mix 1: expected a whole number of bytes, got 425.5"),
    ("no return", lambda m: None, "choose_threshold returned None: did you forget `return`?"),
]


@pytest.mark.parametrize(
    ("choose", "message"), [w[1:] for w in WRONG_THRESHOLDS], ids=[w[0] for w in WRONG_THRESHOLDS]
)
def test_wrong_thresholds_fail_with_the_recipe(choose, message) -> None:  # type: ignore[no-untyped-def]
    verdict = check_threshold(choose)
    assert not verdict.passed
    assert verdict.message.startswith(f"choose_threshold: {message}"), verdict.message
    assert verdict.hint == performance.THRESHOLD_HINT


def test_no_one_threshold_works_every_day() -> None:
    works = [set(thresholds_that_work(mix)) for mix in performance.days()]
    assert all(works)
    assert not set.intersection(*works)  # a constant, however well guessed, fails a day


def test_threshold_endless_loop_is_a_cross(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(performance, "LEARNER_TIMEOUT", 0.2)
    verdict = check_threshold(lambda m: time.sleep(0.5))
    assert verdict.message == (
        "choose_threshold: mix 1: choose_threshold did not return within 0.2 s: "
        "does a loop never end?"
    )


def test_threshold_crash_and_non_function() -> None:
    verdict = check_threshold(lambda m: m[100])
    assert verdict.message == "choose_threshold: raised IndexError: list index out of range"
    assert "expected a function" in str(check_threshold(426))  # type: ignore[arg-type]


def test_the_threshold_follows_the_messages_given() -> None:
    chatty = [json.dumps({"message": "x" * n}).encode() for n in (10, 2000)]
    assert check_threshold(lambda m: 100, [chatty])  # the long repetitive one is worth it
    assert not check_threshold(lambda m: 5000, [chatty])
    noise = [bytes(range(256)) * 2, b"a" * 100]  # the small one compresses, the big one not
    verdict = check_threshold(lambda m: 100, [noise])
    assert not verdict.passed
    assert "no threshold" in str(verdict)


def test_threshold_not_done_yet_gets_the_nudge() -> None:
    def learner_copy(messages):  # type: ignore[no-untyped-def]
        raise NotImplementedError  # your code here

    verdict = check_threshold(learner_copy)
    assert verdict.message == "choose_threshold: not done yet"
    assert verdict.hint == f"{performance.THRESHOLD_NUDGE} (rtlab.hint() shows the recipe)"
