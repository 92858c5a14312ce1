"""A flood of connections cannot drown the lab server's log: past a burst, lines of one
kind are counted, and the count is told on a later line, so nothing goes unsaid."""

from __future__ import annotations

import asyncio
import logging
import re

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from rtlab.aio.log_flood import FloodFilter
from rtlab.aio.server import LabServer

REFUSED = "refused %d %s from %s: %s"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def logged() -> tuple[logging.Logger, list[str], Clock]:
    lines: list[str] = []
    logger = logging.Logger("flood-test")
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())  # type: ignore[method-assign]
    logger.addHandler(handler)
    clock = Clock()
    logger.addFilter(FloodFilter(rate=2, burst=3, every=10, clock=clock))
    return logger, lines, clock


def refuse(logger: logging.Logger, times: int) -> None:
    for _ in range(times):
        logger.info(REFUSED, 429, "/ws", "10.0.0.7", "too many")


def test_past_its_burst_a_kind_of_line_is_counted_and_the_count_told_on_the_next_of_its_kind(
    logged,
):
    logger, lines, clock = logged
    refuse(logger, 10)
    assert lines == ["refused 429 /ws from 10.0.0.7: too many"] * 3
    clock.now += 0.5  # one line's worth of tokens back
    refuse(logger, 1)
    assert lines[-1] == (
        'refused 429 /ws from 10.0.0.7: too many [7 more lines "refused … from …: …" not logged]'
    )
    refuse(logger, 1)  # none back yet: counted again
    assert len(lines) == 4


def test_other_kinds_pass_and_tell_a_count_at_most_every_few_seconds(logged):
    logger, lines, clock = logged
    refuse(logger, 5)
    logger.info("open #%d %s from %s", 1, "ann", "10.0.0.8")
    assert lines[-1] == "open #1 ann from 10.0.0.8"  # the count is 0 s old: not yet
    clock.now += 10
    logger.info("open #%d %s from %s", 2, "bob", "10.0.0.9")
    assert lines[-1] == 'open #2 bob from 10.0.0.9 [2 more lines "refused … from …: …" not logged]'
    logger.warning("closed the oldest of %d unfinished handshakes from %s", 64, "10.0.0.7")
    assert lines[-1] == "closed the oldest of 64 unfinished handshakes from 10.0.0.7"


def test_a_flood_of_refused_handshakes_leaves_the_server_log_readable_and_counted():
    async def main() -> tuple[list[str], int]:
        async with LabServer() as server:
            server.log_flood.every = 0  # tell the count on the next line of any kind
            for _ in range(300):  # no ?user=: 400, one line each
                with pytest.raises(InvalidStatus):
                    async with connect(f"ws://127.0.0.1:{server.port}/ws"):
                        pass
            async with connect(f"ws://127.0.0.1:{server.port}/ws?user=ann"):
                pass
            await asyncio.sleep(0.1)  # the close's line
            return list(server.log), server.log_flood.dropped

    log, dropped = asyncio.run(asyncio.wait_for(main(), 60))
    refused = [line for line in log if "refused 400 /ws" in line]
    told = [int(n) for line in log for n in re.findall(r"\[(\d+) more lines", line)]
    assert len(refused) < 300 and dropped > 0  # the burst and the refill passed, no more
    assert len(refused) + sum(told) == 300  # each refusal written or counted
    assert any(line.startswith("INFO open #") and "ann" in line for line in log)
