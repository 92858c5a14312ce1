"""The data folder's lock: one lab server at a time reads and writes a ``--data-dir``.

A second server started on a folder in use would load and compact its journals under
the first one, which then goes on appending to files no longer in the folder: every
message it acknowledges afterwards is lost at the next restart. So a server locks
``DIR/.lock`` (``flock``, exclusive) before it reads anything there, writes its pid in
it, and holds it until it stops. The operating system releases the lock when the
process ends, however it ends: a file left by a killed server locks nothing. On a
system without ``fcntl`` (Windows) the folder is not locked.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

LOCKFILE = ".lock"


class DataDirError(Exception):
    """The data folder cannot be used; the message says why, in one line."""


class DataDirInUse(DataDirError):
    """Another lab server holds the folder's lock; ``pid`` is its process, if known."""

    def __init__(self, folder: Path, pid: int | None) -> None:
        self.folder = folder
        self.pid = pid
        by = "another lab server" + (f" (pid {pid})" if pid is not None else "")
        super().__init__(f"{folder} is in use by {by}: stop it first, or use another --data-dir")


class DataDirLock:
    """``DIR/.lock``: :meth:`acquire` before reading the folder, :meth:`release` after."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCKFILE
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Lock the folder (made if missing); :class:`DataDirInUse` if another holds it."""
        if self._fd is not None or fcntl is None:
            return
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise DataDirError(
                f"cannot use {self.folder} as the data folder: {_why(error)}"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _pid_in(fd)
            os.close(fd)
            raise DataDirInUse(self.folder, pid) from None
        except OSError as error:  # a file system without locks (ENOLCK)
            os.close(fd)
            raise DataDirError(
                f"cannot lock {self.path} ({_why(error)}): use a data folder on a local disk"
            ) from None
        with contextlib.suppress(OSError):  # the pid only helps; the lock is what counts
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Unlock the folder (the file stays: removing it would race the next server)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)  # no pid left behind that looks like a holder
        os.close(fd)  # releases the lock


def _pid_in(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None  # empty: the holder is writing it now


def _why(error: OSError) -> str:
    return error.strerror or type(error).__name__
