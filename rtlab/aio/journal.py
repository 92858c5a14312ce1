"""Room history on disk: an append-only JSON-lines file that survives a server restart.

Each delivered room message is one line, written (and flushed to the operating
system) before it is sent to anyone, so a server killed at any moment restarts
with every message it ever delivered, and with their ``mid``\\ s to recognise
resends. On start the file is compacted to what the history keeps.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from rtlab.core.history import History, Record

FILENAME = "history.jsonl"


class Journal:
    """``DIR/history.jsonl``: load it into a :class:`History`, then append to it."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.path = Path(folder) / FILENAME
        self._file: Any = None

    def load(self, history: History) -> list[tuple[Record, str | None, str | None]]:
        """Fill ``history`` from disk and compact the file; the (record, user, mid) loaded.

        A line cut short by a crash (the last one) is skipped.
        """
        loaded: list[tuple[Record, str | None, str | None]] = []
        if self.path.exists():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    entry = json.loads(line)
                    record = Record(
                        entry["ns"], entry["room"], entry["seq"], entry["time"], entry["payload"]
                    )
                except (ValueError, KeyError, TypeError):
                    continue
                if record.seq > history.last_seq(record.ns, record.room):
                    history.add(record)
                    loaded.append((record, entry.get("user"), entry.get("mid")))
        kept = {id(r) for r in history.records()}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        compacted = self.path.with_suffix(".tmp")
        with compacted.open("w", encoding="utf-8") as out:
            for record, user, mid in loaded:
                if id(record) in kept:
                    out.write(_line(record, user, mid))
        compacted.replace(self.path)
        self._file = self.path.open("a", encoding="utf-8")
        return [(r, u, m) for r, u, m in loaded if id(r) in kept]

    def append(self, record: Record, user: str | None, mid: str | None) -> None:
        if self._file is None:
            raise RuntimeError("load() the journal before appending to it")
        self._file.write(_line(record, user, mid))
        self._file.flush()  # in the OS's hands now: a killed process loses nothing

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _line(record: Record, user: str | None, mid: str | None) -> str:
    entry = {
        "ns": record.ns,
        "room": record.room,
        "seq": record.seq,
        "time": record.time,
        "payload": record.payload,
        "user": user,
        "mid": mid,
    }
    return json.dumps(entry, separators=(",", ":")) + "\n"
