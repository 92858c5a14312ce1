"""The chat page in real Chromium under a flood from ever new names: names are free on a
class's server, so what a page keeps per name or per message must have a bound
(rtlab/static/index.html: MAX_DMS, MAX_GONE, MAX_SEQS). The flood comes from Python
clients of ``rtlab serve --rate-limit off``; every wait is on a condition, with a
generous hang guard.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterator

import pytest

from rtlab.aio.client import EventClient
from tests.cli.test_cli import start, wait_for_line
from tests.e2e.test_browser import ws_base
from tests.e2e.test_chat_browser import WAIT, Chat, expect, stop

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

MAX_DMS, MAX_GONE, MAX_SEQS = 50, 1000, 1000  # the page's own
AT_ONCE = 50  # flooding connections open at once (the server allows 256 per address)


@pytest.fixture
def unlimited() -> Iterator[str]:
    process = start("serve", "--port", "0", "--rate-limit", "off")
    url = wait_for_line(process, r"browser page\s+(http://127\.0\.0\.1:\d+/)").group(1)
    yield url
    stop(process)


def flood(
    names: list[str],
    url: str,
    act: Callable[[EventClient], Awaitable[object]],
    at_once: int = AT_ONCE,
) -> None:
    """Each name connects, does ``act`` and leaves, ``at_once`` at a time, in a thread of
    its own (Playwright's sync API owns this one)."""

    async def one(name: str) -> None:
        client = await EventClient.connect(ws_base(url), name)
        try:
            await act(client)
        finally:
            await client.close()

    async def main() -> None:
        for start_at in range(0, len(names), at_once):
            await asyncio.gather(*(one(name) for name in names[start_at : start_at + at_once]))

    errors: list[BaseException] = []
    thread = threading.Thread(target=lambda: _run(main(), errors))
    thread.start()
    thread.join()
    assert not errors, errors


def _run(coro: Awaitable[None], errors: list[BaseException]) -> None:
    try:
        asyncio.run(asyncio.wait_for(coro, WAIT / 1000 * 4))
    except BaseException as error:  # reported by flood()
        errors.append(error)


def test_direct_messages_from_new_names_keep_the_last_conversations(browser, unlimited):
    alice = Chat(browser, unlimited, "alice")
    names = [f"dm{i:03}" for i in range(MAX_DMS + 20)]

    async def write(client: EventClient) -> None:
        await client.emit("direct-message", {"to": "alice", "message": "hi"}, ack=True)

    flood(names, unlimited, write)
    dms = alice.page.locator("#rooms button[data-dm]")
    expect(dms).to_have_count(MAX_DMS, timeout=WAIT)
    shown = dms.evaluate_all("buttons => buttons.map(b => b.dataset.dm)")
    assert shown == names[-MAX_DMS:]  # the oldest closed first
    expect(alice.page.locator("#rooms button[data-room=lobby]")).to_have_count(1)
    alice.open(f"@{names[-1]}")
    alice.wait_for_line(f"{names[-1]}: hi")


def test_people_gone_from_new_names_keep_the_last_ones(browser, unlimited):
    alice = Chat(browser, unlimited, "alice")
    names = [f"u{i:04}" for i in range(MAX_GONE + 30)]

    async def visit(client: EventClient) -> None:
        # Each join's answer lists up to 1,000 people gone: a hang guard, not a speed claim.
        await client.emit("join-room", "lobby", ack=True, timeout=WAIT / 1000)

    flood(names, unlimited, visit)
    gone = alice.page.locator("#offline li")
    expect(gone).to_have_count(MAX_GONE, timeout=WAIT)
    kept = {text.split(",")[0] for text in gone.all_inner_texts()}
    forgotten = set(names) - kept
    assert len(forgotten) == len(names) - MAX_GONE
    assert forgotten <= set(names[:AT_ONCE])  # the first gone (the first to visit)
    expect(alice.page.locator("#online li")).to_have_text(["alice (you)"])


def test_a_long_flood_of_messages_is_shown_once_each(browser, unlimited):
    """Past 2 x MAX_SEQS messages the page forgets the oldest seqs: what it shows stays
    each message once, in order."""
    alice = Chat(browser, unlimited, "alice")
    count = 2 * MAX_SEQS + 100

    async def talk(client: EventClient) -> None:
        await client.emit("join-room", "lobby", ack=True)
        for start_at in range(0, count, 100):
            sent = [
                client.emit("send-message", {"roomId": "lobby", "message": f"m{n}"}, ack=True)
                for n in range(start_at, start_at + 100)
            ]
            await asyncio.gather(*sent)

    flood(["dave"], unlimited, talk)
    alice.wait_for_line(f"dave: m{count - 1}")
    lines = [line for line in alice.lines() if line.startswith("dave: m")]
    assert lines == [f"dave: m{n}" for n in range(count - len(lines), count)]
    assert len(lines) >= 400  # the log shows its last 500 lines, a few of them notes
