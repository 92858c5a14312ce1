"""A log that never stops the server: lines go to their stream from a thread of their own.

``rtlab serve`` writes one line per connection to stderr. Written on the event loop, a
stream that does not take them (a terminal paused with Ctrl-S or by a selection, a pipe
nobody reads once its 64 KiB are full) stops the loop in the middle of a write, and with
it every student's connection. Here the loop only puts each line in a bounded queue; a
thread writes them out. Past ``size`` lines waiting, a line is dropped and counted, and
the count is written before the next line that gets through.
"""

from __future__ import annotations

import atexit
import logging
import logging.handlers
import queue
import threading
import time

LOG_QUEUE = 10_000  # lines waiting for their stream; past it, dropped and counted
DRAIN = 1.0  # seconds the lines still waiting at exit may take to be written


class LogWriter(logging.handlers.QueueHandler):
    """Hands each record to ``target`` (a ``StreamHandler``, say) on a thread of its own."""

    def __init__(self, target: logging.Handler, size: int = LOG_QUEUE) -> None:
        super().__init__(queue.Queue(size))
        self.target = target
        self.dropped = 0  # lines dropped in all, counted where they were logged
        self._told = 0  # of which the stream was told, counted by the writing thread
        threading.Thread(target=self._write, name="rtlab-log", daemon=True).start()
        atexit.register(self.drain)

    def enqueue(self, record: logging.LogRecord) -> None:
        try:
            self.queue.put_nowait(record)
        except queue.Full:
            self.dropped += 1

    def drain(self, timeout: float = DRAIN) -> bool:
        """Wait up to ``timeout`` seconds for the lines waiting to be written; whether
        they were (at exit: a stream that takes nothing does not hold the process)."""
        deadline = time.monotonic() + timeout
        while self.queue.unfinished_tasks:  # type: ignore[attr-defined]
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    def _write(self) -> None:
        while True:
            record = self.queue.get()
            dropped = self.dropped
            if dropped > self._told:
                note = f"{dropped - self._told} log lines dropped: their output was not read"
                self.target.handle(
                    logging.makeLogRecord(
                        {"levelno": logging.WARNING, "levelname": "WARNING", "msg": note}
                    )
                )
                self._told = dropped
            self.target.handle(record)
            self.queue.task_done()
