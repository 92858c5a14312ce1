"""The class's progress on disk (``--data-dir``): a JSON-lines file that survives a restart.

Each report that changed the grid is one line, appended (and flushed to the operating
system) before any instructor is told of it. On start the file is read into the model and
rewritten as the few lines that give the same grid (``ClassProgress.reports``); while the
server runs, the file is rewritten that way again whenever it has grown to twice its size
after the last rewrite (and at least ``MIN_LINES``), so it stays within a small multiple
of the grid's size, whatever students send. A line cut short by a crash is skipped.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from rtlab.core.progress import ClassProgress, Report, parse_report

FILENAME = "progress.jsonl"
MIN_LINES = 10_000  # lines appended before a rewrite is worth it


class ProgressJournal:
    """``DIR/progress.jsonl``: :meth:`load` it into a :class:`ClassProgress`, then
    :meth:`append` each report that changed it."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.path = Path(folder) / FILENAME
        self.progress: ClassProgress | None = None
        self.lines = 0
        self._limit = MIN_LINES

    def load(self, progress: ClassProgress) -> int:
        """Record every report on disk into ``progress``, then compact; how many were read."""
        read = 0
        if self.path.exists():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    entry = json.loads(line)
                    report = parse_report(entry.pop("user"), entry)
                except (ValueError, KeyError, TypeError, AttributeError):
                    continue
                progress.record(report)
                read += 1
        self.progress = progress
        self.compact()
        return read

    def append(self, report: Report) -> None:
        if self.progress is None:
            raise RuntimeError("load() the journal before appending to it")
        with self.path.open("a", encoding="utf-8") as out:
            out.write(_line(report))  # closed, so flushed: a killed server loses nothing
        self.lines += 1
        if self.lines >= self._limit:
            self.compact()

    def compact(self) -> None:
        """Rewrite the file as the lines that give the model's grid, atomically."""
        assert self.progress is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        reports = self.progress.reports()
        fresh = self.path.with_suffix(".tmp")
        with fresh.open("w", encoding="utf-8") as out:
            out.writelines(_line(report) for report in reports)
        fresh.replace(self.path)
        self.lines = len(reports)
        self._limit = max(MIN_LINES, 2 * self.lines)


def _line(report: Report) -> str:
    return json.dumps(report.to_json(), separators=(",", ":")) + "\n"
