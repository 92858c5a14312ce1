"""Lesson 05's JavaScript exercise, graded from what the server saw: real Chromium runs
each answer with the box's own runner (without JupyterLab) against the check's echo server,
behind the fault proxy that cuts the link twice and refuses attempts for a while. Right
answers written differently pass; wrong ones fail with what the learner would read."""

from __future__ import annotations

import itertools
import threading
import time

import pytest

from rtlab.checks import resilience
from rtlab.notebook.jsbox import RUNNER, Attempt
from tests.e2e.test_browser import CHROMIUM_ARGS

pytestmark = pytest.mark.browser

_runs = itertools.count(1)


@pytest.fixture(scope="module")
def page(chromium_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    from rtlab import start_server

    with sync_api.sync_playwright() as playwright, start_server() as server:
        chromium = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        page = chromium.new_page()
        page.goto(server.http_url + "nothing-here")  # a page of a web origin, as JupyterLab's
        yield page
        chromium.close()


@pytest.fixture(scope="module")
def box():
    made = resilience.js_keep_asking("")
    yield made
    made.close()


@pytest.fixture
def short(monkeypatch):
    """A shorter wait for answers that never finish (the learner's is JS_TIMEOUT)."""
    monkeypatch.setattr(resilience, "JS_TIMEOUT", 4.0)


def check(page, box, code: str) -> resilience.Verdict:
    """Run ``code`` in the page as the box would, feeding its reports to the grader."""
    attempt = Attempt(f"test-{next(_runs)}", code)
    verdicts: list[resilience.Verdict] = []
    grading = threading.Thread(target=lambda: verdicts.append(box._grade(attempt)))
    grading.start()
    page.evaluate(
        f"""([code, url]) => {{
            window.reports = [];
            {RUNNER}
            runExercise(code, url, (kind, text) => window.reports.push([kind, text]));
        }}""",
        [code, f"{box.url}?run={attempt.run}"],
    )
    reported = 0
    while grading.is_alive():  # Playwright's sync API belongs to this thread: poll from here
        reports = page.evaluate("window.reports")
        for kind, text in reports[reported:]:
            attempt.report(kind, text)
        reported = len(reports)
        time.sleep(0.05)
    page.reload()  # stops this run's sockets and timers: nothing of it lingers in the next
    return verdicts[0]


def client(connect_body: str, before: str = "") -> str:
    """The exercise's code with ``connect()``'s body (and lines before it) of an answer."""
    return f"""
        const texts = ["one", "two", "three", "four", "five"];
        const delay = 10, delayMax = 400;  // milliseconds
        const answers = [];
        let attempt = 0;
        {before}
        function connect() {{
          {connect_body}
        }}
        connect();
    """


LISTENERS = """
  const socket = new WebSocket(url);
  socket.addEventListener("open", () => {
    attempt = 0;
    socket.send(texts[answers.length]);
  });
  socket.addEventListener("message", (event) => {
    answers.push(event.data);
    if (answers.length < texts.length) socket.send(texts[answers.length]);
    else socket.close(1000, "done");
  });
  socket.addEventListener("close", () => {
    if (answers.length === texts.length) return;
    WAIT
  });
"""


def listeners(wait: str) -> str:
    return client(LISTENERS.replace("WAIT", wait))


SOLUTION = listeners(
    "const wait = Math.min(delay * 2 ** attempt, delayMax) * (0.5 + Math.random());\n"
    "attempt += 1;\n"
    "setTimeout(connect, Math.min(wait, delayMax));"
)

RIGHT = {
    "the lesson's solution": SOLUTION,
    "on-properties, rtlab's cap, jitter, cap": client(
        """
        const ws = new WebSocket(url);
        ws.onopen = () => { attempt = 0; ws.send(texts[answers.length]); };
        ws.onmessage = ({ data }) => {
          answers.push(data);
          answers.length === texts.length ? ws.close() : ws.send(texts[answers.length]);
        };
        ws.onclose = () => {
          if (answers.length === texts.length) return console.log("all answered", answers);
          const base = Math.min(delay * Math.pow(2, attempt++), delayMax);
          setTimeout(connect, Math.min(base * (1 + 0.5 * (2 * Math.random() - 1)), delayMax));
        };
        ws.onerror = (e) => console.warn("error", e);
        """
    ),
    "Socket.IO's backoff, async helpers": client(
        """
        const socket = new WebSocket(url);
        socket.onopen = () => { attempt = 0; next(socket); };
        socket.onmessage = (event) => { answers.push(event.data); next(socket); };
        socket.onclose = async () => {
          if (answers.length === texts.length) return;
          await sleep(backoff(attempt++));
          connect();
        };
        """,
        before="""
        const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
        function backoff(n) {
          let ms = delay * 2 ** n;
          const rand = Math.random();
          const deviation = Math.floor(rand * 0.5 * ms);
          ms = (Math.floor(rand * 10) & 1) == 0 ? ms - deviation : ms + deviation;
          return Math.min(ms, delayMax) | 0;
        }
        function next(socket) {
          if (answers.length < texts.length) socket.send(texts[answers.length]);
          else socket.close(1000, "bye");
        }
        """,
    ),
}


@pytest.mark.parametrize("code", RIGHT.values(), ids=RIGHT.keys())
def test_right_answers_pass(page, box, code):
    verdict = check(page, box, code)
    assert verdict.passed, verdict
    assert "connections from a browser" in verdict.message
    assert "answered each text once" in verdict.message


WRONG = {
    "not done yet (the learner copy's placeholder)": (
        client('throw new Error("not done yet: your code here");'),
        "js_keep_asking: not done yet",
    ),
    "reconnects at once: a hot loop": (
        listeners("connect();"),
        # A browser's refused handshake takes tens of ms on a busy machine: then the
        # same hot loop reads as waits that do not grow. Either is the cross it earns.
        ("a hot loop, with no wait between attempts", "they did not grow"),
    ),
    "the same wait every time": (
        listeners("setTimeout(connect, 60);"),
        "they did not grow",
    ),
    "no cap: the wait doubles past delayMax": (
        listeners("setTimeout(connect, delay * 2 ** attempt++);"),
        "one is longer than delay_max=0.4 s",
    ),
    "no cap, jittered: the wait after the last refusal gives it away": (
        listeners("setTimeout(connect, delay * 2 ** attempt++ * (0.5 + Math.random() / 10));"),
        "until the next connection: one is longer than delay_max=0.4 s",
    ),
    "reconnects from both error and close": (
        client(
            LISTENERS.replace(
                "WAIT", "setTimeout(connect, Math.min(delay * 2 ** attempt++, delayMax));"
            ).replace(
                'socket.addEventListener("close", () => {',
                'socket.addEventListener("error", () => {\n'
                "    setTimeout(connect, Math.min(delay * 2 ** attempt++, delayMax));\n"
                "  });\n"
                '  socket.addEventListener("close", () => {',
            )
        ),
        "reconnect from the 'close' listener alone",  # whichever symptom shows first
    ),
    "never resets attempt once connected": (
        client(
            LISTENERS.replace("attempt = 0;\n", "").replace(
                "WAIT", "setTimeout(connect, Math.min(delay * 2 ** attempt++, delayMax));"
            )
        ),
        "after the link dropped again",
    ),
    "the tutorial's reconnectionAttempts: 5": (
        listeners(
            "if (++attempt <= 5) setTimeout(connect, Math.min(delay * 2 ** attempt, delayMax));"
        ),
        "5 refused attempt(s), and answered ['one']; 'two' got no answer",
    ),
    "no reconnection at all": (
        listeners("console.log('closed');"),
        "the server saw 1 connection(s) and 0 refused attempt(s), and answered ['one']",
    ),
    "starts from the first text on each connection": (
        client(
            """
            let sent = 0;  // counted per connection: starts over at texts[0]
            const socket = new WebSocket(url);
            socket.onopen = () => { attempt = 0; socket.send(texts[sent]); };
            socket.onmessage = (event) => {
              if (!answers.includes(event.data)) answers.push(event.data);
              sent += 1;
              if (answers.length < texts.length) socket.send(texts[sent]);
              else socket.close(1000);
            };
            socket.onclose = () => {
              if (answers.length === texts.length) return;
              setTimeout(connect, Math.min(delay * 2 ** attempt++, delayMax));
            };
            """
        ),
        "the server answered 'one' 3 times: it was sent again after its answer had arrived",
    ),
    "a TypeError in the message listener": (
        listeners("setTimeout(connect, 10);").replace(
            "answers.push(event.data);", "answers.add(event.data);"
        ),
        "your code threw TypeError: answers.add is not a function in the page",
    ),
}


@pytest.mark.parametrize(("code", "expected"), WRONG.values(), ids=WRONG.keys())
def test_wrong_answers_fail_with_what_the_server_saw(page, box, code, expected, short):
    verdict = check(page, box, code)
    assert not verdict.passed
    said = verdict.message + verdict.hint
    alternatives = expected if isinstance(expected, tuple) else (expected,)
    assert any(e in said for e in alternatives), verdict


def test_an_answer_that_never_closes_fails_after_the_timeout(page, box, short):
    code = SOLUTION.replace('else socket.close(1000, "done");', "")
    verdict = check(page, box, code)
    assert not verdict.passed
    assert "a connection is still open" in verdict.message


def test_the_box_is_one_deterministic_line_and_stops_its_server():
    made = resilience.js_keep_asking("connect();")
    assert repr(made) == (
        "<JavaScript exercise js_keep_asking: press Run to run it in this browser tab>"
    )
    made.close()
    assert not made._on_close


def test_a_learner_copys_box_says_not_done_yet_before_any_run():
    made = resilience.js_keep_asking(client('throw new Error("not done yet: your code here");'))
    try:
        assert "js_keep_asking: not done yet" in repr(made)
        assert "rtlab.hint()" in repr(made)
    finally:
        made.close()
