"""The pages for a keyboard, a screen reader, zoom and high contrast (WCAG 2.2 AA), in real
Chromium: controls named as a screen reader names them, live regions that say what
arrives without reading a whole log out, focus that stays where the keyboard put it,
text contrast of 4.5:1 or more, no information by colour alone, pages that fit a
320 px wide window, and landmarks a screen reader jumps between: every page's content
in a banner, a main, a navigation or a complementary, one level-1 heading, and no two
landmarks of one kind with one name. Each test pins one fix; axe-core is not needed to
run them."""

from __future__ import annotations

import re
import time

import pytest

import rtlab
from tests.cli.test_cli import start, wait_for_line
from tests.e2e.test_browser import ws_base

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

WAIT = 30_000  # ms: a hang guard for a loaded machine, never a speed claim
PY_WAIT = 30.0


def expect(target):
    """Playwright's expect, imported late: without Playwright the browser fixture skips."""
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


@pytest.fixture
def served():
    process = start("serve", "--port", "0")
    url = wait_for_line(process, r"browser page\s+(http://127\.0\.0\.1:\d+/)").group(1)
    yield url
    process.kill()
    process.wait(timeout=30)


def chat(browser, url: str, user: str, room: str = "lobby", width: int = 1100):
    page = browser.new_page(viewport={"width": width, "height": 800})
    page.goto(f"{url}?user={user}&room={room}")
    expect(page.locator("#status")).to_have_class("open", timeout=WAIT)
    expect(page.locator("#log li span", has_text=f"you joined {room}")).to_have_count(
        1, timeout=WAIT
    )
    return page


def record_announcements(page, selector: str) -> None:
    """Every text the live region ``selector`` is given, in window.said."""
    page.evaluate(
        """(selector) => {
            const region = document.querySelector(selector);
            window.said = [];
            new MutationObserver(() => said.push(region.textContent))
                .observe(region, {childList: true, characterData: true, subtree: true});
        }""",
        selector,
    )


# A landmark in a line of an ARIA snapshot, at any depth: its role, and its name if any.
LANDMARK = re.compile(
    r"^\s*- (banner|main|navigation|complementary|contentinfo|region|search|form)"
    r'(?: "((?:[^"\\]|\\.)*)")?:?$'
)


def landmark(line: str) -> tuple[str, str | None] | None:
    match = LANDMARK.match(line)
    if not match or (match[1] in ("region", "form") and match[2] is None):
        return None  # a region or a form is a landmark only when it has a name
    return match[1], match[2]


def landmarks(page) -> list[tuple[str, str | None]]:
    """The page's landmarks as a screen reader lists them, after checking that nothing
    is outside them: the first level of the page's accessibility tree (hidden parts out,
    plain <div>s flattened) must be landmarks alone, with one main and one level-1
    heading, and landmarks of one role must have different names."""
    snapshot = page.locator("body").aria_snapshot()
    top = [line for line in snapshot.splitlines() if line.startswith("- ")]
    assert [line for line in top if not landmark(line)] == [], snapshot
    found = [mark for line in snapshot.splitlines() if (mark := landmark(line))]
    assert [role for role, _ in found].count("main") == 1, found
    assert len(found) == len(set(found)), found
    expect(page.get_by_role("heading", level=1)).to_have_count(1)
    return found


# -- the chat page ------------------------------------------------------------------------


def test_chat_announces_new_lines_politely_and_a_burst_in_few_words(browser, served):
    with rtlab.connect(ws_base(served), "dave") as dave:
        dave.emit("join-room", "lobby", ack=True)
        for i in range(20):
            dave.emit("send-message", {"roomId": "lobby", "message": f"old {i}"}, ack=True)
        page = chat(browser, served, "ann")
        # The log itself is no live region: a conversation put on screen (20 lines of
        # history here) is not read out; a polite region says what arrives.
        assert page.locator("#log").get_attribute("aria-live") in (None, "off")
        heard = page.locator("#heard")
        assert heard.get_attribute("aria-live") == "polite"
        expect(heard).to_have_text("you joined lobby", timeout=WAIT)
        assert "old" not in heard.text_content()
        record_announcements(page, "#heard")

        # One line from someone else: heard as it is. One's own: not heard again.
        dave.emit("send-message", {"roomId": "lobby", "message": "hello ann"}, ack=True)
        expect(heard).to_have_text("dave: hello ann", timeout=WAIT)
        page.locator("#text").fill("hi dave")
        page.locator("#text").press("Enter")
        expect(page.locator("#log li.mine span")).to_have_text(["ann: hi dave"], timeout=WAIT)

        # A burst of 25: a few announcements, not 25, and the last says how many and what.
        started = time.monotonic()
        for i in range(25):
            dave.emit("send-message", {"roomId": "lobby", "message": f"burst {i}"})
        expect(page.locator("#log li span", has_text="dave: burst 24")).to_have_count(
            1, timeout=WAIT
        )
        expect(heard).to_contain_text("dave: burst 24", timeout=WAIT)
        seconds = time.monotonic() - started
        said = page.evaluate("said")
        assert "ann: hi dave" not in said
        assert 1 <= len(said) <= seconds + 3, said
        assert all(len(text) < 200 for text in said), said
        assert any("new lines; the last: dave: burst" in text for text in said), said

        # Back and forth between rooms: the log is drawn again, nothing is read out.
        page.locator("#room").fill("second")
        page.locator("#join").click()
        expect(heard).to_have_text("you joined second", timeout=WAIT)
        before = len(page.evaluate("said"))
        page.locator('#rooms button[data-room="lobby"]').click()
        expect(page.locator("#chat-title")).to_have_text("lobby")
        page.wait_for_timeout(1500)  # a polite region's next turn: nothing came
        assert len(page.evaluate("said")) == before


def test_chat_keeps_the_keyboard_focus_on_the_conversation_list(browser, served):
    with rtlab.connect(ws_base(served), "dave") as dave:
        dave.emit("join-room", "lobby", ack=True)
        page = chat(browser, served, "ann")
        page.locator("#room").fill("second")
        page.locator("#room").press("Enter")
        expect(page.locator("#chat-title")).to_have_text("second", timeout=WAIT)
        expect(page.locator("#text")).to_be_focused(timeout=WAIT)  # joined: ready to type

        # The focus order by Tab: the forms, the conversations, then the conversation.
        page.locator("#room").focus()  # #user before it is disabled while connected
        order = ["room"]
        for _ in range(8):
            page.keyboard.press("Tab")
            order.append(
                page.evaluate("document.activeElement.id || document.activeElement.textContent")
            )
        assert order == [
            "room",
            "join",
            "disconnect",
            "dm-user",
            "dm-open",
            "#lobby",
            "#second",
            "leave",
            "text",
        ]

        # Enter on #lobby shows it and the focus stays on #lobby; Tab goes on to #second.
        page.locator("#dm-open").focus()
        page.keyboard.press("Tab")
        page.keyboard.press("Enter")
        expect(page.locator("#chat-title")).to_have_text("lobby")
        lobby = page.get_by_role("button", name="#lobby", exact=True)
        expect(lobby).to_be_focused()
        assert lobby.get_attribute("aria-current") == "true"
        page.keyboard.press("Tab")
        expect(page.locator('#rooms button[data-room="second"]')).to_be_focused()

        # A message in another room redraws the list (its unread count): focus stays.
        dave.emit("join-room", "second", ack=True)
        dave.emit("send-message", {"roomId": "second", "message": "psst"}, ack=True)
        expect(page.get_by_role("button", name="#second 1 unread")).to_be_focused(timeout=WAIT)

        # Leaving the last conversation: the focus goes where another is joined.
        for room in ("lobby", "second"):
            page.locator(f'#rooms button[data-room="{room}"]').click()
            page.get_by_role("button", name="Leave").press("Enter")
        expect(page.locator("#room")).to_be_focused()


def test_chat_page_is_all_in_landmarks_the_conversation_its_main(browser, served, classroom):
    from rtlab.core.tokens import issue

    page = browser.new_page(viewport={"width": 1100, "height": 800})
    page.goto(served)  # no name yet: the forms, and an empty conversation
    expect(page.get_by_role("textbox", name="Name")).to_be_focused(timeout=WAIT)
    assert landmarks(page) == [  # no people to show
        ("banner", None),
        ("navigation", "Conversations"),
        ("main", "no room yet"),
    ]
    page.close()

    with rtlab.connect(ws_base(served), "dave") as dave:
        dave.emit("join-room", "lobby", ack=True)
        page = chat(browser, served, "ann")
        assert landmarks(page) == [
            ("banner", None),
            ("navigation", "Conversations"),
            ("main", "lobby"),
            ("complementary", "People"),
        ]
        banner = page.get_by_role("banner")
        expect(banner.get_by_role("status")).to_have_text("connected as ann")
        expect(banner.get_by_role("textbox", name="Room")).to_have_value("lobby")
        expect(banner.get_by_role("textbox", name="Direct message to")).to_be_visible()
        nav = page.get_by_role("navigation", name="Conversations")
        expect(nav.get_by_role("button", name="#lobby")).to_be_visible()
        main = page.get_by_role("main", name="lobby")
        expect(main.get_by_role("list", name="Messages")).to_contain_text("you joined lobby")
        expect(main.get_by_role("textbox", name="Message")).to_be_focused()
        people = page.get_by_role("complementary", name="People")
        expect(people.get_by_role("listitem")).to_have_text(["ann (you)", "dave"], timeout=WAIT)

    # A refusal is said inside the banner too, by the forms it concerns.
    wrong = issue("another secret", "ann", 3600, time.time())
    page.goto(f"{classroom.http_url}?token={wrong}")
    alert = page.get_by_role("banner").get_by_role("alert")
    expect(alert).to_contain_text("your token was rejected", timeout=WAIT)
    landmarks(page)


# The contrast of every piece of text on screen with what is behind it, as WCAG 2.2
# computes it: the text's colour, made lighter by its alpha and every ancestor's opacity,
# over the first background colour found going up (white when none).
CONTRASTS = """(root) => {
    const rgba = (css) => {
        const [r, g, b, a = 1] = css.match(/[\\d.]+/g).map(Number);
        return [r, g, b, a];
    };
    const over = ([r, g, b, a], under) => [r, g, b].map((v, i) => v * a + under[i] * (1 - a));
    const luminance = (rgb) => {
        const [r, g, b] = rgb.map((v) => {
            v /= 255;
            return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
        });
        return 0.2126 * r + 0.7152 * g + 0.0722 * b;
    };
    const backdrop = (el) => {
        const layers = [];
        for (let e = el; e; e = e.parentElement) {
            const bg = rgba(getComputedStyle(e).backgroundColor);
            if (bg[3] > 0) layers.push(bg);
            if (bg[3] === 1) break;
        }
        return layers.reverse().reduce((under, layer) => over(layer, under), [255, 255, 255]);
    };
    const shown = [];
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        const el = node.parentElement;
        if (!node.textContent.trim() || !el.checkVisibility()) continue;
        if (el.closest(".visually-hidden")) continue;
        if (el.getBoundingClientRect().width <= 1) continue;
        let opacity = 1;
        for (let e = el; e; e = e.parentElement) opacity *= Number(getComputedStyle(e).opacity);
        const [r, g, b, a] = rgba(getComputedStyle(el).color);
        const bg = backdrop(el);
        const fg = over([r, g, b, a * opacity], bg);
        const [l1, l2] = [luminance(fg), luminance(bg)].sort((x, y) => y - x);
        shown.push([el.tagName + "." + el.className + " " + node.textContent.trim().slice(0, 30),
                    Math.round(((l1 + 0.05) / (l2 + 0.05)) * 100) / 100]);
    }
    return shown;
}"""


def low_contrasts(page, root: str = "body") -> list:
    shown = page.locator(root).evaluate(CONTRASTS)
    assert shown
    return [(text, ratio) for text, ratio in shown if ratio < 4.5]


def test_chat_text_has_a_contrast_of_4_5_or_more_history_too(browser, served):
    with rtlab.connect(ws_base(served), "dave") as dave:
        dave.emit("join-room", "lobby", ack=True)
        dave.emit("send-message", {"roomId": "lobby", "message": "before ann came"}, ack=True)
        page = chat(browser, served, "ann")
        page.locator("#text").fill("mine")
        page.locator("#text").press("Enter")
        dave.emit("send-message", {"roomId": "lobby", "message": "after"}, ack=True)
        dave.emit("broadcast", "to all", ack=True)
        dave.emit("leave-room", "lobby", ack=True)
        expect(page.locator("#log li.history")).to_have_count(1, timeout=WAIT)
        expect(page.locator("#offline li")).to_have_count(1, timeout=WAIT)
        expect(page.locator("#log li.broadcast")).to_have_count(1, timeout=WAIT)
        assert low_contrasts(page) == []


def test_chat_tells_mine_and_the_status_apart_by_more_than_colour(browser, served):
    with rtlab.connect(ws_base(served), "dave") as dave:
        dave.emit("join-room", "lobby", ack=True)
        page = chat(browser, served, "ann")
        page.locator("#text").fill("mine")
        page.locator("#text").press("Enter")
        dave.emit("send-message", {"roomId": "lobby", "message": "theirs"}, ack=True)
        expect(page.locator("#log li.message")).to_have_count(1, timeout=WAIT)
        for forced in ("none", "active"):  # high contrast: the system's colours
            page.emulate_media(forced_colors=forced)
            bars = page.locator("#log li").evaluate_all(
                """items => items.map(li => [li.className,
                    parseFloat(getComputedStyle(li).borderLeftWidth),
                    getComputedStyle(li).borderLeftStyle])"""
            )
            mine = [width for kind, width, style in bars if kind == "mine" and style == "solid"]
            others = [width for kind, width, _ in bars if kind != "mine"]
            assert mine and min(mine) >= 3 and max(others) == 0, bars
        # The status is said in words; its coloured dot is not read out.
        snapshot = page.locator("header").aria_snapshot()
        assert "- status: connected as ann" in snapshot, snapshot
        page.locator("#disconnect").click()
        expect(page.locator("#status")).to_have_text("disconnected (1000, bye)", timeout=WAIT)
        assert "- status: disconnected (1000, bye)" in page.locator("header").aria_snapshot()


# -- the instructor's page ----------------------------------------------------------------

SECRET = "a11y-secret"


@pytest.fixture
def classroom():
    """A class server where ann passed e1 in 2 attempts and e2 in 1, bob fails e1 in 3."""
    from rtlab.core.progress import Report

    with rtlab.start_server(secret=SECRET) as server:
        progress = server.server.progress.store.progress
        server.call(
            lambda: [
                progress.record(Report(user, "x", exercise, passed, attempts, "k"))
                for user, exercise, passed, attempts in [
                    ("ann", "e1", True, 2),
                    ("ann", "e2", True, 1),
                    ("bob", "e1", False, 3),
                ]
            ]
        )
        yield server


def teacher(browser, server, width: int = 1100):
    from rtlab.core.tokens import issue

    token = issue(SECRET, "teach", 3600, time.time(), "instructor")
    page = browser.new_page(viewport={"width": width, "height": 800})
    page.goto(f"{server.http_url}teacher#token={token}")
    expect(page.locator("#status")).to_have_class("open", timeout=WAIT)
    expect(page.locator("#grid tbody tr")).to_have_count(2, timeout=WAIT)
    return page


def test_teacher_grid_is_a_named_table_with_headers_and_cells_in_words(browser, classroom):
    page = teacher(browser, classroom)
    expect(page.locator("#grid")).to_have_accessible_name(
        "Progress (✓ passed, ✗ failing, with attempts; · not tried)"
    )
    assert page.locator("#grid thead th").evaluate_all("ths => ths.map(th => th.scope)") == [
        "col",
        "col",
        "col",
    ]
    assert page.locator("#grid tbody th").evaluate_all("ths => ths.map(th => th.scope)") == [
        "row",
        "row",
    ]
    table = page.locator("#grid").aria_snapshot()
    for line in [
        '- columnheader "student"',
        '- columnheader "x/e1"',
        '- columnheader "x/e2"',
        '- cell "passed, 2 attempts"',
        '- cell "passed, 1 attempt"',
        '- cell "failing, 3 attempts"',
        '- cell "not tried"',
    ]:
        assert line in table, table
    rows = page.get_by_role("row")
    expect(rows.nth(1).get_by_role("rowheader")).to_have_text(re.compile("^ann"))
    expect(rows.nth(2).get_by_role("cell").nth(1)).to_have_accessible_name("not tried")
    # the cells' text stays what the grid shows (tests/e2e/test_classroom.py)
    assert page.locator("#grid tbody td").all_text_contents() == ["✓ 2", "✓ 1", "✗ 3", "·"]


def test_teacher_says_offline_in_words_and_its_text_has_contrast(browser, classroom):
    from rtlab.core.tokens import issue
    from rtlab.notebook.shared import SharedServer

    shared = SharedServer(classroom.url, issue(SECRET, "ann", 3600, time.time()))
    with rtlab.connect(shared, "ann"):
        page = teacher(browser, classroom)
        expect(page.locator("#online li")).to_have_text(["ann"], timeout=WAIT)
        ann, bob = page.locator("#grid tbody th").all()
        expect(ann).to_have_text("ann", timeout=WAIT)
        expect(bob).to_have_text("bob (offline)")
        expect(page.get_by_role("rowheader", name="bob (offline)")).to_have_count(1)
        assert page.locator("#grid tr.offline").evaluate_all(
            "rs => rs.map(r => r.dataset.user)"
        ) == ["bob"]
        assert low_contrasts(page) == []


def test_teacher_controls_are_named_and_its_status_is_announced(browser, classroom):
    page = teacher(browser, classroom)
    expect(page.get_by_role("status").first).to_have_text("live")
    assert page.locator("#status").get_attribute("role") == "status"
    message = page.get_by_role("textbox", name="Message to the whole class")
    message.fill("break")
    page.get_by_role("button", name="Send to everyone").click()
    expect(page.get_by_role("status").filter(has_text="sent to")).to_have_text(
        re.compile(r"^sent to \d+ connection\(s\)$"), timeout=WAIT
    )


def test_teacher_page_is_all_in_landmarks_the_token_box_in_the_banner(browser, classroom):
    page = browser.new_page(viewport={"width": 1100, "height": 800})
    page.goto(f"{classroom.http_url}teacher")
    banner = page.get_by_role("banner")
    token = banner.get_by_role("textbox", name="Instructor's token")
    expect(token).to_be_visible(timeout=WAIT)
    landmarks(page)
    # An empty token: refused, said in the banner, by the box.
    banner.get_by_role("button", name="Open").click()
    expect(banner.get_by_role("alert")).to_have_text(
        re.compile("^give an instructor's token"), timeout=WAIT
    )
    progress = "Progress (✓ passed, ✗ failing, with attempts; · not tried)"
    expected = [
        ("banner", None),
        ("main", None),
        ("region", progress),
        ("complementary", "The class"),
    ]
    assert landmarks(page) == expected
    page.close()

    page = teacher(browser, classroom)
    assert landmarks(page) == expected
    expect(page.get_by_role("banner").get_by_role("status")).to_have_text("live")
    main = page.get_by_role("main")
    expect(main.get_by_role("table", name=progress)).to_be_visible()
    expect(main.get_by_role("textbox", name="Message to the whole class")).to_be_visible()
    side = page.get_by_role("complementary", name="The class")
    expect(side.get_by_role("heading", name="Refusals")).to_be_visible()


# -- lesson 02's echo page, lesson 04's Socket.IO page ------------------------------------


def test_echo_page_controls_are_named_and_what_happens_is_announced(browser, served):
    page = browser.new_page()
    page.goto(served + "echo.html")
    expect(page.get_by_role("status")).to_have_text("open", timeout=WAIT)
    page.get_by_role("textbox", name="Message").fill("hello")
    page.get_by_role("button", name="Send").click()
    log = page.get_by_role("list", name="Log")
    assert log.get_attribute("aria-live") == "polite"
    expect(log.get_by_role("listitem").last).to_have_text("message: Echo: hello", timeout=WAIT)


def test_socketio_page_controls_are_named_and_what_happens_is_announced(browser):
    from rtlab.aio.socketio_chat import ClientMissing, client_bundle

    try:
        client_bundle()
    except ClientMissing as missing:
        pytest.skip(str(missing))
    with rtlab.start_socketio() as running:
        page = browser.new_page()
        page.goto(running.http_url + "?room=lobby")
        expect(page.get_by_role("status")).to_have_text("connected", timeout=WAIT)
        log = page.get_by_role("list", name="Log")
        assert log.get_attribute("aria-live") == "polite"
        expect(log.get_by_role("listitem").last).to_have_text("joined lobby", timeout=WAIT)
        page.get_by_role("textbox", name="Message").fill("hello")
        page.get_by_role("button", name="Send").click()
        expect(log.get_by_text("sent: hello", exact=True)).to_have_count(1, timeout=WAIT)


def test_echo_and_socketio_pages_have_a_banner_and_a_main(browser, served):
    from rtlab.aio.socketio_chat import ClientMissing, client_bundle

    page = browser.new_page()
    page.goto(served + "echo.html")
    expect(page.get_by_role("status")).to_have_text("open", timeout=WAIT)
    assert landmarks(page) == [("banner", None), ("main", None)]
    expect(page.get_by_role("banner").get_by_role("status")).to_have_text("open")
    main = page.get_by_role("main")
    expect(main.get_by_role("textbox", name="Message")).to_be_enabled()
    expect(main.get_by_role("list", name="Log")).to_be_visible()
    try:
        client_bundle()
    except ClientMissing as missing:
        pytest.skip(str(missing))
    with rtlab.start_socketio() as running:
        page.goto(running.http_url + "?room=lobby")
        expect(page.get_by_role("status")).to_have_text("connected", timeout=WAIT)
        assert landmarks(page) == [("banner", None), ("main", None)]
        expect(page.get_by_role("banner").get_by_role("status")).to_have_text("connected")
        main = page.get_by_role("main")
        expect(main.get_by_role("list", name="Log").get_by_text("joined lobby")).to_have_count(
            1, timeout=WAIT
        )


# -- 320 px wide (1280 px at 400% zoom): no page scrolls sideways -------------------------


def scrolls_sideways(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth > innerWidth")


def test_pages_fit_a_320_px_window(browser, served, classroom):
    from rtlab.core.progress import Report

    page = browser.new_page(viewport={"width": 320, "height": 640})
    page.goto(served + "echo.html")  # its first line is a long ws:// address
    expect(page.locator("#log li")).to_have_count(1, timeout=WAIT)
    assert not scrolls_sideways(page)
    page.goto(f"{served}?user=ann&room=lobby")
    expect(page.locator("#status")).to_have_class("open", timeout=WAIT)
    assert not scrolls_sideways(page)
    page.goto(f"{classroom.http_url}teacher")  # the token box
    expect(page.locator("#token")).to_be_visible()
    assert not scrolls_sideways(page)
    page.close()

    # A class with 32 exercises: the grid scrolls in its box, which the keyboard reaches.
    progress = classroom.server.progress.store.progress
    classroom.call(
        lambda: [progress.record(Report("ann", "x", f"e{i:02}", True, 1, "k")) for i in range(30)]
    )
    page = teacher(browser, classroom, width=320)
    expect(page.locator("#grid thead th")).to_have_count(33, timeout=WAIT)
    assert not scrolls_sideways(page)
    box = page.get_by_role("region", name=re.compile("^Progress"))
    assert box.evaluate("box => box.scrollWidth > box.clientWidth")
    box.focus()
    page.keyboard.press("ArrowRight")
    page.wait_for_function("document.getElementById('grid-box').scrollLeft > 0", timeout=WAIT)
