"""The chat pane's view model, driven with the server's events as plain data: no widgets."""

from __future__ import annotations

import subprocess
import sys

from rtlab.core.presence import MAX_SEEN
from rtlab.notebook.room_view import KEPT, LOG_LINES, RoomView, typing_line

LOBBY = "lobby"


def joined(user: str = "alice", **ack: object) -> RoomView:
    view = RoomView(user, LOBBY)
    view.connected = True
    view.join({"roomId": LOBBY, "members": ["alice", "bob"], **ack}, first=True)
    return view


def test_the_model_needs_no_widgets():
    code = "import sys, rtlab.notebook.room_view; print('ipywidgets' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr


def test_the_join_brings_members_who_was_here_and_the_history():
    view = joined(
        presence=[
            {"userId": "bob", "online": True, "lastSeen": None},
            {"userId": "carol", "online": False, "lastSeen": "2026-01-02T03:04:05.000Z"},
        ],
        history=[{"userId": "carol", "message": "earlier"}],
    )
    assert view.online == {"alice", "bob"}
    assert view.away == {"carol": "2026-01-02T03:04:05.000Z"}
    assert view.history == [("carol", "earlier")]
    assert [line.plain for line in view.lines] == ["⋯ 1 earlier messages", "carol: earlier"]
    assert list(view.messages) == []  # history is not a message received


def test_events_before_the_joins_answer_wait_for_it_then_apply_in_order():
    view = RoomView("alice", LOBBY)
    assert not view.presence("joined", {"roomId": LOBBY, "userId": "carol"})
    assert not view.presence("typing", {"roomId": LOBBY, "userId": "carol", "typing": True})
    view.join({"members": ["alice"]})
    assert view.online == {"alice", "carol"}
    assert view.typing == {"carol"}
    assert [line.plain for line in view.lines] == ["→ carol joined"]


def test_a_message_is_kept_ends_its_senders_typing_and_other_rooms_are_ignored():
    view = joined()
    view.presence("typing", {"roomId": LOBBY, "userId": "bob", "typing": True})
    assert typing_line(view.typing) == "bob is typing…"
    assert not view.message({"roomId": "kitchen", "userId": "bob", "message": "no"})
    assert view.message({"roomId": LOBBY, "userId": "bob", "message": "hi"})
    assert list(view.messages) == [("bob", "hi")]
    assert view.typing == set()


def test_typing_counts_only_the_others_who_are_online():
    view = joined()
    view.presence("typing", {"roomId": LOBBY, "userId": "alice", "typing": True})  # own tab
    view.presence("typing", {"roomId": LOBBY, "userId": "zoe", "typing": True})  # not here
    assert view.typing == set()


def test_leaving_goes_offline_with_the_time_the_presence_event_gives():
    view = joined()
    view.presence("typing", {"roomId": LOBBY, "userId": "bob", "typing": True})
    view.presence("left", {"roomId": LOBBY, "userId": "bob"})
    assert (view.online, view.typing, view.away) == ({"alice"}, set(), {"bob": None})
    seen = "2026-01-02T03:04:05.000Z"
    view.presence("presence", {"roomId": LOBBY, "userId": "bob", "online": False, "lastSeen": seen})
    assert view.away == {"bob": seen}
    view.presence("presence", {"roomId": LOBBY, "userId": "bob", "online": True})
    assert (view.online, view.away) == ({"alice", "bob"}, {})


def test_a_drop_forgets_the_room_until_the_join_answers_again():
    view = joined()
    assert view.dropped()
    assert not view.dropped()  # once
    assert (view.connected, view.online) == (False, set())
    assert view.back()
    assert not view.presence("joined", {"roomId": LOBBY, "userId": "carol"})  # waits
    view.join({"members": ["alice", "bob"]})
    assert view.online == {"alice", "bob", "carol"}
    assert view.end()
    assert not view.back()
    assert [line.plain for line in view.lines][-3:] == [
        "✔ reconnected",
        "→ carol joined",
        "✖ disconnected",
    ]


def test_direct_messages_and_notes_go_to_the_log_which_keeps_the_last_lines():
    view = joined()
    view.direct_message("bob", "alice", "psst")
    view.broadcast({"userId": "bob", "message": "all"})
    assert list(view.direct) == [("bob", "alice", "psst")]
    assert [line.kind for line in view.lines] == ["direct", "broadcast"]
    for i in range(LOG_LINES + 5):
        view.note(f"n{i}")
    assert len(view.lines) == LOG_LINES
    assert view.lines[-1].plain == f"n{LOG_LINES + 4}"
    assert view.summary() == "online=['alice', 'bob'], messages=0"


def test_a_flooded_room_keeps_the_last_messages_and_counts_them_all() -> None:
    """A student flooding a shared room must not fill every learner's kernel."""
    view = RoomView("alice", "lobby")
    view.join({"members": ["alice", "mallory"]})
    for n in range(KEPT + 5):
        assert view.message({"roomId": "lobby", "userId": "mallory", "message": str(n)})
        view.direct_message("mallory", "alice", str(n))
    assert view.received == KEPT + 5
    assert len(view.messages) == KEPT and view.messages[0] == ("mallory", "5")
    assert len(view.direct) == KEPT and view.direct[-1] == ("mallory", "alice", str(KEPT + 4))
    assert len(view.lines) == LOG_LINES


def test_users_gone_are_remembered_as_the_server_does_the_last_ones() -> None:
    """A student joining and leaving under ever new names must not fill the pane."""
    view = RoomView("alice", "lobby")
    view.join({"members": ["alice"]})
    for n in range(MAX_SEEN + 5):
        view.presence("joined", {"roomId": "lobby", "userId": f"u{n}"})
        view.presence("left", {"roomId": "lobby", "userId": f"u{n}"})
        view.presence("presence", {"roomId": "lobby", "userId": f"u{n}", "online": False})
    assert len(view.away) == MAX_SEEN
    assert "u4" not in view.away and "u5" in view.away and f"u{MAX_SEEN + 4}" in view.away
    assert view.online == {"alice"}
