"""The chat page in real Chromium: two browser users and a Python user in one conversation.

Messages both ways, presence with last seen, typing shown and expired, direct messages,
history for a late joiner, several rooms, and reconnection after ``rtlab serve`` is
killed and started again: the indicator goes red then green, the rooms are joined again
with ``since`` and what was said meanwhile arrives once. Every wait is on a condition in
the page or in the Python client, with a generous hang guard; nothing is timed.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest

import rtlab
from rtlab.core.tokens import issue
from tests.cli.test_cli import start, wait_for_line
from tests.e2e.test_browser import CHROMIUM_ARGS, ws_base

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("RTLAB_ARTIFACTS") or ROOT / "test-artifacts")
WAIT = 30_000  # ms: a hang guard for a loaded machine, never a speed claim
PY_WAIT = 30.0  # s: the same for the Python client
ATTACK = "<img src=x onerror=alert(1)>"
SERVE_URL = r"browser page\s+(http://127\.0\.0\.1:(\d+)/)"


@pytest.fixture
def sync_api():
    return pytest.importorskip("playwright.sync_api")


@pytest.fixture
def browser(chromium_path, sync_api):
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def serve(data_dir: Path, port: int = 0):
    """``rtlab serve`` with room history on disk; the process, its page URL and its port."""
    process = start("serve", "--port", str(port), "--data-dir", str(data_dir))
    match = wait_for_line(process, SERVE_URL)
    return process, match.group(1), int(match.group(2))


def stop(process) -> None:
    if process.poll() is None:
        process.kill()
    process.wait(timeout=30)


@pytest.fixture
def served(tmp_path):
    process, url, _ = serve(tmp_path)
    yield url
    stop(process)


def expect(target):
    """Playwright's expect, imported late: without Playwright the browser fixture skips."""
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


class Chat:
    """One browser user's chat page, with the frames it sent on its WebSocket."""

    def __init__(self, browser, url: str, user: str, room: str = "lobby") -> None:
        self.page = browser.new_page(viewport={"width": 1100, "height": 800})
        self.sent: list[dict] = []
        self.dialogs: list[str] = []
        self.page.on("websocket", self._watch)
        self.page.on("dialog", self._dismiss)
        self.page.goto(f"{url}?user={user}&room={room}")
        expect(self.page.locator("#status")).to_have_class("open", timeout=WAIT)
        self.wait_for_line(f"you joined {room}")
        # Every text the typing line ever shows, so that a short-lived one is not missed.
        self.page.evaluate(
            """() => {
                const typing = document.getElementById("typing");
                window.typingShown = [];
                new MutationObserver(() => typingShown.push(typing.textContent))
                    .observe(typing, {childList: true, characterData: true, subtree: true});
            }"""
        )

    def saw_typing(self, text: str) -> None:
        """Wait until the typing line has shown ``text`` (it may have gone again since)."""
        self.page.wait_for_function(f"typingShown.includes({json.dumps(text)})", timeout=WAIT)

    def _dismiss(self, dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def _watch(self, ws) -> None:
        ws.on("framesent", lambda payload: self.sent.append(json.loads(payload)))

    def line(self, text: str):
        """The log lines that say exactly ``text`` (after their time)."""
        return self.page.locator("#log li span").filter(has_text=re.compile(f"^{re.escape(text)}$"))

    def wait_for_line(self, text: str, count: int = 1) -> None:
        expect(self.line(text)).to_have_count(count, timeout=WAIT)

    def lines(self) -> list[str]:
        return self.page.locator("#log li span").all_inner_texts()

    def say(self, text: str) -> None:
        """Type as a person does (one key at a time) and press Enter."""
        self.page.locator("#text").press_sequentially(text)
        self.page.locator("#text").press("Enter")

    def open(self, conversation: str) -> None:
        """Click a conversation in the list: ``lobby`` (a room) or ``@bob`` (direct messages)."""
        attribute = (
            f'data-dm="{conversation[1:]}"'
            if conversation[0] == "@"
            else (f'data-room="{conversation}"')
        )
        self.page.locator(f"#rooms button[{attribute}]").click()
        expect(self.page.locator("#rooms button[aria-current=true]")).to_have_attribute(
            attribute.split("=")[0], conversation.lstrip("@"), timeout=WAIT
        )

    def typing_sent(self) -> list[bool]:
        return [f["data"]["typing"] for f in self.sent if f.get("event") == "typing"]

    def wait_until(self, condition, what: str) -> None:
        """Let Playwright deliver the page's events until ``condition()`` holds (a hang guard)."""
        deadline = time.monotonic() + WAIT / 1000
        while not condition():
            assert time.monotonic() < deadline, f"{what}: not within {WAIT / 1000:.0f} s"
            self.page.wait_for_timeout(50)  # pumps Playwright's events: framesent lands here

    def expect_online(self, names: list[str]) -> None:
        expect(self.page.locator("#online li")).to_have_text(names, timeout=WAIT)


def test_two_browsers_and_python_chat_with_presence_typing_and_direct_messages(browser, served):
    with rtlab.connect(ws_base(served), "dave") as dave:
        dave.emit("join-room", "lobby", ack=True)
        alice = Chat(browser, served, "alice")
        alice.expect_online(["alice (you)", "dave"])
        bob = Chat(browser, served, "bob")
        bob.expect_online(["alice", "bob (you)", "dave"])
        alice.expect_online(["alice (you)", "bob", "dave"])  # presence, live
        came = dave.wait_for("presence", 2, timeout=PY_WAIT)
        assert [(p["userId"], p["online"]) for p in came] == [("alice", True), ("bob", True)]

        # alice types: bob's page and dave see it; Enter sends and ends it
        alice.page.locator("#text").press_sequentially("hello bob")
        bob.saw_typing("alice is typing…")
        assert dave.wait_for("typing", timeout=PY_WAIT)[0] == {
            "roomId": "lobby",
            "userId": "alice",
            "typing": True,
        }
        alice.page.locator("#text").press("Enter")
        bob.wait_for_line("alice: hello bob")
        expect(bob.page.locator("#typing")).to_have_text("", timeout=WAIT)
        alice.wait_until(lambda: "send-message" in [f["event"] for f in alice.sent], "sent")
        events = [f["event"] for f in alice.sent]
        before_send = events.index("send-message") - 1
        assert alice.sent[before_send] == {
            "event": "typing",
            "data": {"roomId": "lobby", "typing": False},
        }
        assert alice.typing_sent()[0] is True
        expect(alice.page.locator("#typing")).to_have_text("")  # never her own
        [got] = dave.wait_for("receive-message", timeout=PY_WAIT)
        assert (got["userId"], got["message"]) == ("alice", "hello bob")

        # bob answers from his page, dave from Python: everyone sees both, once
        bob.say("hi alice")
        dave.emit("send-message", {"roomId": "lobby", "message": "hi both"}, ack=True)
        for chat in (alice, bob):
            chat.wait_for_line("bob: hi alice")
            chat.wait_for_line("dave: hi both")
        messages = dave.wait_for("receive-message", 3, timeout=PY_WAIT)
        assert [(m["userId"], m["message"], m["seq"]) for m in messages] == [
            ("alice", "hello bob", 1),
            ("bob", "hi alice", 2),
            ("dave", "hi both", 3),
        ]
        assert alice.page.locator("#log li.mine span").all_inner_texts() == ["alice: hello bob"]

        # bob types and stops: after 2 s idle his page says typing=false by itself
        bob.page.locator("#text").press_sequentially("hmm")
        alice.saw_typing("bob is typing…")
        expect(alice.page.locator("#typing")).to_have_text("", timeout=WAIT)
        stopped = [
            {"event": "typing", "data": {"roomId": "lobby", "typing": typing}}
            for typing in (True, False)
        ]
        bob.wait_until(lambda: bob.sent[-2:] == stopped, "bob's page: typing true, then false")

        # dave says typing=true once and never again: the server expires it, the pages drop it
        dave.emit("typing", {"roomId": "lobby", "typing": True}, ack=True)
        for chat in (alice, bob):
            chat.saw_typing("dave is typing…")
        for chat in (alice, bob):
            expect(chat.page.locator("#typing")).to_have_text("", timeout=WAIT)

        # HTML in a message is text, in a room and in a direct message
        dave.emit("send-message", {"roomId": "lobby", "message": ATTACK}, ack=True)
        for chat in (alice, bob):
            chat.wait_for_line(f"dave: {ATTACK}")

        # direct messages: alice to dave from her page, dave back while she looks at the lobby
        alice.page.fill("#dm-user", "dave")
        alice.page.click("#dm-open")
        expect(alice.page.locator("#chat-title")).to_have_text("dave (direct messages)")
        expect(alice.page.locator("#people")).to_be_hidden()
        alice.say("psst, dave")
        [dm] = dave.wait_for("direct-message", timeout=PY_WAIT)
        assert (dm["from"], dm["to"], dm["message"]) == ("alice", "dave", "psst, dave")
        alice.wait_for_line("alice: psst, dave")
        alice.open("lobby")
        assert dave.emit("direct-message", {"to": "alice", "message": ATTACK}, ack=True) == {
            "delivered": 1
        }
        badge = alice.page.locator('#rooms button[data-dm="dave"] .unread')
        expect(badge).to_have_text("1 unread", timeout=WAIT)
        assert alice.line(f"dave: {ATTACK}").count() == 1  # the room's, not the DM
        alice.open("@dave")
        alice.wait_for_line(f"dave: {ATTACK}")
        expect(badge).to_have_count(0)
        assert alice.lines() == ["alice: psst, dave", f"dave: {ATTACK}"]
        assert bob.line(f"dave: {ATTACK}").count() == 1  # only the room's: a DM is private
        # a direct message to nobody connected is refused, and says so
        alice.page.fill("#dm-user", "nobody")
        alice.page.click("#dm-open")
        alice.say("anyone?")
        alice.wait_for_line("refused (unknown_user): 'nobody' is not connected here")

        # bob closes his page: he goes offline, with the time he was last seen
        alice.open("lobby")
        bob.page.close()
        alice.expect_online(["alice (you)", "dave"])
        expect(alice.page.locator("#offline li")).to_have_text(
            [re.compile(r"^bob, last seen \d")], timeout=WAIT
        )
        gone = dave.wait_for("presence", 3, timeout=PY_WAIT)[-1]
        assert (gone["userId"], gone["online"]) == ("bob", False)
        assert gone["lastSeen"].endswith("Z")
        alice.wait_for_line("bob left lobby")

        for chat in (alice, bob):
            assert chat.dialogs == []
        assert alice.page.locator("img").count() == 0
        assert not [line for line in alice.lines() if line.startswith("error")]
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        alice.page.screenshot(path=ARTIFACTS / "chat-browser.png", full_page=True)


def test_a_late_browser_user_gets_the_history_and_who_was_there(browser, served):
    with rtlab.connect(ws_base(served), "dave") as dave:
        dave.emit("join-room", "lobby", ack=True)
        with rtlab.connect(ws_base(served), "erin") as erin:
            erin.emit("join-room", "lobby", ack=True)
        for text in ["one", "two <b>bold?</b>", "three"]:
            dave.emit("send-message", {"roomId": "lobby", "message": text}, ack=True)

        alice = Chat(browser, served, "alice")
        assert alice.lines() == [
            "dave: one",
            "dave: two <b>bold?</b>",
            "dave: three",
            "you joined lobby",
        ]
        assert alice.page.locator("#log li.history").count() == 3
        assert alice.page.locator("#log b").count() == 0
        alice.expect_online(["alice (you)", "dave"])
        expect(alice.page.locator("#offline li")).to_have_text([re.compile(r"^erin, last seen \d")])
        # live after the history, each message once
        dave.emit("send-message", {"roomId": "lobby", "message": "four"}, ack=True)
        alice.wait_for_line("dave: four")
        assert alice.lines()[-2:] == ["you joined lobby", "dave: four"]
        assert alice.line("dave: three").count() == 1


def test_several_rooms_switch_count_unread_and_leave(browser, served):
    with rtlab.connect(ws_base(served), "dave") as dave:
        for room in ("lobby", "kitchen"):
            dave.emit("join-room", room, ack=True)
        alice = Chat(browser, served, "alice")
        alice.page.fill("#room", "kitchen")
        alice.page.click("#join")
        alice.wait_for_line("you joined kitchen")
        expect(alice.page.locator("#rooms button")).to_have_text(["#lobby", "#kitchen"])
        expect(alice.page.locator("#chat-title")).to_have_text("kitchen")
        alice.expect_online(["alice (you)", "dave"])

        dave.emit("send-message", {"roomId": "lobby", "message": "in the lobby"}, ack=True)
        dave.emit("send-message", {"roomId": "kitchen", "message": "in the kitchen"}, ack=True)
        alice.wait_for_line("dave: in the kitchen")
        lobby = alice.page.locator('#rooms button[data-room="lobby"]')
        expect(lobby.locator(".unread")).to_have_text("1 unread", timeout=WAIT)
        assert alice.line("dave: in the lobby").count() == 0
        alice.say("from the kitchen")
        [*_, mine] = dave.wait_for("receive-message", 3, timeout=PY_WAIT)
        assert (mine["roomId"], mine["message"]) == ("kitchen", "from the kitchen")

        alice.open("lobby")
        alice.wait_for_line("dave: in the lobby")
        expect(lobby.locator(".unread")).to_have_count(0)
        assert alice.line("dave: in the kitchen").count() == 0
        alice.say("back in the lobby")
        [*_, mine] = dave.wait_for("receive-message", 4, timeout=PY_WAIT)
        assert (mine["roomId"], mine["message"]) == ("lobby", "back in the lobby")

        alice.open("kitchen")
        alice.page.click("#leave")
        [left] = dave.wait_for("user-left", timeout=PY_WAIT)
        assert left == {"userId": "alice", "roomId": "kitchen"}
        expect(alice.page.locator("#rooms button")).to_have_text(["#lobby"])
        expect(alice.page.locator("#chat-title")).to_have_text("lobby")

        # Disconnect on purpose: red, and no reconnection planned; Join connects again
        alice.page.click("#disconnect")
        expect(alice.page.locator("#status")).to_have_text("disconnected (1000, bye)", timeout=WAIT)
        assert alice.page.inner_text("#retry") == ""
        assert alice.page.is_enabled("#user")
        [*_, gone] = dave.wait_for("user-left", 2, timeout=PY_WAIT)
        assert gone == {"userId": "alice", "roomId": "lobby"}
        alice.page.fill("#room", "lobby")
        alice.page.click("#join")
        alice.wait_for_line("you rejoined lobby")
        expect(alice.page.locator("#status")).to_have_text("connected as alice")
        assert [f["data"] for f in alice.sent if f["event"] == "join-room"][-1] == {
            "roomId": "lobby",
            "since": 2,  # the lobby's own numbers: "in the lobby", "back in the lobby"
        }


def test_the_page_reconnects_after_the_server_restarts_and_misses_nothing(browser, tmp_path):
    """Kill ``rtlab serve``, start it again on the same port with the same --data-dir.

    The page reaches the server through a proxy that the test freezes while the server
    is back: so the Python user's messages are certainly sent while the page is away,
    and reach it only through the rejoin's ``since``."""
    process, url, port = serve(tmp_path)
    proxy = rtlab.start_proxy(f"ws://127.0.0.1:{port}")
    try:
        with rtlab.connect(ws_base(url), "dave") as dave:
            for room in ("lobby", "kitchen"):
                dave.emit("join-room", room, ack=True)
            alice = Chat(browser, proxy.http_url, "alice")
            alice.page.fill("#room", "kitchen")
            alice.page.click("#join")
            alice.wait_for_line("you joined kitchen")
            dave.emit("send-message", {"roomId": "kitchen", "message": "before"}, ack=True)
            alice.wait_for_line("dave: before")

        status = alice.page.locator("#status")
        process.kill()  # SIGKILL: no goodbye; the journal on disk has every message
        process.wait(timeout=30)
        expect(status).to_have_class("closed", timeout=WAIT)
        expect(status).to_have_text(re.compile(r"^disconnected \(1006"))
        alice.wait_for_line("disconnected: code 1006")
        assert alice.page.is_disabled("#text")

        proxy.freeze()  # the page's next attempts reach nothing until thaw()
        process, url, port2 = serve(tmp_path, port)
        assert port2 == port
        with rtlab.connect(ws_base(url), "dave") as dave:
            for room in ("lobby", "kitchen"):
                dave.emit("join-room", room, ack=True)
            away = [("kitchen", "while you were away"), ("lobby", "in the lobby too")]
            for room, text in away:
                dave.emit("send-message", {"roomId": room, "message": text}, ack=True)
            assert status.get_attribute("class") == "closed"  # frozen: cannot be back yet
            proxy.thaw()

            expect(status).to_have_class("open", timeout=WAIT)
            assert status.inner_text() == "connected as alice"
            alice.wait_for_line("reconnected")
            alice.wait_for_line("you rejoined kitchen, 1 missed message(s) recovered")
            alice.wait_for_line("dave: while you were away")
            assert alice.line("dave: before").count() == 1  # not again from the history
            alice.expect_online(["alice (you)", "dave"])
            alice.open("lobby")
            alice.wait_for_line("you rejoined lobby, 1 missed message(s) recovered")
            alice.wait_for_line("dave: in the lobby too")

            # and live again, both ways
            seen = len(dave.events("receive-message"))  # dave's own, however many arrived
            alice.say("I am back")
            [*_, back] = dave.wait_for("receive-message", seen + 1, timeout=PY_WAIT)
            assert (back["userId"], back["roomId"], back["message"]) == (
                "alice",
                "lobby",
                "I am back",
            )
            dave.emit("send-message", {"roomId": "lobby", "message": "welcome back"}, ack=True)
            alice.wait_for_line("dave: welcome back")
            assert alice.lines().count("dave: in the lobby too") == 1
            joins = [f["data"] for f in alice.sent if f.get("event") == "join-room"]
            assert joins[:2] == ["lobby", "kitchen"]
            assert sorted(joins[2:], key=str) == [
                {"roomId": "kitchen", "since": 1},
                {"roomId": "lobby", "since": 0},
            ]
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            alice.page.screenshot(path=ARTIFACTS / "chat-reconnected.png", full_page=True)
    finally:
        proxy.stop()
        stop(process)


def test_with_a_token_the_page_is_who_the_token_names(browser):
    """``rtlab serve --secret``: ?token=... (no ?user) connects as the token's user."""
    secret = "a secret for this test"
    process = start("serve", "--port", "0", "--secret", secret)
    try:
        url = wait_for_line(process, SERVE_URL).group(1)
        tina = issue(secret, "tina", 600, time.time())
        page = browser.new_page()
        page.goto(f"{url}?token={tina}&room=kitchen")
        status = page.locator("#status")
        expect(status).to_have_text("connected as tina", timeout=WAIT)
        assert page.input_value("#user") == "tina"
        page.locator("#online li").filter(has_text="tina (you)").wait_for(timeout=WAIT)
        with rtlab.connect(
            ws_base(url), "ignored", token=issue(secret, "tom", 600, time.time())
        ) as tom:
            assert tom.emit("join-room", "kitchen", ack=True)["members"] == ["tina", "tom"]
    finally:
        stop(process)


def test_a_message_padded_with_blanks_cannot_pass_its_end_off_as_a_line_of_its_own(browser, served):
    """Braille blanks (U+2800) do not collapse like spaces: 120 of them push the rest of
    a message onto a line of its own, which must not start where a real line starts."""
    fake = "teacher to everyone: the quiz is cancelled"
    alice = Chat(browser, served, "alice")
    with rtlab.connect(ws_base(served), "mallory") as mallory:
        mallory.emit("join-room", "lobby", ack=True)
        message = {"roomId": "lobby", "message": "\u2800" * 120 + fake}
        mallory.emit("send-message", message, ack=True)
        alice.wait_for_line("mallory: " + message["message"])
    starts = alice.page.evaluate(
        """() => {
            const lines = [...document.querySelectorAll("#log li")];
            const first = lines[0].getBoundingClientRect().left;
            const item = lines.find(li => li.textContent.includes("the quiz is cancelled"));
            const range = document.createRange();
            range.selectNodeContents(item);
            const rects = [...range.getClientRects()].filter(r => r.width > 0);
            const tops = [...new Set(rects.map(r => Math.round(r.top)))];
            const starts = tops.map(top => Math.min(
                ...rects.filter(r => Math.round(r.top) === top).map(r => r.left)));
            return {line: item.querySelector("time").getBoundingClientRect().left - first,
                    next: starts.slice(1).map(left => left - first)};
        }"""
    )
    assert starts["next"], "the message did not wrap: the test shows nothing"
    assert all(left >= starts["line"] + 16 for left in starts["next"]), starts
