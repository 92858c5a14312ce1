"""Which refused handshakes end reconnection, and what to tell the person refused.

The server refuses a handshake with an HTTP status and a one-line reason
(rtlab/aio/admission.py). Trying again cannot change a refusal about who you are
or where you come from: 401 (no token, a tampered or expired one), 403 (a foreign
origin, a name from another machine) and the other 4xx. It can change 429 (too
many connections, now), 5xx (the server's trouble) and a network error, so those
are retried with backoff. rtlab/static/index.html applies the same rule.
"""

from __future__ import annotations

import re

EXPIRED = re.compile(r"expired (\d+) s ago")
# A 401 that no new token mends: the server cannot check any (started without its secret).
NO_SECRET = "this server was started without its secret"
NO_TOKEN = "this server needs a token"  # none was sent: nothing was rejected


def is_final(status: int) -> bool:
    """True for a refusal that retrying cannot change: a 4xx other than 429."""
    return 400 <= status < 500 and status != 429


def ago(seconds: int) -> str:
    """``45 s``, ``2 min``, ``3 h``, ``2 days``: how long ago, as a person says it."""
    for unit, size in (("day", 86_400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'s' if unit == 'day' and count > 1 else ''}"
    return f"{seconds} s"


def advice(status: int, reason: str) -> str:
    """One line a student can act on, from the status and the server's reason."""
    reason = EXPIRED.sub(lambda m: f"expired {ago(int(m[1]))} ago", reason.strip())
    if status == 401 and reason.startswith(NO_SECRET):
        return f"refused: {reason}"
    if status == 401 and reason.startswith(NO_TOKEN):
        return (
            "no token was sent, and this server needs one: give the token your instructor "
            "handed out (RTLAB_TOKEN, or ?token= in the page's address)"
        )
    if status == 401:
        reason = reason.removeprefix("invalid token: ")
        return f"your token was rejected: {reason} — ask your instructor for a new one"
    if status == 403 and reason.startswith("origin "):
        return f"refused: {reason} — the server must list this page's site in --origins"
    if status == 403:
        return f"refused: {reason} — ask your instructor for a token"
    return f"the server refused the connection (HTTP {status}): {reason}"
