"""The room store of a server without Redis (local_rooms.py): its markers, raised at once.

A user's first session in a room raises ``Namespace.joined`` before it is among the
members (so the members already there are the ones told), and only their last session
leaving raises ``Namespace.gone``; the chat app's announcements follow from them, in
the order this store always told them.
"""

from __future__ import annotations

from typing import Any

import rtlab
from tests.aio.test_chat import flushed, joined


def test_the_markers_come_with_a_users_first_session_in_and_last_session_out(server):
    ns = server.server.namespace("/")
    marks: list[tuple[Any, ...]] = []

    def on_joined(room: str, user: str, when: str) -> None:
        marks.append(("joined", room, user, ns.users(room)))

    def on_gone(room: str, user: str, when: str, died: bool) -> None:
        marks.append(("gone", room, user, died, ns.users(room)))

    server._background.call(ns.on_joined.append, on_joined)
    server._background.call(ns.on_gone.append, on_gone)
    alice, tab, bob = joined(server, "alice"), joined(server, "alice"), joined(server, "bob")
    tab.close()  # alice still has a session there: no marker
    rtlab.wait_until(
        lambda: server._background.call(lambda: len(ns.rooms.members("lobby"))) == 2,
        what="the tab out of the room",
    )
    alice.emit("leave-room", "lobby", ack=True)
    flushed(bob)
    assert marks == [
        ("joined", "lobby", "alice", []),  # told to the members already there: none
        ("joined", "lobby", "bob", ["alice"]),
        ("gone", "lobby", "alice", False, ["bob"]),
    ]
    alice.close()
    bob.close()


def test_a_departure_is_told_user_left_then_presence_then_typing(server):
    """One order with either store (test_redis.py has it across processes)."""
    alice, bob = joined(server, "alice"), joined(server, "bob")
    bob.emit("typing", {"roomId": "lobby", "typing": True}, ack=True)
    bob.emit("leave-room", "lobby", ack=True)
    alice.wait_for("presence", 2)
    said = [e.event for e in alice.events() if e.event in ("user-left", "typing", "presence")]
    assert said == ["presence", "typing", "user-left", "presence", "typing"]
    alice.close()
    bob.close()
