"""ChatPane and chat_panes against a real lab server: no mocks, nothing printed.

The widgets run without a kernel here (ipywidgets then talks to nobody), and the
front end's messages are fed to them the way the comm delivers them. A notebook
run by nbclient checks what a real kernel shows, and a browser test types into
the panes in a real JupyterLab.
"""

from __future__ import annotations

import html
import re
import time

import nbformat
import pytest

import rtlab
from rtlab import ChatPane, chat_panes
from rtlab.core.backoff import Reconnection
from rtlab.notebook.chatpane import LOG_EVERY, PaneRow
from rtlab.notebook.room_view import LOG_LINES, typing_line

ALL = ["alice", "bob", "carol"]


def pane_repr(
    user: str, online: list[str], messages: int = 0, status: str = "🟢 connected", extra: str = ""
) -> str:
    return (
        f"ChatPane(user={user!r}, room='lobby', status={status!r}, "
        f"online={online!r}, messages={messages}{extra})"
    )


def front_end_value(pane: ChatPane, text: str) -> None:
    """What the browser sends at each key in the box (continuous_update=True)."""
    pane.input._handle_msg(
        {
            "content": {"data": {"method": "update", "state": {"value": text}, "buffer_paths": []}},
            "buffers": [],
        }
    )


def front_end_custom(widget, content: dict) -> None:
    """A custom message from the browser, as the comm delivers it."""
    widget._handle_msg(
        {"content": {"data": {"method": "custom", "content": content}}, "buffers": []}
    )


def front_end_submit(pane: ChatPane, text: str) -> None:
    """Enter (or Send) in the browser: {"event": "submit", "text"}, then the emptied box."""
    front_end_custom(pane.input, {"event": "submit", "text": text})
    if text:
        front_end_value(pane, "")


def front_end_enter(pane: ChatPane, text: str) -> None:
    """Typing ``text`` and pressing Enter: the value, then the submit with the text."""
    front_end_value(pane, text)
    front_end_submit(pane, text)


@pytest.fixture(autouse=True)
def nothing_printed(capfd):
    """No test here may write to stdout or stderr, from any thread."""
    yield
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")


@pytest.fixture
def row(server):
    panes = chat_panes(server)
    yield panes
    panes.close()


def test_a_pane_connects_joins_and_shows_a_green_light(server):
    pane = ChatPane(server, "alice")
    try:
        assert pane.connected
        assert pane.status == "🟢 connected"
        assert pane.online == ["alice"]
        assert pane.messages == []
        assert "<b>alice</b>" in pane.header.value
        assert "#lobby" in pane.header.value
        assert "🟢 connected" in pane.header.value
        assert "alice" in pane.online_view.value
        assert repr(pane) == pane_repr("alice", ["alice"])
    finally:
        pane.close()
    assert not pane.connected
    assert "🔴 disconnected" in pane.header.value
    assert pane.input.disabled and pane.send_button.disabled


def test_a_pane_takes_a_url_a_room_and_a_namespace(server):
    pane = ChatPane(server.url, "dave", "kitchen", ns="/chat")
    try:
        assert (pane.room, pane.ns, pane.online) == ("kitchen", "/chat", ["dave"])
        pane.send("in the kitchen")
        assert pane.messages == [("dave", "in the kitchen")]
    finally:
        pane.close()


def test_three_panes_get_every_message_in_order(row):
    alice, bob, carol = row["alice"], row["bob"], row["carol"]
    assert alice.send("one") == {"roomId": "lobby", "seq": 1, "delivered": 3}
    assert alice.messages == [("alice", "one")]  # the sender's copy came before the ack
    assert bob.send("<b>x</b> & more") == {"roomId": "lobby", "seq": 2, "delivered": 3}
    assert carol.send("three") == {"roomId": "lobby", "seq": 3, "delivered": 3}
    expected = [("alice", "one"), ("bob", "<b>x</b> & more"), ("carol", "three")]
    for pane in row:
        assert pane.wait_for_messages(3) == expected
        assert pane.online == ALL
        assert pane.lines[-3:] == ["alice: one", "bob: <b>x</b> & more", "carol: three"]
        assert html.escape("<b>x</b> & more") in pane.log_view.value
        assert "<b>x</b> & more" not in pane.log_view.value


def test_joined_lines_follow_the_join_order(row):
    assert row["alice"].lines == ["→ bob joined", "→ carol joined"]
    assert row["bob"].lines == ["→ carol joined"]
    assert row["carol"].lines == []


def test_user_joined_and_user_left_update_online_and_log(server):
    alice = ChatPane(server, "alice")
    bob = ChatPane(server, "bob")
    try:
        assert bob.online == ["alice", "bob"]  # from the join's acknowledgement
        rtlab.wait_until(lambda: alice.online == ["alice", "bob"], what="bob online")
        assert alice.lines == ["→ bob joined"]
        assert "●</span> alice, " in alice.online_view.value
        assert "●</span> bob" in alice.online_view.value
        bob.close()
        rtlab.wait_until(lambda: alice.online == ["alice"], what="bob gone")
        assert alice.lines == ["→ bob joined", "← bob left"]
        dave = rtlab.connect(server, "dave")  # a plain client counts too
        dave.emit("join-room", "lobby", ack=True)
        dave.close()  # disconnecting leaves every room
        rtlab.wait_until(lambda: len(alice.lines) == 4, what="dave's two lines")
        assert alice.lines[2:] == ["→ dave joined", "← dave left"]
        assert alice.online == ["alice"]
    finally:
        alice.close()
        bob.close()


def test_enter_in_the_text_box_sends_what_it_carries(row):
    alice, bob = row["alice"], row["bob"]
    front_end_submit(alice, "")  # Enter (or Send) in an empty box: nothing
    front_end_value(alice, "typed <here>")  # the keys: not sent yet
    assert alice.input.value == "typed <here>"
    front_end_submit(alice, "typed <here>")  # Enter; the box empties itself
    assert alice.input.value == ""
    assert bob.wait_for_messages(1) == [("alice", "typed <here>")]
    front_end_enter(alice, "   ")  # blank: not sent
    front_end_custom(alice.input, {"event": "submit", "text": 3})  # not text: ignored
    front_end_custom(alice.input, {"event": "click"})  # not a submit: ignored
    alice.send("after")
    assert bob.wait_for_messages(2) == [("alice", "typed <here>"), ("alice", "after")]


def test_submit_from_code_sends_what_is_in_the_box_and_empties_it(row):
    alice, carol = row["alice"], row["carol"]
    alice.input.value = "held"  # as typing
    alice.input.submit()  # as pressing Enter
    assert alice.input.value == ""
    assert carol.wait_for_messages(1) == [("alice", "held")]
    assert not alice.send_button.disabled
    alice.input.value = "clicked"
    alice.send_button.click()  # as clicking Send
    assert alice.input.value == ""
    assert carol.wait_for_messages(2) == [("alice", "held"), ("alice", "clicked")]
    alice.send("next")
    assert carol.wait_for_messages(3)[1:] == [("alice", "clicked"), ("alice", "next")]  # once


def test_the_last_keys_may_come_after_enter_and_still_go_with_the_message(row):
    """The front end holds value changes while one is in flight; Enter carries the text.

    Here the kernel sees "hello wor", then Enter with the whole text, then the box
    emptied (the held-back "hello world" merged into that last update): the message
    is what the box held at Enter, not what the kernel last saw.
    """
    alice, bob = row["alice"], row["bob"]
    front_end_value(alice, "hello wor")
    front_end_custom(alice.input, {"event": "submit", "text": "hello world"})
    front_end_value(alice, "")
    assert bob.wait_for_messages(1) == [("alice", "hello world")]
    alice.send("next")
    assert bob.wait_for_messages(2) == [("alice", "hello world"), ("alice", "next")]
    assert alice.input.value == ""


def test_a_refusal_from_the_box_goes_to_the_log_not_to_a_cell(row):
    alice = row["alice"]
    front_end_enter(alice, "x" * 501)
    rtlab.wait_until(lambda: alice.lines[-1].startswith("⚠ not sent"), what="the refusal")
    assert "limit is 500" in alice.lines[-1]
    assert alice.messages == []


def test_send_raises_a_refusal_in_the_calling_cell_and_logs_it(row):
    alice = row["alice"]
    with pytest.raises(rtlab.AckError, match="limit is 500"):
        alice.send("x" * 501)
    assert alice.lines[-1].startswith("⚠ not sent: message is 501 characters")


def test_wait_for_messages_times_out_saying_how_many_came(row):
    with pytest.raises(TimeoutError, match=r"bob: 0 of 1 messages within 0\.1 s"):
        row["bob"].wait_for_messages(1, timeout=0.1)


def test_the_log_keeps_the_last_lines(row):
    alice, bob = row["alice"], row["bob"]
    for i in range(LOG_LINES + 5):
        alice.send(f"m{i}")
    bob.wait_for_messages(LOG_LINES + 5)
    assert len(bob.lines) == LOG_LINES
    assert bob.lines[-1] == f"alice: m{LOG_LINES + 4}"
    assert bob.log_view.value.count("<div>") == LOG_LINES + 1
    assert len(bob.messages) == LOG_LINES + 5  # the messages themselves are all kept


def test_broadcasts_show_in_the_log(row, server):
    dave = rtlab.connect(server, "dave")
    dave.emit("broadcast", "to everyone", ack=True)
    dave.close()
    rtlab.wait_until(lambda: "📢 dave: to everyone" in row["carol"].lines, what="the broadcast")
    assert row["carol"].messages == []


def test_the_server_stopping_turns_every_pane_red():
    server = rtlab.start_server()
    try:
        row = chat_panes(server)
        row["bob"].send("before")
    finally:
        server.stop()
    rtlab.wait_until(lambda: not any(p.connected for p in row), timeout=5, what="red lights")
    for pane in row:
        assert pane.status == "🔴 disconnected"
        assert "🔴 disconnected" in pane.header.value
        assert pane.lines[-1] == "✖ disconnected"
        assert pane.input.disabled
        assert repr(pane) == pane_repr(pane.user, [], 1, "🔴 disconnected")
        with pytest.raises(ConnectionError, match="disconnected after 1 of 2"):
            pane.wait_for_messages(2)
    with pytest.raises(ConnectionError):
        row["alice"].send("after")
    assert row["alice"].lines[-1] == "⚠ not sent: disconnected"
    front_end_enter(row["bob"], "typed after")
    assert row["bob"].lines[-1] == "⚠ not sent: disconnected"
    row.close()  # closing a closed row is fine


def test_reprs_are_deterministic_and_whole(row):
    row["alice"].send("hi")
    for pane in row:
        pane.wait_for_messages(1)
    alice = pane_repr("alice", ALL, 1)
    assert repr(row["alice"]) == alice
    assert row["alice"]._repr_mimebundle_()["text/plain"] == alice
    expected = "PaneRow(\n" + "".join(f"  {pane_repr(u, ALL, 1)},\n" for u in ALL) + ")"
    assert repr(row) == expected
    assert len(expected) > 110  # ipywidgets alone would cut text/plain at 110 characters
    bundle = row._repr_mimebundle_()
    assert bundle["text/plain"] == expected
    assert "application/vnd.jupyter.widget-view+json" in bundle


def test_chat_panes_is_a_row_of_panes(row):
    assert isinstance(row, PaneRow)
    assert [p.user for p in row.panes] == ALL
    assert list(row.children) == row.panes
    assert row["bob"] is row.panes[1]
    with pytest.raises(KeyError):
        row["mallory"]
    row.close()
    assert [p.status for p in row] == ["🔴 disconnected"] * 3
    assert row["alice"].lines[-1] == "✖ disconnected"


def test_a_failed_join_raises_and_leaves_nothing_open(server):
    with pytest.raises(rtlab.AckError, match="room id"):
        ChatPane(server, "alice", "no spaces allowed")
    rtlab.wait_until(lambda: server.clients == [], what="the connection closed")


# -- presence, typing, history, direct messages (issue 7) ----------------------------------

ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def test_who_left_stays_listed_with_a_hollow_dot_and_last_seen(server):
    alice = ChatPane(server, "alice")
    bob = ChatPane(server, "bob")
    carol = None
    try:
        rtlab.wait_until(lambda: alice.online == ["alice", "bob"], what="bob online")
        assert alice.offline == {}
        bob.close()
        rtlab.wait_until(lambda: (alice.offline.get("bob") or "").endswith("Z"), what="last seen")
        seen = alice.offline["bob"]
        assert ISO.fullmatch(seen)
        assert alice.online == ["alice"]
        assert "○</span> bob <span" in alice.online_view.value
        assert f"(seen {seen[11:19]})" in alice.online_view.value
        assert repr(alice) == pane_repr("alice", ["alice"], extra=", offline=['bob']")
        carol = ChatPane(server, "carol")  # learns it from the join's presence list
        assert carol.offline == {"bob": seen}
        assert carol.online == ["alice", "carol"]
        back = rtlab.connect(server, "bob")
        back.emit("join-room", "lobby", ack=True)
        rtlab.wait_until(lambda: carol.online == ["alice", "bob", "carol"], what="bob back")
        rtlab.wait_until(lambda: alice.offline == {} and carol.offline == {}, what="not offline")
        back.close()
    finally:
        for pane in (alice, bob, carol):
            if pane is not None:
                pane.close()


def test_keys_in_one_box_show_typing_in_the_others_until_idle(row, server):
    alice, bob, carol = row["alice"], row["bob"], row["carol"]
    dave = rtlab.connect(server, "dave")  # a plain client counts what goes over the wire
    dave.emit("join-room", "lobby", ack=True)
    bob.typing_idle = 0.3
    for text in ["h", "he", "hel"]:
        front_end_value(bob, text)
    for pane in (alice, carol):
        rtlab.wait_until(lambda pane=pane: pane.typing == ["bob"], what="bob typing")
        assert "bob is typing…" in pane.typing_view.value
        assert repr(pane) == pane_repr(pane.user, [*ALL, "dave"], extra=", typing=['bob']")
    assert bob.typing == []  # not told about itself
    # nothing more comes: idle, the pane says it stopped
    assert [e["typing"] for e in dave.wait_for("typing", 2)] == [True, False]
    for pane in (alice, carol):
        rtlab.wait_until(lambda pane=pane: pane.typing == [], what="bob stopped")
        assert "typing" not in pane.typing_view.value
    assert bob.input.value == "hel"  # typing is not sending
    assert alice.messages == []
    dave.close()


def test_enter_ends_typing_before_the_message(row, server):
    alice, bob = row["alice"], row["bob"]
    dave = rtlab.connect(server, "dave")
    dave.emit("join-room", "lobby", ack=True)
    front_end_value(bob, "hi")
    rtlab.wait_until(lambda: alice.typing == ["bob"], what="bob typing")
    front_end_submit(bob, "hi")
    assert alice.wait_for_messages(1) == [("bob", "hi")]
    assert alice.typing == []
    assert [e["typing"] for e in dave.wait_for("typing", 2)] == [True, False]
    dave.wait_for("receive-message")
    assert dave.emit("leave-room", "nowhere", ack=True) == {"roomId": "nowhere"}
    assert len(dave.events("typing")) == 2  # the message told nobody a second time
    dave.close()


def test_typing_from_another_client_shows_until_the_server_ends_it(row, server):
    alice = row["alice"]
    with rtlab.connect(server, "dave") as dave:
        dave.emit("join-room", "lobby", ack=True)
        rtlab.wait_until(lambda: "dave" in alice.online, what="dave online")
        dave.typing("lobby")
        rtlab.wait_until(lambda: alice.typing == ["dave"], what="dave typing")
        dave.typing("lobby", False)
        rtlab.wait_until(lambda: alice.typing == [], what="dave stopped")
        dave.typing("lobby")
        rtlab.wait_until(lambda: alice.typing == ["dave"], what="dave typing again")
    # dave disconnects mid-sentence: gone, and not typing any more
    rtlab.wait_until(lambda: alice.online == ALL, what="dave gone")
    assert alice.typing == []
    assert typing_line(alice.typing) == ""


def test_a_pane_shows_the_rooms_history_when_it_joins(server):
    with rtlab.connect(server, "dave") as dave:
        dave.emit("join-room", "lobby", ack=True)
        for i in range(3):
            dave.emit("send-message", {"roomId": "lobby", "message": f"m{i} <b>"}, ack=True)
        pane = ChatPane(server, "alice")
        try:
            assert pane.history == [("dave", f"m{i} <b>") for i in range(3)]
            assert pane.messages == []  # what came before is history, not news
            assert pane.lines == [
                "⋯ 3 earlier messages",
                "dave: m0 <b>",
                "dave: m1 <b>",
                "dave: m2 <b>",
            ]
            assert html.escape("m2 <b>") in pane.log_view.value
            dave.emit("send-message", {"roomId": "lobby", "message": "now"}, ack=True)
            assert pane.wait_for_messages(1) == [("dave", "now")]
            assert repr(pane) == pane_repr("alice", ["alice", "dave"], 1, extra=", history=3")
        finally:
            pane.close()


def test_direct_messages_show_in_the_panes_of_the_two_users_only(row, server):
    alice, bob, carol = row["alice"], row["bob"], row["carol"]
    assert alice.dm("bob", "psst <3") == {"delivered": 1}
    rtlab.wait_until(lambda: bob.direct == [("alice", "bob", "psst <3")], what="the DM")
    assert alice.direct == [("alice", "bob", "psst <3")]  # the sender's own copy
    assert bob.lines[-1] == "✉ alice → bob: psst <3"
    rtlab.wait_until(lambda: html.escape("psst <3") in bob.log_view.value, what="its line")
    with pytest.raises(rtlab.AckError, match="unknown_user"):
        alice.dm("zed", "anyone?")
    assert alice.lines[-1].startswith("⚠ not sent: 'zed' is not connected")
    assert bob.dm("alice", "ok") == {"delivered": 1}
    rtlab.wait_until(lambda: len(alice.direct) == 2, what="the answer")
    assert carol.direct == []
    assert alice.messages == bob.messages == []


def test_typing_line_names_who_types():
    assert typing_line([]) == ""
    assert typing_line(["bob"]) == "bob is typing…"
    assert typing_line(["carol", "bob"]) == "bob and carol are typing…"
    assert typing_line(["dave", "bob", "carol"]) == "bob, carol and dave are typing…"


# -- in a real kernel, and in a real JupyterLab ------------------------------------------

CELLS = [
    "import time\nimport rtlab\nserver = rtlab.start_server()",
    "row = rtlab.chat_panes(server)\nrow",
    "row['alice'].send('hello')\n"
    "row['bob'].input.value = 'hi <alice>'  # what typing in the box does\n"
    "row['bob'].send_button.click()  # and clicking Send\n"
    "for pane in row:\n"
    "    pane.wait_for_messages(2)\n"
    "print(row['carol'].messages)",
    # events arrive on the background thread while this cell runs and after it ends
    "dave = rtlab.connect(server, 'dave')\n"
    "dave.emit('join-room', 'lobby', ack=True)\n"
    "dave.emit('send-message', {'roomId': 'lobby', 'message': 'late'})\n"
    "dave.close()\n"
    "time.sleep(0.3)",
    "row['alice'].wait_for_messages(3)\nrtlab.wait_until(lambda: row['alice'].online == "
    "['alice', 'bob', 'carol'])\nrow['alice']",
    "server.stop()\nrtlab.wait_until(lambda: not any(p.connected for p in row))\nrow",
]


@pytest.mark.slow
def test_a_notebook_shows_only_the_deterministic_reprs(capfd):
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    NotebookClient(nb, timeout=60, kernel_name="python3", resources={"metadata": {}}).execute()
    capfd.readouterr()  # the kernel process's own start-up warnings; its cells are checked below

    def texts(cell):
        return [
            (o["output_type"], o.get("text") or o.get("data", {}).get("text/plain"))
            for o in cell.outputs
        ]

    row = "PaneRow(\n" + "".join("  {},\n" for _ in ALL) + ")"
    assert [texts(cell) for cell in nb.cells] == [
        [],
        [("execute_result", row.format(*(pane_repr(u, ALL) for u in ALL)))],
        [("stream", "[('alice', 'hello'), ('bob', 'hi <alice>')]\n")],
        [],
        [("execute_result", pane_repr("alice", ALL, 3, extra=", offline=['dave']"))],
        [
            (
                "execute_result",
                row.format(*(pane_repr(u, [], 3, "🔴 disconnected") for u in ALL)),
            )
        ],
    ]


# -- reconnection: red and green through a fault-injecting proxy ---------------------------


def test_a_pane_goes_red_on_a_drop_queues_what_is_typed_and_turns_green_again(server):
    fast = Reconnection(delay=0.05, delay_max=0.2)
    with rtlab.start_proxy(server) as proxy:
        alice = ChatPane(proxy, "alice", reconnection=fast)
        bob = ChatPane(server, "bob")
        try:
            rtlab.wait_until(lambda: alice.online == ["alice", "bob"], what="bob online")
            assert alice.send("before") == {"roomId": "lobby", "seq": 1, "delivered": 2}
            proxy.freeze()  # the reconnection attempts wait until thaw()
            proxy.cut()
            rtlab.wait_until(lambda: not alice.connected, what="alice red")
            assert alice.status == "🔴 disconnected"
            assert "🔴 disconnected" in alice.header.value
            assert alice.online == []
            assert alice.lines[-1] == "✖ disconnected"
            assert not alice.input.disabled  # typing goes on: the client queues
            assert alice.send("while away") is None  # queued, not refused
            front_end_enter(alice, "typed while away")
            assert alice.lines[-2:] == ["⏳ queued: while away", "⏳ queued: typed while away"]
            rtlab.wait_until(lambda: alice.queued == 2, what="two queued")
            assert repr(alice) == pane_repr("alice", [], 1, "🔴 disconnected")
            proxy.thaw()
            rtlab.wait_until(lambda: alice.connected, what="alice green")
            rtlab.wait_until(lambda: alice.online == ["alice", "bob"], what="online refreshed")
            assert "✔ reconnected" in alice.lines
            assert "🟢 connected" in alice.header.value
            expected = [("alice", "before"), ("alice", "while away"), ("alice", "typed while away")]
            assert bob.wait_for_messages(3) == expected
            assert alice.wait_for_messages(3) == expected
            rtlab.wait_until(lambda: alice.queued == 0, what="acks")
            bob.send("welcome back")
            assert alice.wait_for_messages(4)[-1] == ("bob", "welcome back")
            assert bob.wait_for_messages(4) == [*expected, ("bob", "welcome back")]
            assert not any(line.startswith("⚠") for line in alice.lines)
            assert repr(alice) == pane_repr("alice", ["alice", "bob"], 4)
        finally:
            alice.close()
            bob.close()
    assert alice.status == "🔴 disconnected"
    assert alice.input.disabled


def test_chat_panes_pass_client_options_and_only_closing_keeps_a_pane_red(server):
    row = chat_panes(server, ["alice", "bob"], reconnection=True, ping_interval=5, ping_timeout=5)
    try:
        assert row["alice"]._client.inner.reconnection == Reconnection()
    finally:
        row.close()
    assert [pane.status for pane in row] == ["🔴 disconnected"] * 2
    with pytest.raises(ConnectionError):
        row["alice"].send("too late")
    assert row["alice"].lines[-1] == "⚠ not sent: disconnected"


def test_without_reconnection_a_drop_is_for_good(server):
    with rtlab.start_proxy(server) as proxy:
        alice = ChatPane(proxy, "alice")
        try:
            proxy.cut()
            rtlab.wait_until(lambda: not alice.connected, what="alice red")
            with pytest.raises(ConnectionError):
                alice.send("lost")
            assert alice.lines[-2:] == ["✖ disconnected", "⚠ not sent: disconnected"]
            assert alice.input.disabled
        finally:
            alice.close()


def test_a_flood_of_messages_redraws_the_log_a_few_times_a_second_its_last_state_always(
    row, server
):
    """Each redraw sends the whole log to the browser: a classmate sending 60 long
    messages at once must not cost 60 of them, and the last one must still show."""
    bob = row["bob"]
    redraws = []  # when each redraw came
    bob.log_view.observe(lambda change: redraws.append(time.monotonic()), names="value")
    flooder = rtlab.connect(server, "mallory")
    try:
        flooder.emit("join-room", "lobby", ack=True)
        sent = [
            flooder.emit_soon("send-message", {"roomId": "lobby", "message": f"{i} " + "<" * 400})
            for i in range(60)
        ]
        for future in sent:
            future.result(timeout=10)
        rtlab.wait_until(lambda: bob.view.received == 60, what="the flood")
        rtlab.wait_until(lambda: html.escape("59 <") in bob.log_view.value, what="the last")
        assert bob.lines[-1] == "mallory: 59 " + "<" * 400
    finally:
        flooder.close()
    # The first at once, then one each LOG_EVERY at most (without: one per message).
    assert len(redraws) <= 2 + (redraws[-1] - redraws[0]) / LOG_EVERY
