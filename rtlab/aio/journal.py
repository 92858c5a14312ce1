"""Room history on disk: an append-only JSON-lines file that survives a server restart.

Durable before visible: the lab numbers a room message, :meth:`Journal.append` writes
its line (one write, in the operating system's hands when it returns), and only then
is the message kept in memory and delivered. A write that fails (disk full, file too
large, an I/O error) raises :class:`JournalError`: the sender is refused, nobody gets
the message, it is never replayed, and the file is cut back to its last whole line, so
the ``seq`` it would have had goes to the next message as if it had never been taken.
The failure is logged once, and its end once. A server killed at any moment restarts
with every message it delivered and their ``mid``\\ s (to recognise resends); a power
cut may lose the last ones (no fsync per message).

Lines: a message ``{"ns", "room", "seq", "time", "payload", "user", "mid"}``; a room's
last number whose messages are gone ``{"ns", "room", "last"}``; a numbering floor
``{"floor", "last"}``. With those two, numbers never repeat in a room after a
restart, even for rooms whose messages or whose number were forgotten
(rtlab.core.history explains the floors). Both are bounded: at most ``2 * rooms``
marks and :data:`~rtlab.core.history.FLOORS` floors.

Bounded on disk, compacted while running: once what was appended since the last
compaction passes what that compaction wrote (and ``min_compaction`` bytes), the file
is rewritten to what the history keeps. The snapshot is a list of references taken
on the event loop; a thread encodes it to a temporary file and fsyncs it while appends
go on to the old file; then the thread copies what was appended meanwhile from the old
file to the new one, and, on the loop in one step, the last of it is copied and the
temporary file replaces the old one. So the file stays under about ``2 x what the
history keeps + min_compaction`` plus what arrives during one compaction, however long
a slow disk makes it, none of which is held in memory, and others wait only for the
snapshot (tests/aio/test_journal.py measures both). A compaction that fails (a full
disk) leaves the old file as it was and is tried again :data:`RETRY_COMPACTION` seconds
later.

Read tolerantly: as bytes, line by line. A line that is not UTF-8 JSON with the
right fields and types, longer than :data:`MAX_LINE`, out of order, or cut short by a
crash, is skipped; how many and the first one's number are logged. Loading compacts
them away (or, on a full disk, appends after the last whole line).
"""

from __future__ import annotations

import asyncio
import errno
import io
import itertools
import json
import logging
import math
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rtlab.core.envelope import json_utf8
from rtlab.core.history import FLOORS, History, Record

FILENAME = "history.jsonl"
MAX_LINE = 4 * 2**20  # bytes; a longer line is skipped without being read whole
MIN_COMPACTION = 4 * 2**20  # bytes appended before a compaction is worth it
RETRY_COMPACTION = 30.0  # seconds after a failed compaction before the next try
BATCH = 1000  # lines a compaction encodes and writes at once
CHUNK = 2**20  # bytes a compaction copies at once of what was appended meanwhile
CATCH_UPS = 4  # times the thread copies what was appended meanwhile, until it is a CHUNK
REASONS = {
    errno.ENOSPC: "disk full",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large",
    errno.EIO: "disk error",
    errno.EROFS: "read-only disk",
}

_temporary = itertools.count(1)


class JournalError(Exception):
    """A line could not be written; ``reason`` says why in a few words ("disk full")."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def reason(error: OSError) -> str:
    return REASONS.get(error.errno or 0, error.strerror or type(error).__name__)


class Journal:
    """``DIR/history.jsonl``: load it into a :class:`History`, then append to it."""

    def __init__(
        self,
        folder: str | os.PathLike[str],
        *,
        logger: logging.Logger | None = None,
        min_compaction: int = MIN_COMPACTION,
    ) -> None:
        self.path = Path(folder) / FILENAME
        self.logger = logger or logging.getLogger(__name__)
        self.min_compaction = min_compaction
        self.compactions = 0  # done while running
        self._file: io.FileIO | None = None
        self._size = 0  # bytes of whole lines in the file
        self._kept = 0  # bytes the last compaction wrote
        self._compacting = False
        self._retry_at = 0.0
        self._generation = 0  # a compaction started before close() or load() is dropped
        self._cut = False  # a failed write may have left part of a line: cut it first
        self._refused = 0  # appends refused since the failure was logged

    @property
    def size(self) -> int:
        """Bytes in the file (its whole lines)."""
        return self._size

    # -- loading ---------------------------------------------------------------------

    def load(self, history: History) -> list[Record]:
        """Fill ``history`` from disk and compact the file; the records kept."""
        self.close()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for stale in self.path.parent.glob(f"{FILENAME}.*.tmp"):  # a compaction cut short
            stale.unlink(missing_ok=True)
        whole = self._read(history)
        rooms, marks, floors = history.snapshot()
        records = [record for room in rooms for record in room]
        temporary = self._temporary()
        try:
            _write(temporary, rooms, marks, floors)
            temporary.replace(self.path)
        except OSError as error:
            temporary.unlink(missing_ok=True)
            self.logger.error(
                "history: could not compact %s (%s): appending to it as it is",
                self.path,
                reason(error),
            )
            self._open(cut_at=whole)
            self._retry_at = time.monotonic() + RETRY_COMPACTION
            return records
        self._open()
        return records

    def _read(self, history: History) -> int:
        """Load the file's lines into ``history``; the bytes up to its last whole line."""
        if not self.path.exists():
            return 0
        skipped, first, whole = 0, 0, 0
        with self.path.open("rb") as source:
            for number, (line, ended) in enumerate(_lines(source), 1):
                if ended:
                    whole = source.tell()
                if line is None or not ended or not _load(history, line):
                    skipped += 1
                    first = first or number
        if skipped:
            self.logger.warning(
                "history: %d damaged line%s skipped in %s, the first at line %d",
                skipped,
                "" if skipped == 1 else "s",
                self.path,
                first,
            )
        return whole

    # -- appending -------------------------------------------------------------------

    def append(self, record: Record) -> None:
        """Write one message's line; :class:`JournalError` if it could not be."""
        if self._file is None:
            raise RuntimeError("load() the journal before appending to it")
        line = _encode(_message(record))
        try:
            if self._cut:
                os.ftruncate(self._file.fileno(), self._size)
                self._cut = False
            _write_all(self._file, line)
        except OSError as error:
            self._failed(error)
            raise JournalError(reason(error)) from error
        self._size += len(line)
        if self._refused:
            self.logger.warning(
                "history: writing to %s again, after refusing %d room messages",
                self.path,
                self._refused,
            )
            self._refused = 0

    def _failed(self, error: OSError) -> None:
        assert self._file is not None
        try:  # what part of the line was written goes: the file ends with a whole line
            os.ftruncate(self._file.fileno(), self._size)
        except OSError:
            self._cut = True  # tried again before the next line
        if not self._refused:
            self.logger.error(
                "history: cannot write to %s (%s): room messages are refused until it can",
                self.path,
                reason(error),
            )
        self._refused += 1

    # -- compacting ------------------------------------------------------------------

    def due(self) -> bool:
        """Whether the file has grown enough since the last compaction to compact it."""
        return (
            self._file is not None
            and not self._compacting
            and self._size - self._kept > max(self._kept, self.min_compaction)
            and time.monotonic() >= self._retry_at
        )

    async def compact(self, history: History) -> bool:
        """Rewrite the file to what ``history`` keeps while appends go on; whether it was."""
        if self._file is None or self._compacting:
            return False
        generation = self._generation
        rooms, marks, floors = history.snapshot()
        self._compacting = True
        copied = self._size  # appends from here on are copied from the old file
        temporary = self._temporary()
        try:
            written = await asyncio.to_thread(_write, temporary, rooms, marks, floors)
            del rooms, marks, floors  # what the history forgets meanwhile may go
            for _ in range(CATCH_UPS):
                if generation != self._generation or self._size - copied <= CHUNK:
                    break
                end = self._size
                await asyncio.to_thread(_copy, self.path, temporary, copied, end)
                copied = end
            if generation != self._generation:  # closed or loaded again meanwhile
                return False
            _copy(self.path, temporary, copied, self._size)  # on the loop: no append between
            temporary.replace(self.path)
        except OSError as error:
            if generation == self._generation:
                self._retry_at = time.monotonic() + RETRY_COMPACTION
                self.logger.error(
                    "history: could not compact %s (%s): trying again in %g s",
                    self.path,
                    reason(error),
                    RETRY_COMPACTION,
                )
            return False
        finally:
            temporary.unlink(missing_ok=True)
            if generation == self._generation:
                self._compacting = False
        self._open()
        self._kept = written  # what the history holds: the next threshold
        self.compactions += 1
        return True

    # -- the file --------------------------------------------------------------------

    def _temporary(self) -> Path:
        return self.path.with_name(f"{FILENAME}.{os.getpid()}.{next(_temporary)}.tmp")

    def _open(self, cut_at: int | None = None) -> None:
        """Append to the file from now on; ``cut_at``: after a load that did not compact."""
        old = self._file
        self._file = self.path.open("ab", buffering=0)
        self._size = os.fstat(self._file.fileno()).st_size
        self._cut = False
        self._kept = self._size
        if cut_at is not None and cut_at != self._size:  # a line cut short by a crash
            self._size, self._cut, self._kept = cut_at, True, 0
        if old is not None:
            old.close()

    def close(self) -> None:
        self._generation += 1
        self._compacting = False
        if self._file is not None:
            self._file.close()
            self._file = None


# -- lines --------------------------------------------------------------------------------


def _message(record: Record) -> dict[str, Any]:
    return {
        "ns": record.ns,
        "room": record.room,
        "seq": record.seq,
        "time": record.time,
        "payload": record.payload,
        "user": record.user,
        "mid": record.mid,
    }


def _encode(entry: dict[str, Any]) -> bytes:
    return json_utf8(entry).encode() + b"\n"  # UTF-8: an emoji is 4 bytes, not 12


def _write_all(file: io.FileIO, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = file.write(view)
        view = view[written or 0 :]


def _copy(source: Path, target: Path, start: int, end: int) -> None:
    """Append bytes ``start`` to ``end`` of ``source`` (whole lines) to ``target``."""
    with source.open("rb") as old, target.open("ab") as new:
        old.seek(start)
        while start < end:
            chunk = old.read(min(CHUNK, end - start))
            if not chunk:
                raise OSError(errno.EIO, f"{source} ends before byte {end}")
            new.write(chunk)
            start += len(chunk)


def _write(
    path: Path,
    rooms: list[tuple[Record, ...]],
    marks: list[tuple[str, str, int]],
    floors: dict[int, int],
) -> int:
    """A compacted journal: floors, marks, then messages (in a thread, while running)."""
    entries: Iterator[dict[str, Any]] = itertools.chain(
        ({"floor": floor, "last": last} for floor, last in sorted(floors.items())),
        ({"ns": ns, "room": room, "last": last} for ns, room, last in marks),
        (_message(record) for room in rooms for record in room),
    )
    with path.open("wb") as out:
        # One entry (a dict) alive at a time: nothing for the garbage collector to chase.
        while chunk := b"".join(_encode(entry) for entry in itertools.islice(entries, BATCH)):
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
        return out.tell()


def _lines(source: io.BufferedReader) -> Iterator[tuple[bytes | None, bool]]:
    """The file's lines as bytes (``None`` for one longer than MAX_LINE, skipped unread),
    each with whether it ended with a newline (the last one may not: a crash)."""
    while line := source.readline(MAX_LINE + 1):
        if len(line) <= MAX_LINE:
            yield line, line.endswith(b"\n")
            continue
        while line and not line.endswith(b"\n"):
            line = source.readline(MAX_LINE)
        yield None, line.endswith(b"\n")


def _positive(value: Any) -> bool:
    return type(value) is int and value > 0


def _load(history: History, line: bytes) -> bool:
    """Put one line into ``history``; False if it is damaged, or out of order."""
    try:
        entry = json.loads(line)
    except (ValueError, RecursionError):  # not UTF-8 (UnicodeDecodeError), not JSON
        return False
    if not isinstance(entry, dict):
        return False
    if entry.keys() == {"floor", "last"}:
        floor, last = entry["floor"], entry["last"]
        if type(floor) is not int or not 0 <= floor < FLOORS or not _positive(last):
            return False
        history.raise_floor(floor, last)
        return True
    ns, room = entry.get("ns"), entry.get("room")
    if not isinstance(ns, str) or not isinstance(room, str):
        return False
    if entry.keys() == {"ns", "room", "last"}:
        if not _positive(entry["last"]):
            return False
        history.mark(ns, room, entry["last"])
        return True
    return _load_message(history, entry, ns, room)


def _load_message(history: History, entry: dict[str, Any], ns: str, room: str) -> bool:
    seq, when, payload = entry.get("seq"), entry.get("time"), entry.get("payload")
    user, mid = entry.get("user"), entry.get("mid")
    if not _positive(seq) or type(when) not in (int, float) or not math.isfinite(when):
        return False
    if not isinstance(payload, dict) or payload.get("seq") != seq or payload["seq"] is True:
        return False
    if not isinstance(user, str | None) or not isinstance(mid, str | None):
        return False
    try:
        history.add(Record(ns, room, seq, float(when), payload, user, mid))
    except ValueError:  # not after the room's last number: a repeat
        return False
    return True
