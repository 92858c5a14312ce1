"""The checks of lesson 07: binary samples sent for real, and a compression threshold."""

from __future__ import annotations

import json
import struct
import zlib

from rtlab.checks import Verdict
from rtlab.checks.performance import (
    WORTH,
    check_binary_samples,
    check_threshold,
    deflated_size,
    message_mix,
    thresholds_that_work,
)


def pack(samples):
    return struct.pack(f"<{len(samples)}f", *samples)


def unpack(raw):
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))


# -- exercise 1 -------------------------------------------------------------------------


def test_correct_samples_pass():
    verdict = check_binary_samples(pack, unpack)
    assert isinstance(verdict, Verdict)
    assert verdict.passed
    assert str(verdict) == "✅ binary samples: correct"


def test_an_array_module_answer_passes_too():
    import array
    import sys

    def pack_array(samples):
        values = array.array("f", samples)
        if sys.byteorder == "big":
            values.byteswap()
        return values.tobytes()

    assert check_binary_samples(pack_array, unpack)


def test_wrong_samples_fail_with_a_reason():
    cases = [
        (lambda s: json.dumps(s), unpack, "must return bytes, got str"),
        (lambda s: json.dumps(s).encode(), unpack, "float32 takes 4 bytes each"),
        (lambda s: struct.pack(f"<{len(s)}d", *s), unpack, "into 8000 bytes"),
        (lambda s: struct.pack(f">{len(s)}f", *s), unpack, "big-endian"),
        (lambda s: pack(s[::-1]), unpack, "are not the samples as float32"),
        (lambda s: None, unpack, "returned None"),
        (pack, lambda raw: struct.unpack(f"<{len(raw) // 4}f", raw), "a list of 1000"),
        (pack, lambda raw: unpack(raw)[:-1], "a list of 1000 floats, got list of 999"),
        (pack, lambda raw: unpack(raw[::-1]), "sample 0"),
    ]
    for packer, unpacker, words in cases:
        verdict = check_binary_samples(packer, unpacker)
        assert not verdict.passed, words
        assert words in str(verdict), (words, str(verdict))
        assert "Hint" in str(verdict)


def test_samples_not_done_yet():
    def learner_copy(samples):
        raise NotImplementedError  # your code here

    verdict = check_binary_samples(learner_copy, unpack)
    assert not verdict.passed
    assert "not done yet" in str(verdict)


# -- exercise 2 -------------------------------------------------------------------------


def really_deflated(message: bytes) -> int:
    """What a permessage-deflate sender puts on the wire, independently computed."""
    compressor = zlib.compressobj(wbits=-12, memLevel=5)
    return len(compressor.compress(message) + compressor.flush(zlib.Z_SYNC_FLUSH)[:-4])


def test_the_mix_has_a_range_of_good_thresholds_computed_from_real_compression():
    mix = message_mix()
    works = thresholds_that_work(mix)
    assert len(works) > 50  # room to choose, not one magic number
    for message in mix:
        assert deflated_size(message) == really_deflated(message)
        worth = really_deflated(message) <= (1 - WORTH) * len(message)
        assert worth == (len(message) >= works.start)


def smallest_worth(messages):
    return min(len(m) for m in messages if really_deflated(m) <= len(m) / 2)


def test_good_thresholds_pass_and_bad_ones_fail():
    mix = message_mix()
    works = thresholds_that_work(mix)
    verdict = check_threshold(smallest_worth)
    assert verdict.passed
    assert str(verdict) == "✅ choose_threshold: correct"
    assert check_threshold(lambda m: thresholds_that_work(m).start)
    assert check_threshold(lambda m: thresholds_that_work(m).stop - 1)
    verdict = check_threshold(lambda m: 0)
    assert not verdict.passed
    assert "mix 1: 0 compresses a 61-byte message" in str(verdict)
    assert "Hint" in str(verdict)
    assert not check_threshold(lambda m: works.start - 1)
    verdict = check_threshold(lambda m: 1024)  # the server's default is not it for this mix
    assert not verdict.passed
    assert "uncompressed" in str(verdict)
    assert not check_threshold(lambda m: works.stop)
    assert "whole number" in str(check_threshold(lambda m: "400"))
    assert "whole number" in str(check_threshold(lambda m: True))
    assert "returned None" in str(check_threshold(lambda m: None))
    assert "expected a function" in str(check_threshold(426))


def test_a_threshold_hard_coded_for_one_mix_fails_on_the_other():
    first, second = (thresholds_that_work(message_mix(seed)) for seed in (6, 8))
    only_first = next(t for t in first if t not in second)
    verdict = check_threshold(lambda m: only_first)
    assert not verdict.passed
    assert "mix 2:" in str(verdict)


def test_the_threshold_follows_the_messages_given():
    chatty = [json.dumps({"message": "x" * n}).encode() for n in (10, 2000)]
    assert check_threshold(lambda m: 100, [chatty])  # the long repetitive one is worth it
    assert not check_threshold(lambda m: 5000, [chatty])
    noise = [bytes(range(256)) * 2, b"a" * 100]  # the small one compresses, the big one not
    verdict = check_threshold(lambda m: 100, [noise])
    assert not verdict.passed
    assert "no threshold" in str(verdict)


def test_threshold_not_done_yet():
    def learner_copy(messages):
        raise NotImplementedError  # your code here

    assert "not done yet" in str(check_threshold(learner_copy))
