"""The open-file limit, raised at start: every connection costs the server one descriptor.

A process starts with the *soft* limit (often 1,024), which it may raise up to the
*hard* limit its administrator set. At 1,024 a class (or one curious student) runs
the server out of descriptors: new connections fail at ``accept`` for everyone. So
the server raises its soft limit to the hard limit and says what it got.
"""

from __future__ import annotations

RESERVED = 64  # descriptors kept for the rest: listening sockets, journal, Redis, logs
CAP = 1_048_576  # what "unlimited" becomes (macOS refuses RLIM_INFINITY)


def raise_limit() -> tuple[int | None, str]:
    """Raise the soft limit to the hard one; the limit now, and a sentence that says it."""
    try:
        import resource
    except ImportError:  # Windows: no such limit to raise
        return None, "file descriptors: no limit to raise on this system"
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = CAP if hard == resource.RLIM_INFINITY else hard
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return soft, _sentence(soft, "")
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    except (ValueError, OSError) as error:
        return soft, _sentence(soft, f" (could not raise it to {wanted}: {error})")
    return wanted, _sentence(wanted, f" (raised from {soft})")


def _sentence(limit: int, how: str) -> str:
    if limit == -1:  # RLIM_INFINITY
        return "file descriptors: unlimited"
    return (
        f"file descriptors: {limit}{how}, room for about {max(limit - RESERVED, 0)} "
        "open connections"
    )
