"""Checks for lesson 03, rooms: who receives what, and a handler of your own on the server.

Exercise 1: ``recipients(rooms, online, sender, event, data)`` predicts, from who is in
which room, who receives what when ``sender`` emits one of the built-in events. The
cases are fixed, so a cell that ends with the check always shows the same line.

Exercise 2: ``register_shout(ns)`` registers a ``shout`` handler on a namespace. The
check starts a lab server of its own, registers the handler there, connects four
users and watches who receives what.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from rtlab.aio.client import AckError
from rtlab.aio.events import Namespace, Session
from rtlab.checks import Verdict, grade
from rtlab.core.envelope import EnvelopeError
from rtlab.notebook.background import RunningServer, start_server
from rtlab.notebook.clients import Client, connect

__all__ = ["check_recipients", "check_shout"]

Problem = tuple[str, str]  # what went wrong, and the hint for it


# -- exercise 1: recipients(rooms, online, sender, event, data) ----------------------------

RECIPIENTS_HINT = (
    "the rules of section 2: send-message reaches everyone in the room, the sender too, but "
    "only from a member; join-room tells the others already there (user-joined); leave-room "
    "tells the others still there (user-left); broadcast reaches everyone online, the sender "
    "too. A join or a leave that changes nothing tells nobody."
)

SENDER_TOO = (
    "send-message reaches everyone in the room, the sender included: that is how your own "
    "message shows up in the conversation, in the same order as everyone else's"
)
NOT_MEMBER = (
    "send-message to a room you are not in is refused (not_member): the sender gets an "
    "error in the ack, and nobody receives anything"
)
OTHERS_JOINED = (
    "user-joined goes to the others already in the room, not to the one who joins: the "
    "joiner learns who is there from the ack's members"
)
NOTHING_NEW = (
    "joining a room you are already in, or leaving one you are not in, changes nothing, "
    "so nobody is told"
)
OTHERS_LEFT = "user-left goes to the others still in the room; the one who leaves gets the ack"
EVERYONE = (
    "broadcast goes to everyone connected to the namespace (`online`), in a room or not, "
    "the sender included"
)

LOBBY_AND_KITCHEN = {"lobby": {"alice", "bob"}, "kitchen": {"bob", "carol"}}
EVERYONE_ONLINE = {"alice", "bob", "carol", "dave"}  # dave is in no room


@dataclass(frozen=True)
class Case:
    """One event in a namespace where ``rooms`` and ``online`` describe who is where."""

    rooms: dict[str, set[str]]
    online: set[str]
    sender: str
    event: str
    data: Any
    expected: dict[str, str]
    hint: str

    def describe(self) -> str:
        shown = self.data if self.event != "send-message" else self.data["roomId"]
        return f"{self.sender} sends {self.event} ({shown})"


def _all(users: set[str], event: str) -> dict[str, str]:
    return {user: event for user in sorted(users)}


CASES: tuple[Case, ...] = (
    Case(
        LOBBY_AND_KITCHEN,
        EVERYONE_ONLINE,
        "alice",
        "send-message",
        {"roomId": "lobby", "message": "hi"},
        _all({"alice", "bob"}, "receive-message"),
        SENDER_TOO,
    ),
    Case(
        LOBBY_AND_KITCHEN,
        EVERYONE_ONLINE,
        "carol",
        "send-message",
        {"roomId": "kitchen", "message": "dinner?"},
        _all({"bob", "carol"}, "receive-message"),
        SENDER_TOO,
    ),
    Case(
        LOBBY_AND_KITCHEN,
        EVERYONE_ONLINE,
        "dave",
        "send-message",
        {"roomId": "lobby", "message": "let me in"},
        {},
        NOT_MEMBER,
    ),
    Case(
        LOBBY_AND_KITCHEN,
        EVERYONE_ONLINE,
        "carol",
        "join-room",
        "lobby",
        _all({"alice", "bob"}, "user-joined"),
        OTHERS_JOINED,
    ),
    Case(LOBBY_AND_KITCHEN, EVERYONE_ONLINE, "alice", "join-room", "lobby", {}, NOTHING_NEW),
    Case(LOBBY_AND_KITCHEN, EVERYONE_ONLINE, "dave", "join-room", "attic", {}, OTHERS_JOINED),
    Case(
        LOBBY_AND_KITCHEN,
        EVERYONE_ONLINE,
        "bob",
        "leave-room",
        "kitchen",
        {"carol": "user-left"},
        OTHERS_LEFT,
    ),
    Case(LOBBY_AND_KITCHEN, EVERYONE_ONLINE, "dave", "leave-room", "lobby", {}, NOTHING_NEW),
    Case(
        LOBBY_AND_KITCHEN,
        EVERYONE_ONLINE,
        "dave",
        "broadcast",
        "class starts in 5 minutes",
        _all(EVERYONE_ONLINE, "broadcast-message"),
        EVERYONE,
    ),
    Case(
        {"lobby": {"alice"}},
        {"alice", "erin"},
        "erin",
        "broadcast",
        "anyone here?",
        _all({"alice", "erin"}, "broadcast-message"),
        EVERYONE,
    ),
)


def _shown(value: Any) -> str:
    """A dict or set as the same text on every run (sets have no order of their own)."""
    if isinstance(value, dict):
        items = sorted(value.items(), key=lambda item: str(item[0]))
        return "{" + ", ".join(f"{key!r}: {_shown(item)}" for key, item in items) + "}"
    if isinstance(value, (set, frozenset)):
        return "{" + ", ".join(sorted(map(repr, value))) + "}" if value else "set()"
    return repr(value)


def _recipients_problem(recipients: Callable[..., Any]) -> Problem | None:
    if not callable(recipients):
        return f"expected a function, got {type(recipients).__name__}", RECIPIENTS_HINT
    for case in CASES:
        rooms = {room: set(members) for room, members in case.rooms.items()}  # theirs to change
        got = recipients(rooms, set(case.online), case.sender, case.event, case.data)
        where = f"{case.describe()} in rooms {_shown(case.rooms)}"
        if case.event == "broadcast":
            where += f", online {_shown(case.online)}"
        if got is None:
            return f"{where}: returned None; did you forget `return`?", RECIPIENTS_HINT
        if not isinstance(got, dict):
            return (
                f"{where}: returned a {type(got).__name__}; return a dict "
                "{user: event received}, {} when nobody receives anything",
                RECIPIENTS_HINT,
            )
        if got != case.expected:
            return (
                f"{where}: you said {_shown(got)}, the server sends {_shown(case.expected)}",
                case.hint,
            )
    return None


def check_recipients(recipients: Callable[..., Any]) -> Verdict:
    """Grade ``recipients(rooms, online, sender, event, data) -> {user: event}``."""
    return grade("recipients", lambda: _recipients_problem(recipients), RECIPIENTS_HINT)


# -- exercise 2: register_shout(ns) ---------------------------------------------------------

SHOUT_HINT = (
    "refuse a sender who is not in the room (ns.rooms.is_member, EnvelopeError), send with "
    "ns.emit(..., to=room, skip=session), and return the ack's data. Use the `ns` you are "
    "given: the check registers your handler on a server of its own."
)

SHOUT_ROOM, OTHER_ROOM = "lobby", "kitchen"
SHOUT_TEXT = "hello, lobby!"


class _Watched:
    """The learner's handler, with the exceptions it raises noted (the server only logs them)."""

    def __init__(self, handler: Callable[[Session, Any], Any]) -> None:
        self.handler = handler
        self.raised: list[BaseException] = []

    async def __call__(self, session: Session, data: Any) -> Any:
        try:
            result = self.handler(session, data)
            if inspect.isawaitable(result):
                result = await result
            return result
        except EnvelopeError:
            raise  # a refusal, on purpose
        except Exception as error:
            self.raised.append(error)
            raise


@contextlib.contextmanager
def _room_of_four() -> Iterator[tuple[RunningServer, dict[str, Client]]]:
    """A server; alice, bob and carol in lobby; dave in kitchen."""
    server = start_server(ping_interval=None)
    clients: dict[str, Client] = {}
    try:
        yield server, clients
    finally:
        for client in clients.values():
            with contextlib.suppress(Exception):
                client.close()
        server.stop()


def _round_trip(client: Client) -> None:
    """An acknowledged no-op: once it is back, everything sent to ``client`` before has arrived."""
    client.emit("leave-room", "no-such-room", ack=True, timeout=2)


def _shouted(client: Client) -> list[Any]:
    return [event.data for event in client.events("shouted")]


def _shout(client: Client, room: str, text: str, handler: _Watched) -> Any:
    """alice's shout; an ack error the handler caused is turned into what it means."""
    try:
        return client.emit("shout", {"roomId": room, "message": text}, ack=True, timeout=2)
    except AckError as error:
        if error.code == "internal" and handler.raised:
            raised = handler.raised[-1]
            if isinstance(raised, NotImplementedError):
                raise NotImplementedError from None
            raise AckError(
                error.code, f"your handler raised {type(raised).__name__}: {raised}"
            ) from None
        raise


def _shout_problem(register_shout: Callable[[Namespace], Any], timeout: float) -> Problem | None:
    if not callable(register_shout):
        return f"expected a function, got {type(register_shout).__name__}", SHOUT_HINT
    with _room_of_four() as (server, clients):
        ns = server.server.namespace("/")
        register_shout(ns)  # before any client connects: no thread races with the server
        if "shout" not in ns.handlers:
            return (
                "register_shout(ns) registered no 'shout' handler",
                "decorate your handler with @ns.on('shout') inside register_shout",
            )
        handler = _Watched(ns.handlers["shout"])
        ns.handlers["shout"] = handler
        for user, room in [
            ("alice", SHOUT_ROOM),
            ("bob", SHOUT_ROOM),
            ("carol", SHOUT_ROOM),
            ("dave", OTHER_ROOM),
        ]:
            clients[user] = connect(server, user)
            clients[user].emit("join-room", room, ack=True, timeout=2)
        alice, bob, carol, dave = clients.values()

        try:
            ack = _shout(alice, SHOUT_ROOM, SHOUT_TEXT, handler)
        except AckError as error:
            return (
                f"alice, who is in {SHOUT_ROOM}, shouted {SHOUT_TEXT!r} to it and was "
                f"refused: {error}",
                SHOUT_HINT,
            )
        expected = {"userId": "alice", "roomId": SHOUT_ROOM, "message": SHOUT_TEXT.upper()}
        for other in (bob, carol):
            try:
                other.wait_for("shouted", timeout=timeout)
            except (TimeoutError, ConnectionError):
                return (
                    f"{other.user}, who is in {SHOUT_ROOM}, received no 'shouted' event "
                    f"within {timeout:g} s",
                    SHOUT_HINT,
                )
            got = _shouted(other)
            if got != [expected]:
                shown = _shown(got[0]) if len(got) == 1 else f"{len(got)} events {got!r}"
                return (
                    f"{other.user} received 'shouted' with {shown}, expected {_shown(expected)}",
                    "the data is {'userId': the sender's name (session.user), 'roomId': room, "
                    "'message': the message in capitals (str.upper())}",
                )
        for client in (alice, dave):
            _round_trip(client)
        if _shouted(alice):
            return (
                "alice, the sender, received her own 'shouted' event",
                "skip the sender: ns.emit(..., to=room, skip=session)",
            )
        if _shouted(dave):
            return (
                f"dave, who is in {OTHER_ROOM}, received the shout to {SHOUT_ROOM}",
                "send to the room only: ns.emit(..., to=room, skip=session)",
            )
        if ack != {"delivered": 2}:
            return (
                f"alice's ack said {_shown(ack)}, expected {{'delivered': 2}} (bob and carol)",
                "return {'delivered': n}, where n is what ns.emit(...) returned: "
                "how many connections it was written to",
            )

        # Someone outside the room must be refused, and nobody told.
        before = {client.user: len(_shouted(client)) for client in (alice, bob, carol)}
        try:
            ack = _shout(dave, SHOUT_ROOM, "let me in", handler)
        except AckError as error:
            if error.code != "not_member":
                return (
                    f"dave, who is not in {SHOUT_ROOM}, was refused with {error.code!r}, "
                    "expected 'not_member'",
                    "raise EnvelopeError(ErrorCode.NOT_MEMBER, 'a message for a person')",
                )
        else:
            return (
                f"dave, who is not in {SHOUT_ROOM}, shouted to it and was not refused "
                f"(the ack said {_shown(ack)})",
                "a room is for its members: when not ns.rooms.is_member(session, room), "
                "raise EnvelopeError(ErrorCode.NOT_MEMBER, ...) before emitting anything",
            )
        for client in (alice, bob, carol):
            _round_trip(client)
            if len(_shouted(client)) > before[client.user]:
                return (
                    f"dave's refused shout still reached {client.user}",
                    "check membership first, and raise before calling ns.emit",
                )
    return None


def check_shout(register_shout: Callable[[Namespace], Any], timeout: float = 2.0) -> Verdict:
    """Grade ``register_shout(ns)`` on a lab server of the check's own.

    alice, bob and carol are in lobby, dave in kitchen. alice shouts: bob and carol
    must get ``shouted`` with the text in capitals, alice and dave nothing, and alice's
    ack must be ``{"delivered": 2}``. Then dave shouts to lobby: refused, ``not_member``.
    """
    return grade("shout", lambda: _shout_problem(register_shout, timeout), SHOUT_HINT)
