"""The chat events of issue 7 over real sockets: presence, typing, history on join, DMs.

Each test starts a lab server (the ``server`` fixture) and talks to it with
synchronous clients (``rtlab.connect``). "Nothing arrived" is shown by an
acknowledged round trip: the server writes events to a connection before any later
acknowledgement on it, so once the ack is back, everything sent earlier is there.
"""

from __future__ import annotations

import re
from datetime import datetime

import pytest

import rtlab
from rtlab.aio.room_store import HISTORY
from rtlab.notebook.clients import Client

ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def flushed(*clients: Client) -> None:
    """An acknowledged round trip on each client: what was sent to it before has arrived."""
    for client in clients:
        assert client.emit("leave-room", "no-such-room", ack=True) == {"roomId": "no-such-room"}


def joined(server, user: str, room: str = "lobby") -> Client:
    client = rtlab.connect(server, user)
    client.emit("join-room", room, ack=True)
    return client


def short_typing(server, seconds: float) -> None:
    """Typing indicators expire after ``seconds`` on this server (5 s normally)."""
    server._background.call(setattr, server.server.app, "typing_expiry", seconds)


def refusal(client: Client, event: str, data) -> tuple[str, str]:
    with pytest.raises(rtlab.AckError) as caught:
        client.emit(event, data, ack=True)
    return caught.value.code, caught.value.message


# -- presence -----------------------------------------------------------------------------


def test_the_join_ack_has_presence_and_history_and_the_room_hears_of_the_joiner(server):
    alice = rtlab.connect(server, "alice")
    answer = alice.emit("join-room", "lobby", ack=True)
    assert answer == {
        "roomId": "lobby",
        "members": ["alice"],
        "seq": 0,
        "history": [],
        "presence": [{"userId": "alice", "online": True, "lastSeen": None}],
    }
    bob = joined(server, "bob")
    [event] = alice.wait_for("presence")
    assert event.keys() == {"roomId", "userId", "online", "lastSeen"}
    assert (event["roomId"], event["userId"], event["online"]) == ("lobby", "bob", True)
    assert ISO.fullmatch(event["lastSeen"])
    flushed(bob)
    assert bob.events("presence") == []  # the joiner learns from its ack, like user-joined
    alice.close()
    bob.close()


def test_two_tabs_of_one_user_are_online_once_and_offline_with_the_last(server):
    alice = joined(server, "alice")
    tab1 = joined(server, "bob")
    tab2 = joined(server, "bob")
    assert [e["online"] for e in alice.wait_for("presence")] == [True]
    tab1.emit("leave-room", "lobby", ack=True)
    flushed(alice)
    assert len(alice.events("presence")) == 1  # bob still has a tab in the room
    tab1.close()
    flushed(alice)
    assert len(alice.events("presence")) == 1
    tab2.close()  # the last tab disconnects: offline
    events = alice.wait_for("presence", 2)
    gone = events[1]
    assert (gone["userId"], gone["online"]) == ("bob", False)
    assert ISO.fullmatch(gone["lastSeen"])
    assert datetime.fromisoformat(gone["lastSeen"]) >= datetime.fromisoformat(events[0]["lastSeen"])
    assert alice.events("user-left")[-1].data == {"userId": "bob", "roomId": "lobby"}  # as before
    carol = rtlab.connect(server, "carol")
    answer = carol.emit("join-room", "lobby", ack=True)
    assert answer["presence"] == [
        {"userId": "alice", "online": True, "lastSeen": None},
        {"userId": "bob", "online": False, "lastSeen": gone["lastSeen"]},
        {"userId": "carol", "online": True, "lastSeen": None},
    ]
    assert answer["members"] == ["alice", "carol"]
    bob = joined(server, "bob")  # back: online again, no last seen while here
    back = alice.wait_for("presence", 4)[3]
    assert (back["userId"], back["online"]) == ("bob", True)
    assert {"userId": "bob", "online": True, "lastSeen": None} in carol.emit(
        "join-room", "lobby", ack=True
    )["presence"]
    for client in (alice, bob, carol):
        client.close()


def test_presence_is_per_room(server):
    alice = joined(server, "alice", "lobby")
    bob = joined(server, "bob", "dev")
    bob.emit("join-room", "lobby", ack=True)
    assert alice.wait_for("presence") == [
        {
            "roomId": "lobby",
            "userId": "bob",
            "online": True,
            "lastSeen": alice.events("presence")[0].data["lastSeen"],
        }
    ]
    bob.emit("leave-room", "dev", ack=True)
    flushed(alice)
    assert len(alice.events("presence")) == 1  # dev is not alice's business
    alice.close()
    bob.close()


# -- typing ------------------------------------------------------------------------------


def test_typing_reaches_the_others_once_and_stops_when_asked(server):
    alice, bob, carol = joined(server, "alice"), joined(server, "bob"), joined(server, "carol")
    on = {"roomId": "lobby", "typing": True}
    assert bob.emit("typing", on, ack=True) == on
    bob.emit("typing", on, ack=True)  # a renewal: nothing new to tell
    assert bob.emit("typing", {"roomId": "lobby", "typing": False}, ack=True)["typing"] is False
    for client in (alice, carol):
        assert client.wait_for("typing", 2) == [
            {"roomId": "lobby", "userId": "bob", "typing": True},
            {"roomId": "lobby", "userId": "bob", "typing": False},
        ]
    flushed(alice, bob, carol)
    assert len(alice.events("typing")) == 2
    assert bob.events("typing") == []  # not told about itself
    for client in (alice, bob, carol):
        client.close()


def test_typing_expires_on_its_own(server):
    short_typing(server, 0.2)
    alice, bob = joined(server, "alice"), joined(server, "bob")
    bob.emit("typing", {"roomId": "lobby", "typing": True}, ack=True)
    # nothing renews it: the server ends it by itself
    assert [e["typing"] for e in alice.wait_for("typing", 2, timeout=10)] == [True, False]
    bob.emit("typing", {"roomId": "lobby", "typing": True}, ack=True)  # and it can start again
    assert [e["typing"] for e in alice.wait_for("typing", 4, timeout=10)][2:] == [True, False]
    alice.close()
    bob.close()


def test_a_message_ends_typing_and_so_does_leaving(server):
    alice, bob = joined(server, "alice"), joined(server, "bob")
    bob.emit("typing", {"roomId": "lobby", "typing": True}, ack=True)
    bob.emit("send-message", {"roomId": "lobby", "message": "done"}, ack=True)
    assert [e["typing"] for e in alice.wait_for("typing", 2)] == [True, False]
    assert alice.wait_for("receive-message")[0]["message"] == "done"
    bob.emit("typing", {"roomId": "lobby", "typing": True}, ack=True)
    bob.close()  # disconnecting mid-sentence
    assert [e["typing"] for e in alice.wait_for("typing", 4)][2:] == [True, False]
    assert alice.wait_for("presence", 2)[1]["online"] is False
    events = [e.event for e in alice.events() if e.event in ("typing", "presence")]
    assert events[-2:] == ["presence", "typing"]  # then the indicator, as with Redis
    alice.close()


def test_a_message_without_typing_sends_no_typing_event(server):
    alice, bob = joined(server, "alice"), joined(server, "bob")
    bob.emit("send-message", {"roomId": "lobby", "message": "hi"}, ack=True)
    alice.wait_for("receive-message")
    flushed(alice)
    assert alice.events("typing") == []
    alice.close()
    bob.close()


@pytest.mark.parametrize(
    ("data", "code", "words"),
    [
        ("lobby", "invalid", "data must be an object"),
        ({"roomId": "lobby"}, "invalid", "typing must be true or false"),
        ({"roomId": "lobby", "typing": "yes"}, "invalid", "typing must be true or false"),
        ({"roomId": "no spaces", "typing": True}, "invalid", "roomId must be a room id"),
        ({"roomId": "elsewhere", "typing": True}, "not_member", "join 'elsewhere'"),
        ({"roomId": "nowhere", "typing": False}, "not_member", "join 'nowhere'"),
    ],
)
def test_bad_typing_gets_a_clear_refusal(server, data, code, words):
    alice, bob = joined(server, "alice"), joined(server, "bob", "elsewhere")
    found, message = refusal(alice, "typing", data)
    assert found == code and words in message
    flushed(alice, bob)
    assert bob.events("typing") == []
    # and the connection goes on serving
    assert alice.emit("typing", {"roomId": "lobby", "typing": True}, ack=True)["typing"]
    alice.close()
    bob.close()


# -- history on join ---------------------------------------------------------------------


def test_a_joiner_gets_the_last_messages_of_the_room_oldest_first(server):
    alice = joined(server, "alice")
    for i in range(HISTORY + 5):
        alice.emit("send-message", {"roomId": "lobby", "message": f"m{i}"}, ack=True)
    joined(server, "alice", "other").emit(
        "send-message", {"roomId": "other", "message": "elsewhere"}, ack=True
    )
    bob = rtlab.connect(server, "bob")
    history = bob.emit("join-room", "lobby", ack=True)["history"]
    assert HISTORY == 50
    assert [m["seq"] for m in history] == list(range(6, HISTORY + 6))
    assert [m["message"] for m in history] == [f"m{i}" for i in range(5, HISTORY + 5)]
    assert {m["userId"] for m in history} == {"alice"}
    assert all(m["roomId"] == "lobby" and ISO.fullmatch(m["timestamp"]) for m in history)
    flushed(bob)
    assert bob.events("receive-message") == []  # history is in the ack, not replayed
    alice.close()
    bob.close()


# -- direct messages ---------------------------------------------------------------------


def test_a_dm_reaches_every_tab_of_the_recipient_and_the_senders_other_tabs(server):
    alice1, alice2 = rtlab.connect(server, "alice"), rtlab.connect(server, "alice")
    bob1, bob2 = rtlab.connect(server, "bob"), rtlab.connect(server, "bob")
    carol = rtlab.connect(server, "carol")
    answer = alice1.emit("direct-message", {"to": "bob", "message": "psst"}, ack=True)
    assert answer == {"delivered": 3}  # bob's two tabs and alice's other tab
    for client in (alice2, bob1, bob2):
        [dm] = client.wait_for("direct-message")
        assert dm.keys() == {"from", "to", "message", "timestamp"}
        assert (dm["from"], dm["to"], dm["message"]) == ("alice", "bob", "psst")
        assert ISO.fullmatch(dm["timestamp"])
    flushed(alice1, carol)
    assert alice1.events("direct-message") == []  # the sender has the ack
    assert carol.events("direct-message") == []
    assert bob2.emit("direct-message", {"to": "carol", "message": "hi"}, ack=True) == {
        "delivered": 2
    }
    assert carol.wait_for("direct-message")[0]["from"] == "bob"
    for client in (alice1, alice2, bob1, bob2, carol):
        client.close()


@pytest.mark.parametrize(
    ("data", "code", "words"),
    [
        ("bob", "invalid", "data must be an object"),
        ({"to": 7, "message": "x"}, "invalid", "to must be a user name"),
        ({"to": "", "message": "x"}, "invalid", "to must be a user name"),
        ({"to": "bob"}, "invalid", "message must be a string"),
        ({"to": "bob", "message": "  "}, "invalid", "message must not be empty"),
        ({"to": "bob", "message": "x" * 501}, "invalid", "the limit is 500"),
        ({"to": "alice", "message": "me"}, "invalid", "goes to someone else"),
        ({"to": "zed", "message": "anyone?"}, "unknown_user", "'zed' is not connected"),
    ],
)
def test_bad_dms_get_a_clear_refusal(server, data, code, words):
    alice, bob = rtlab.connect(server, "alice"), rtlab.connect(server, "bob")
    found, message = refusal(alice, "direct-message", data)
    assert found == code and words in message
    flushed(bob)
    assert bob.events("direct-message") == []
    assert alice.emit("direct-message", {"to": "bob", "message": "ok"}, ack=True)["delivered"] == 1
    alice.close()
    bob.close()


def test_a_user_who_left_cannot_be_sent_a_dm(server):
    alice, bob = rtlab.connect(server, "alice"), rtlab.connect(server, "bob")
    bob.close()
    rtlab.wait_until(lambda: len(server.clients) == 1, what="bob gone")
    assert refusal(alice, "direct-message", {"to": "bob", "message": "x"})[0] == "unknown_user"
    alice.close()


def test_chat_events_work_in_other_namespaces_too(server):
    alice, bob = rtlab.connect(server, "alice"), rtlab.connect(server, "bob")
    for client in (alice, bob):
        client.emit("connect", ns="/chat", ack=True)
        client.emit("join-room", "lobby", ns="/chat", ack=True)
    bob.emit("typing", {"roomId": "lobby", "typing": True}, ns="/chat", ack=True)
    assert alice.wait_for("typing", ns="/chat")[0]["userId"] == "bob"
    bob.emit("direct-message", {"to": "alice", "message": "hi"}, ns="/chat", ack=True)
    assert alice.wait_for("direct-message", ns="/chat")[0]["message"] == "hi"
    bob.emit("disconnect", ns="/chat", ack=True)  # leaving the namespace leaves its rooms
    assert [e["online"] for e in alice.wait_for("presence", 2, ns="/chat")] == [True, False]
    assert [e["typing"] for e in alice.wait_for("typing", 2, ns="/chat")] == [True, False]
    alice.close()
    bob.close()
