"""The room message's timestamp: JavaScript's ``toISOString()``, formatted cheaply."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from rtlab.aio import builtin_events


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def test_timestamp_writes_what_to_iso_string_writes_across_seconds(monkeypatch):
    # Within a second, across seconds, days and years, and on exact milliseconds.
    moments = [1_700_000_000.0, 1_700_000_000.0004, 1_700_000_000.999, 1_700_000_001.5]
    moments += [1_767_225_599.9995, 1_767_225_600.001, 951_782_400.25, 1_700_000_000.0]
    for moment in moments:
        monkeypatch.setattr(time, "time", lambda moment=moment: moment)
        assert builtin_events.timestamp() == iso(moment), moment


def test_timestamp_is_now():
    before = iso(time.time())
    stamp = builtin_events.timestamp()
    after = iso(time.time())
    assert before <= stamp <= after
