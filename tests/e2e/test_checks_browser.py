"""The JavaScript exercise of lesson 02, graded from what the server saw: real Chromium runs
each answer in a page (the box's own runner, without JupyterLab) against a recording relay
in front of a real lab server. Wrong answers a learner would write are rejected with what
the learner would read; right answers written differently are accepted."""

from __future__ import annotations

import contextlib
import itertools
import time

import pytest

from rtlab.checks import browser
from rtlab.notebook.jsbox import RUNNER, Attempt, JsBox
from tests.e2e.test_browser import CHROMIUM_ARGS

pytestmark = pytest.mark.browser

SETTLE = 10_000  # ms a page may take to report its close or an error (a hang guard)
_runs = itertools.count(1)


@pytest.fixture(scope="module")
def page(chromium_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        yield chromium.new_page()
        chromium.close()


@pytest.fixture(scope="module")
def lab():
    from rtlab import start_server

    with start_server() as server:
        delay = browser.REPLY_DELAY["browser_client"]  # as js_exercise's relay does
        setup = browser.Lab(browser.start_recorder(server.echo_url, delay=delay))
        yield server, setup
        browser.stop(setup)


@pytest.fixture
def short(monkeypatch):
    """A shorter wait for answers that never close (the learner's wait is TIMEOUT)."""
    monkeypatch.setattr(browser, "TIMEOUT", 2.0)


def attempt_in_page(page, lab, code: str) -> Attempt:
    """Run ``code`` as the box would, in a page of the lab server's origin; its reports."""
    server, setup = lab
    page.goto(server.http_url + "nothing-here")  # a page of a web origin, as JupyterLab's
    attempt = Attempt(f"test-{next(_runs)}", code)
    url = f"{setup.recorder.url}?run={attempt.run}"
    page.evaluate(
        f"""([code, url]) => {{
            window.reports = [];
            {RUNNER}
            window.stopRun = runExercise(
                code, url, (kind, text) => window.reports.push([kind, text]));
        }}""",
        [code, url],
    )
    with contextlib.suppress(Exception):  # an answer that never closes: graded as such
        page.wait_for_function(
            "window.reports.some(([kind]) => kind === 'closed' || kind === 'error')",
            timeout=SETTLE if browser.TIMEOUT > 2 else 3000,
        )
    for kind, text in page.evaluate("window.reports"):
        attempt.report(kind, text)
    return attempt


def check(page, lab, code: str) -> browser.Verdict:
    return browser.check_browser_client(lab[1], attempt_in_page(page, lab, code))


RIGHT = {
    "the tutorial's listeners": """
        const socket = new WebSocket(url);
        socket.addEventListener('open', (event) => { socket.send('Hello Server!'); });
        socket.addEventListener('message', (event) => {
          console.log('Message from server:', event.data);
          if (event.data === 'Echo: Hello Server!') socket.close(1000, 'done');
        });
        socket.addEventListener('error', (error) => { console.error('WebSocket error:', error); });
        socket.addEventListener('close', (event) => {
          console.log('closed', event.code, event.reason, event.wasClean);
        });
    """,
    "on-properties and a template string": """
        const ws = new WebSocket(url);
        ws.onopen = () => ws.send("Hello Server!");
        ws.onmessage = ({ data }) => { console.log(data); ws.close(1000, "done"); };
        ws.onclose = ({ code, reason, wasClean }) => console.debug(`${code} ${reason} ${wasClean}`);
        ws.onerror = (e) => console.error(e);
    """,
    "a class around the socket": """
        class Client {
          constructor(address) {
            this.socket = new WebSocket(address);
            this.socket.addEventListener("open", () => this.socket.send("Hello Server!"));
            this.socket.addEventListener("message", (e) => this.got(e.data));
            this.socket.addEventListener("close", (e) => console.info({
              code: e.code, reason: e.reason, wasClean: e.wasClean }));
          }
          got(text) {
            console.log(text);
            if (text.startsWith("Echo:")) this.socket.close(1000, "done");
          }
        }
        new Client(url);
    """,
    "awaits the echo in an async function": """
        const socket = new WebSocket(url);
        socket.onclose = (e) => console.log(e.code, e.reason, e.wasClean);
        const next = (type) => new Promise((resolve) => socket.addEventListener(
          type, resolve, { once: true }));
        (async () => {
          await next("open");
          socket.send("Hello Server!");
          const { data } = await next("message");
          console.log(data);
          socket.close(1000, "done");
        })();
    """,
    "closes in a zero timer set by the message listener": """
        const socket = new WebSocket(url);
        socket.onopen = () => socket.send("Hello Server!");
        socket.onmessage = (e) => {
          console.log(e.data);
          setTimeout(() => socket.close(1000, "done"), 0);
        };
        socket.onclose = (e) => console.log(e.code, e.reason, e.wasClean);
    """,
    "polls a flag every 20 ms": """
        let echo = null;
        const socket = new WebSocket(url);
        socket.onopen = () => socket.send("Hello Server!");
        socket.onmessage = (e) => { echo = e.data; console.log(echo); };
        socket.onclose = (e) => console.log(e.code, e.reason, e.wasClean);
        const poll = setInterval(() => {
          if (echo !== null) { clearInterval(poll); socket.close(1000, "done"); }
        }, 20);
    """,
}


@pytest.mark.parametrize("code", RIGHT.values(), ids=RIGHT.keys())
def test_right_answers_pass(page, lab, code):
    verdict = check(page, lab, code)
    assert verdict.passed, verdict
    assert "the server saw a browser (Origin http://127.0.0.1:" in verdict.message


LISTENERS = """
    socket.addEventListener('close', (e) => console.log(e.code, e.reason, e.wasClean));
"""
WRONG = {
    "the learner copy's placeholder": (
        'const socket = new WebSocket(url);\nthrow new Error("not done yet: your code here");',
        "browser_client: not done yet",
    ),
    "a typo: a method that does not exist": (
        "const socket = new WebSocket(url);\n"
        "socket.addEventListener('open', () => socket.sendText('Hello Server!'));",
        "your code threw TypeError: socket.sendText is not a function in the page; "
        "the server saw: no message; still open",
    ),
    "send before open": (
        "const socket = new WebSocket(url);\nsocket.send('Hello Server!');",
        "your code threw InvalidStateError: Failed to execute 'send' on 'WebSocket': "
        "Still in CONNECTING state. in the page",
    ),
    "a syntax error": (
        "const socket = new WebSocket(url;",
        "your code threw SyntaxError:",
    ),
    "no WebSocket at all": (
        "console.log('hello');",
        "the server saw no connection in 8 s",
    ),
    "the tutorial's hard-coded URL": (
        "const socket = new WebSocket('ws://127.0.0.1:9');\n" + LISTENERS,
        "the server saw no connection in 8 s",
    ),
    "two sockets": (
        "for (const n of [1, 2]) { const s = new WebSocket(url);"
        " s.onopen = () => { s.send('Hello Server!'); };"
        " s.onmessage = () => s.close(1000, 'done'); }",
        "the server saw 2 connections",
    ),
    "the wrong text": (
        "const socket = new WebSocket(url);\n"
        "socket.onopen = () => socket.send('Hello server');\n"
        "socket.onmessage = () => socket.close(1000, 'done');" + LISTENERS,
        "the server received ['Hello server'], not just ['Hello Server!']",
    ),
    "closes right after send, before the echo": (
        "const socket = new WebSocket(url);\n"
        "socket.onopen = () => { socket.send('Hello Server!'); socket.close(1000, 'done'); };"
        + LISTENERS,
        "the browser closed before the echo came back",
    ),
    "close() without a code": (
        "const socket = new WebSocket(url);\n"
        "socket.onopen = () => socket.send('Hello Server!');\n"
        "socket.onmessage = () => socket.close();" + LISTENERS,
        "the server received a close frame without a code",
    ),
    "another code and reason": (
        "const socket = new WebSocket(url);\n"
        "socket.onopen = () => socket.send('Hello Server!');\n"
        "socket.onmessage = () => socket.close(4000, 'bye');" + LISTENERS,
        "the server received close 4000 'bye', not 1000 'done'",
    ),
    "an error in a timer's callback": (
        "const socket = new WebSocket(url);\n"
        "socket.onopen = () => setTimeout(() => socket.sendText('Hello Server!'), 10);",
        "your code threw TypeError: socket.sendText is not a function in the page",
    ),
    "a code the browser refuses": (
        "const socket = new WebSocket(url);\n"
        "socket.onopen = () => socket.send('Hello Server!');\n"
        "socket.onmessage = () => socket.close(1001, 'done');",
        "your code threw InvalidAccessError:",
    ),
    "closes on a timer, with no message listener": (
        "const socket = new WebSocket(url);\n"
        "socket.onopen = () => { socket.send('Hello Server!');"
        " setTimeout(() => socket.close(1000, 'done'), 200); };" + LISTENERS,
        "the browser closed on a timer",
    ),
    "closes on a timer that fires after the echo": (
        "const socket = new WebSocket(url);\n"
        "socket.onopen = () => { socket.send('Hello Server!');"
        " setTimeout(() => socket.close(1000, 'done'), 1500); };\n"
        "socket.onmessage = (e) => console.log(e.data);" + LISTENERS,
        "the browser closed on a timer, not when the echo came back",
    ),
    "closes on a timer that fires about when the echo comes": (
        "const socket = new WebSocket(url);\n"
        "socket.onopen = () => { socket.send('Hello Server!');"
        " setTimeout(() => socket.close(1000, 'done'), 450); };\n"
        "socket.onmessage = (e) => console.log(e.data);" + LISTENERS,
        "the browser closed on a timer",
    ),
    "awaits a sleep, then closes": (
        "const socket = new WebSocket(url);\n"
        "const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));\n"
        "socket.onopen = async () => { socket.send('Hello Server!');"
        " await sleep(1500); socket.close(1000, 'done'); };\n"
        "socket.onmessage = (e) => console.log(e.data);" + LISTENERS,
        "the browser closed on a timer, not when the echo came back",
    ),
    "closes on the page's own timer, long after the echo": (
        "const socket = new WebSocket(url);\n"
        "socket.onopen = () => { socket.send('Hello Server!');"
        " window.setTimeout(() => socket.close(1000, 'done'), 2500); };\n"
        "socket.onmessage = (e) => console.log(e.data);" + LISTENERS,
        "s after the echo came back, not when it came",
    ),
    "the close event not logged": (
        "const socket = new WebSocket(url);\n"
        "socket.onopen = () => socket.send('Hello Server!');\n"
        "socket.onmessage = (e) => { console.log(e.data); socket.close(1000, 'done'); };\n"
        "socket.onclose = () => console.log('Disconnected from server');",
        "the page never logged the close event's code, reason and wasClean",
    ),
}


@pytest.mark.parametrize("code, expected", WRONG.values(), ids=WRONG.keys())
def test_wrong_answers_fail_with_what_the_server_saw(page, lab, code, expected):
    verdict = check(page, lab, code)
    assert not verdict.passed
    assert expected in str(verdict), verdict


TIMERS = [
    "closes on a timer, with no message listener",
    "closes on a timer that fires after the echo",
    "closes on a timer that fires about when the echo comes",
    "awaits a sleep, then closes",
    "closes on the page's own timer, long after the echo",
]


@pytest.mark.parametrize("name", TIMERS)
def test_a_close_on_a_timer_is_told_to_close_when_the_echo_comes(page, lab, name):
    """The relay holds the echo back 0.2 to 0.7 s, at random: a timer set before it fires
    before it, or after it (the page says the close ran on that timer), or late after it."""
    verdict = check(page, lab, WRONG[name][0])
    assert not verdict.passed
    assert verdict.hint == browser.ON_TIMER, verdict


def test_a_right_answers_close_is_prompt_and_on_no_timer(page, lab):
    """What the page tells the check of a right answer's close()."""
    attempt = attempt_in_page(page, lab, RIGHT["the tutorial's listeners"])
    [call] = attempt.close_details
    assert (call.heard, call.timer_ms) == (1, None)
    assert call.after_ms is not None and call.after_ms <= 1000 * browser.PROMPT


def test_the_relay_holds_each_reply_back_for_a_random_time(server):
    from websockets.sync.client import connect

    recorder = browser.start_recorder(server.echo_url, delay=(0.3, 0.4))
    try:
        with connect(recorder.url) as ws:
            start = time.monotonic()
            ws.send("a")
            assert ws.recv(timeout=5) == "Echo: a"
            assert 0.3 <= time.monotonic() - start < 5
    finally:
        recorder.stop()


def test_an_answer_that_never_closes_fails_after_the_timeout(page, lab, short):
    code = "const socket = new WebSocket(url);\nsocket.onopen = () => socket.send('Hello Server!');"
    verdict = check(page, lab, code)
    assert not verdict.passed
    assert "the server received 'Hello Server!', but after 2 s the connection is still open" in (
        verdict.message
    )
    assert "socket.close(1000, 'done')" in verdict.hint


def test_stopping_a_run_closes_its_sockets_and_cancels_its_timers(page, lab, short):
    """A client that reconnects forever stops when its run is over (the box stops it)."""
    code = (
        "const open = () => { const s = new WebSocket(url);"
        " s.onclose = () => setTimeout(open, 50); };\n"
        "open();\nsetInterval(() => console.log('tick'), 20);"
    )
    attempt = attempt_in_page(page, lab, code)  # waits for its first close: none comes
    recorder = lab[1].recorder
    assert len(recorder.seen(attempt.run)) == 1
    page.evaluate("window.stopRun()")
    page.wait_for_timeout(300)  # a reconnection or a tick would come within this
    seen = recorder.seen(attempt.run)
    assert [(s.close_code, s.close_reason) for s in seen] == [(1000, "run stopped")]
    ticks = page.evaluate("window.reports.filter(([kind]) => kind === 'log').length")
    page.wait_for_timeout(100)
    assert page.evaluate("window.reports.filter(([kind]) => kind === 'log').length") == ticks


def test_a_stopped_lab_server_is_named(page, chromium_path):
    from rtlab import start_server

    server = start_server()
    setup = browser.Lab(browser.start_recorder(server.echo_url))
    server_url = server.http_url
    try:
        with start_server() as other:  # a page to run in, of a web origin
            server.stop()
            lab = (other, setup)
            assert other.http_url != server_url
            verdict = check(page, lab, RIGHT["the tutorial's listeners"])
    finally:
        browser.stop(setup)
    assert not verdict.passed
    assert "the lab server could not be reached (ConnectionRefusedError" in verdict.message


def test_the_box_is_one_deterministic_line_and_stops_its_relay(server):
    box = browser.js_exercise(server, "browser_client", "\nconst socket = new WebSocket(url);\n")
    assert repr(box) == (
        "<JavaScript exercise browser_client: press Run to run it in this browser tab>"
    )
    assert box.code == "const socket = new WebSocket(url);\n"
    assert box.url == box.lab.recorder.url
    assert box.lab.recorder.running
    box.close()
    assert not box.lab.recorder.running


def test_a_learner_copys_box_says_not_done_yet_before_any_run(server):
    placeholder = 'throw new Error("not done yet: your code here");'
    box = browser.js_exercise(server, "browser_client", placeholder)
    try:
        assert repr(box) == (
            "<JavaScript exercise browser_client: press Run to run it in this browser tab>\n"
            f"❌ browser_client: not done yet\n   Hint: {browser.CLIENT_NUDGE}"
            " (rtlab.hint() shows the recipe)"
        )
    finally:
        box.close()


def test_a_run_without_a_page_ends_in_a_verdict(server, short):
    """No browser renders the box (nbval, a closed tab): Run still ends, with a ❌."""
    box = browser.js_exercise(server, "browser_client", "const socket = new WebSocket(url);")
    try:
        box.run()
        assert box.running
        assert box.graded.wait(10)
        assert not box.running
        assert box.verdict.startswith("❌ browser_client: the server saw no connection in 2 s")
    finally:
        box.close()


def test_page_reports_reach_only_the_current_attempt():
    box = JsBox("demo", "x", "ws://127.0.0.1:9/", lambda attempt: "graded")
    first = Attempt("old", "x")
    box.attempt = first
    box._handle_message(None, {"event": "report", "run": "old", "kind": "error", "text": "E"}, [])
    box._handle_message(None, {"event": "report", "run": "new", "kind": "error", "text": "F"}, [])
    assert first.errors == ["E"]


def test_the_page_says_what_it_had_heard_when_the_code_closed(page, lab):
    """The server may send the echo before an early close frame reaches it (a race CI lost
    once): the page's own count of messages at close() decides, not the server's order."""
    early = attempt_in_page(page, lab, WRONG["closes right after send, before the echo"][0])
    late = attempt_in_page(page, lab, RIGHT["the tutorial's listeners"])
    assert (early.close_calls, late.close_calls) == ([0], [1])
