"""A log that a flood cannot drown: past a burst, lines of one kind are counted, not kept.

The lab server logs a line for every connection opened, closed or refused. A student's
script that reconnects in a loop, or hammers the door with refused handshakes, makes
thousands a second: they scroll everything else off the instructor's terminal and push
everything else out of the lab's last lines (``LabServer.log``). :class:`FloodFilter`
lets each kind of line (its level and format string, before the values go in) pass in
bursts of ``burst``, then ``rate`` a second. The rest are counted, and the count is told
on the next line that passes (at once on a line of the same kind, at most every
``every`` seconds on another), or as the server stops:
``[1234 more lines "refused … from …: …" not logged]``.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable

from rtlab.core.ratelimit import TokenBucket

RATE = 10.0  # lines of one kind a second, on average...
BURST = 200  # ...and at once: a class of 30 opening its connections together
EVERY = 10.0  # seconds between two counts told on lines of another kind
KINDS = 256  # kinds of line followed at once; past it, those that filled up are forgotten
# "%d", "%.1f", "%r"... and those side by side ("%d %s"): one ellipsis.
_ONE = r"%[-#0 +]*(?:\d+|\*)?(?:\.\d+)?[a-zA-Z]"
_VALUES = re.compile(f"{_ONE}(?: {_ONE})*")


class FloodFilter(logging.Filter):
    """Passes a kind of line in bursts, counts the rest, and tells the count later."""

    def __init__(
        self,
        rate: float = RATE,
        burst: int = BURST,
        every: float = EVERY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.buckets = TokenBucket(rate, burst)
        self.clock = clock
        self.every = every
        self.dropped = 0  # lines not logged in all
        # Kind -> lines not logged since its count was last told, and when that was.
        self._held: dict[str, tuple[int, float]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        now = self.clock()
        kind = f"{record.levelname} {record.msg}"
        if not self.buckets.check(kind, now).allowed:
            count, told = self._held.get(kind, (0, now))
            self._held[kind] = (count + 1, told)
            self.dropped += 1
            return False
        if len(self.buckets) > KINDS:
            self.buckets.forget_idle(now)
        due = [k for k, (_, told) in self._held.items() if k == kind or now - told >= self.every]
        if due:
            record.msg = " ".join([record.getMessage(), *self._told(due)])
            record.args = None
        return True

    def untold(self) -> list[str]:
        """The counts not told yet, now told (a server stopping logs them)."""
        return self._told(list(self._held))

    def _told(self, kinds: list[str]) -> list[str]:
        return [f'[{self._held.pop(k)[0]} more lines "{_shown(k)}" not logged]' for k in kinds]


def _shown(kind: str) -> str:
    """A kind of line as a person reads it: its format string, each value an ellipsis."""
    return _VALUES.sub("…", kind.partition(" ")[2])
