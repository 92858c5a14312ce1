"""JavaScript exercises: the learner's code runs in their own browser tab, the server grades.

``rtlab.js_exercise(server, name, code)`` shows a :class:`~rtlab.notebook.jsbox.JsBox`
whose code connects to a recording relay in front of the lab server (``/echo`` by
default; see rtlab/notebook/recorder.py). Pressing Run runs the code in the page; the
exercise's grader then judges what the *server* saw (a browser's handshake, the messages,
the close frame) and what the page reported (JavaScript errors, what the code logged, and
when and from where it called ``close()``). Every wait has a timeout: code that never
connects or never closes is a ❌ that says so.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from rtlab.checks import Problem, Verdict, grade
from rtlab.notebook.background import RunningProxy, RunningServer, start_proxy
from rtlab.notebook.jsbox import Attempt, JsBox
from rtlab.notebook.recorder import Recorder, Seen, start_recorder

TIMEOUT = 8.0  # seconds the code has to open, talk and close (a hang guard, not a race)
NOT_DONE = "not done yet"  # what a learner copy's placeholder throws
# Seconds an exercise's relay holds each reply back, at random in the range: a close on a
# timer that happened to fire after a quick reply then comes before it, or late after it.
REPLY_DELAY: dict[str, tuple[float, float]] = {"browser_client": (0.2, 0.7)}


@dataclass(frozen=True)
class Lab:
    """What a grader may look at: the recording relay, and the fault proxy if one was asked."""

    recorder: Recorder
    proxy: RunningProxy | None = None


Check = Callable[[Lab, Attempt], Verdict]


def browser_url(direct: str) -> str:
    """The URL the page connects to: ``direct`` on a laptop; through jupyter-server-proxy's
    ``/proxy/PORT/`` on JupyterHub or Binder, where the browser is elsewhere."""
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX")
    if prefix and importlib.util.find_spec("jupyter_server_proxy"):
        return f"{prefix.rstrip('/')}/proxy/{urlsplit(direct).port}/"
    return direct


def js_exercise(
    server: RunningServer | str,
    name: str,
    code: str,
    *,
    endpoint: str = "/echo",
    check: Check | None = None,
    proxy: bool = False,
) -> JsBox:
    """A JavaScript exercise box for ``code``, its ``url`` leading to ``server``'s ``endpoint``.

    ``check`` grades an attempt (default: this module's check named ``name``). With
    ``proxy=True`` the page connects through a fault proxy (``Lab.proxy``) to the relay.
    The relay holds replies back as :data:`REPLY_DELAY` says for ``name``, if it does.
    """
    grader = check or CHECKS[name]
    target = server if isinstance(server, str) else server.url + endpoint
    recorder = start_recorder(target, delay=REPLY_DELAY.get(name))
    fault = start_proxy(recorder.url) if proxy else None
    lab = Lab(recorder, fault)
    front = fault or recorder
    url = browser_url(front.url)
    box = JsBox(name, code, url, lambda a: grader(lab, a), on_close=lambda: stop(lab))
    box.lab = lab
    if NOT_DONE in code:  # a learner copy's placeholder: its verdict is known before any run
        placeholder = Attempt("", code)
        placeholder.report("error", f"Error: {NOT_DONE}")
        box.verdict = str(grader(lab, placeholder))
    return box


def stop(lab: Lab) -> None:
    """Stop the exercise's proxy and relay (the box's ``close()`` does it)."""
    if lab.proxy is not None:
        lab.proxy.stop()
    lab.recorder.stop()


def page_error(attempt: Attempt) -> Problem | None:
    """The first JavaScript error the page reported, as a problem; a placeholder's is
    "not done yet" (raised as ``NotImplementedError``, answered with the nudge)."""
    if not attempt.errors:
        return None
    error = attempt.errors[0]
    if NOT_DONE in error:
        raise NotImplementedError(error)
    return f"your code threw {error} in the page"


def seen_text(seen: Seen) -> str:
    """What the server saw of one connection, in a few words."""
    received = ", ".join(repr(m) for m in seen.received) or "no message"
    if not seen.closed:
        end = "still open"
    elif seen.close_code is None:
        end = "no close frame"
    else:
        end = f"close {seen.close_code} {seen.close_reason!r}"
    return f"{received}; {end}"


# -- lesson 02: the tutorial's browser client -------------------------------------------

HELLO = "Hello Server!"
ECHO = f"Echo: {HELLO}"
CODE, REASON = 1000, "done"
CLIENT_RECIPE = (
    "const socket = new WebSocket(url); in an 'open' listener socket.send('Hello Server!'); "
    "in a 'message' listener console.log(event.data) and, once event.data is "
    "'Echo: Hello Server!', socket.close(1000, 'done'); in a 'close' listener "
    "console.log(event.code, event.reason, event.wasClean); in an 'error' listener log it too"
)
CLIENT_NUDGE = (
    "start with const socket = new WebSocket(url); then socket.addEventListener('open', () => ...)"
)
PROMPT = 0.5  # seconds within which the page must close once the echo came (generous)
WAITED = 0.1  # seconds: a timer set for this long or longer waits; a shorter one polls
ON_TIMER = (
    f"close when the echo comes, not on a timer: in the 'message' listener, once event.data "
    f"is {ECHO!r}, call socket.close({CODE}, {REASON!r}). A timer set before the echo came "
    "can't know when it comes: the echo may take longer, or much less"
)


def _timer_problem(attempt: Attempt, seen: Seen) -> Problem | None:
    """A close made on a timer, not when the echo came: from the page's report of the code's
    first close() call (a timer set before the echo, or a close long after it)."""
    if not attempt.close_details:
        return None
    call = attempt.close_details[0]
    if call.heard == 0:
        if call.timer_ms is None:
            return None  # closed too early, but not on a timer: the caller says so
        return (
            f"the browser closed on a timer, before the echo came back (a {call.timer_ms} ms "
            f"timer; the server saw: {seen_text(seen)})",
            ON_TIMER,
        )
    set_before = call.armed_heard is not None and call.armed_heard < call.heard
    if call.timer_ms is not None and call.timer_ms >= WAITED * 1000 and set_before:
        return (
            "the browser closed on a timer, not when the echo came back (a "
            f"{call.timer_ms} ms timer, set before the echo came)",
            ON_TIMER,
        )
    if call.after_ms is not None and call.after_ms > PROMPT * 1000:
        return (
            f"the browser closed {call.after_ms / 1000:.1f} s after the echo came back, "
            "not when it came",
            ON_TIMER,
        )
    return None


def _client_problem(lab: Lab, attempt: Attempt) -> Problem | None:
    def done() -> bool:
        mine = lab.recorder.seen(attempt.run)
        return bool(attempt.closes) and bool(mine) and all(s.closed for s in mine)

    attempt.wait(done, TIMEOUT)
    problem = page_error(attempt)
    mine = lab.recorder.seen(attempt.run)
    if problem is not None:
        said = f"; the server saw: {seen_text(mine[0])}" if mine else ""
        return problem + said
    if not mine:
        return (
            f"the server saw no connection in {TIMEOUT:g} s",
            "open it with new WebSocket(url): url is the exercise's endpoint",
        )
    if len(mine) > 1:
        return f"the server saw {len(mine)} connections: open one WebSocket and keep it"
    seen = mine[0]
    if not seen.origin:
        return "the handshake had no Origin header: it did not come from a browser page"
    if seen.target_error:
        return f"the lab server could not be reached ({seen.target_error}): is it running?"
    if seen.received != [HELLO]:
        if not seen.received:
            return (
                f"the server received no message ({seen_text(seen)})",
                "send 'Hello Server!' in the 'open' listener: before open, send() throws",
            )
        return f"the server received {seen.received!r}, not just {[HELLO]!r}"
    if not seen.closed:
        return (
            f"the server received {HELLO!r}, but after {TIMEOUT:g} s the connection is still open",
            f"in the 'message' listener, once event.data is {ECHO!r}, "
            f"call socket.close({CODE}, {REASON!r})",
        )
    if problem := _timer_problem(attempt, seen):
        return problem
    # The server may have sent the echo before the close frame reached it, though the page
    # closed first (a closing browser drops what arrives): the page says what it had heard.
    if ECHO not in seen.sent or attempt.close_calls[:1] == [0]:
        return (
            f"the browser closed before the echo came back ({seen_text(seen)})",
            "close in the 'message' listener, once the reply has arrived, not right after send()",
        )
    if seen.close_code in (None, 1005):
        what = "no close frame" if seen.close_code is None else "a close frame without a code"
        return (
            f"the server received {what}: close() was called without a code",
            f"pass the code and the reason: socket.close({CODE}, {REASON!r})",
        )
    if (seen.close_code, seen.close_reason) != (CODE, REASON):
        got = f"{seen.close_code} {seen.close_reason!r}"
        return f"the server received close {got}, not {CODE} {REASON!r}"
    if not any(ECHO in line for line in attempt.logs):
        return (
            f"the server saw everything right, but the page never logged the echo ({ECHO!r})",
            "in the 'message' listener: console.log(event.data), then close",
        )
    closing = [line for line in attempt.logs if all(w in line for w in (str(CODE), REASON, "true"))]
    if not closing:
        return (
            "the server saw everything right, but the page never logged the close event's "
            "code, reason and wasClean (1000 done true)",
            "in the 'close' listener: console.log(event.code, event.reason, event.wasClean)",
        )
    return None


def check_browser_client(lab: Lab, attempt: Attempt) -> Verdict:
    """Lesson 02: the tutorial's browser client, graded from what the server saw."""
    verdict = grade(
        "browser_client", lambda: _client_problem(lab, attempt), CLIENT_RECIPE, CLIENT_NUDGE
    )
    if not verdict.passed:
        return verdict
    seen = lab.recorder.seen(attempt.run)[0]
    return Verdict(
        True,
        f"{verdict.message}; the server saw a browser (Origin {seen.origin}) send "
        f"{HELLO!r}, get {ECHO!r} back, then close {CODE} {REASON!r}",
    )


CHECKS: dict[str, Check] = {"browser_client": check_browser_client}
