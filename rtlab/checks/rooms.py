"""Checks for lesson 03, rooms: who receives what, and a handler of your own on the server.

Exercise 1: ``recipients(rooms, online, sender, event, data)`` predicts, from who is in
which room, who receives what when ``sender`` emits one of the built-in events. The
cases are fixed, so a cell that ends with the check always shows the same line.

Exercise 2: ``register_shout(ns)`` registers a ``shout`` handler on a namespace. The
check starts a lab server of its own, registers the handler there, connects four
users and watches who receives what, from a member's shout, an outsider's, and then
the outsider's again once he has joined.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import functools
import inspect
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from rtlab.aio.client import AckError
from rtlab.aio.events import Namespace, Session
from rtlab.checks import Verdict, describe, grade
from rtlab.checks.bounded import STILL_RUNNING, call_within
from rtlab.core.envelope import EnvelopeError
from rtlab.notebook.background import RunningServer, start_server
from rtlab.notebook.clients import Client, connect

__all__ = ["check_recipients", "check_shout"]

Problem = tuple[str, str]  # what went wrong, and the hint for it

LEARNER_TIMEOUT = 2.0  # seconds the learner's function may take for one call
ENDLESS = "did not return within {:g} s: does a loop never end?"
STOPPER = "rtlab-check-stop"  # the thread that stops a server a stuck handler holds


# -- exercise 1: recipients(rooms, online, sender, event, data) ----------------------------

RECIPIENTS_NUDGE = (
    "one event at a time: start with broadcast, where everyone in `online` receives "
    "'broadcast-message', then send-message, join-room and leave-room"
)
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
ONE_ROOM = (
    "send-message reaches the members of the room in data['roomId'], and only them: "
    "not the sender's other rooms"
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
NO_SUCH_ROOM = (
    "a room nobody is in is not a key of `rooms` (joining it creates it): "
    "rooms.get(room, set()) gives its members, none"
)
DATA_SHAPES = (
    "data depends on the event: send-message has a dict {'roomId': ..., 'message': ...}; "
    "join-room and leave-room have the room id itself (a str); broadcast has the text"
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
        return f"{self.sender} sends {self.event} ({self.room or self.data})"

    @property
    def room(self) -> str | None:
        """The room the event is about (None for a broadcast)."""
        if self.event == "send-message":
            return str(self.data["roomId"])
        return None if self.event == "broadcast" else str(self.data)


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
    Case(  # bob is in both rooms: only kitchen hears him
        LOBBY_AND_KITCHEN,
        EVERYONE_ONLINE,
        "bob",
        "send-message",
        {"roomId": "kitchen", "message": "coming"},
        _all({"bob", "carol"}, "receive-message"),
        ONE_ROOM,
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
    Case(LOBBY_AND_KITCHEN, EVERYONE_ONLINE, "dave", "leave-room", "attic", {}, NOTHING_NEW),
    Case(
        LOBBY_AND_KITCHEN,
        EVERYONE_ONLINE,
        "dave",
        "send-message",
        {"roomId": "attic", "message": "anyone?"},
        {},
        NOT_MEMBER,
    ),
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


def _crash_hint(case: Case, error: BaseException) -> str:
    """The hint for a function that raised on ``case``: the mistake it most likely shows."""
    if isinstance(error, KeyError) and case.room not in case.rooms and case.room in error.args:
        return NO_SUCH_ROOM
    if isinstance(error, (TypeError, KeyError)):
        return DATA_SHAPES
    return RECIPIENTS_HINT


def _recipients_problem(recipients: Callable[..., Any]) -> Problem | None:
    if not callable(recipients):
        return f"expected a function, got {type(recipients).__name__}", RECIPIENTS_HINT
    for case in CASES:
        where = f"{case.describe()} in rooms {_shown(case.rooms)}"
        if case.event == "broadcast":
            where += f", online {_shown(case.online)}"
        rooms = {room: set(members) for room, members in case.rooms.items()}  # theirs to change
        data = copy.deepcopy(case.data)
        try:
            call = functools.partial(
                recipients, rooms, set(case.online), case.sender, case.event, data
            )
            got = call_within(call, LEARNER_TIMEOUT)
        except NotImplementedError:
            raise
        except (Exception, SystemExit) as error:
            return f"{where}: raised {describe(error)}", _crash_hint(case, error)
        if got is STILL_RUNNING:
            return f"{where}: {ENDLESS.format(LEARNER_TIMEOUT)}", RECIPIENTS_HINT
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
    return grade(
        "recipients", lambda: _recipients_problem(recipients), RECIPIENTS_HINT, RECIPIENTS_NUDGE
    )


# -- exercise 2: register_shout(ns) ---------------------------------------------------------

SHOUT_NUDGE = (
    "start from roll_dice in section 5: read the room from data, emit 'shouted' to the room "
    "with ns.emit, and return the acknowledgement's data; then change what differs"
)
SHOUT_HINT = (
    "refuse a sender who is not in the room (ns.rooms.is_member, EnvelopeError), send with "
    "ns.emit(..., to=room, skip=session), and return the ack's data. Use the `ns` you are "
    "given: the check registers your handler on a server of its own."
)
SHOUT_DATA_HINT = (
    "the data is {'userId': the sender's name (session.user), 'roomId': room, "
    "'message': the message in capitals (str.upper())}"
)
FORGED_HINT = (
    "who shouted is the connection's user, session.user: {sender} sent "
    "'userId': '{claims}' in the data, and a client writes whatever it likes there. "
    "Build the event from roomId and the message alone"
)
BLOCKING_HINT = (
    "a handler answers by returning: one that blocks (time.sleep, a loop) or awaits "
    "something that never comes holds up its connection"
)
NOT_MEMBER_HINT = (
    "refuse with raise EnvelopeError(ErrorCode.NOT_MEMBER, 'a message for a person'): any "
    "other exception is a bug, which the client sees as 'internal'"
)

SHOUT_ROOM, OTHER_ROOM = "lobby", "kitchen"
ACK_TIMEOUT = 2.0  # seconds a shout's acknowledgement may take


class _Watched:
    """The learner's handler, with the exceptions it raises noted (the server only logs them),
    and what it still awaits, to cancel when the check is over."""

    def __init__(self, handler: Callable[[Session, Any], Any]) -> None:
        self.handler = handler
        self.raised: list[BaseException] = []
        self.awaiting: set[asyncio.Future[Any]] = set()
        self.abandoned = False

    def __call__(self, session: Session, data: Any) -> Any:
        try:
            result = self.handler(session, data)
        except (Exception, SystemExit) as error:
            self._note(error)
            raise
        return self._finish(result) if inspect.isawaitable(result) else result

    async def _finish(self, pending: Awaitable[Any]) -> Any:
        waiting = asyncio.ensure_future(pending)
        self.awaiting.add(waiting)
        try:
            return await waiting
        except asyncio.CancelledError:
            if self.abandoned and waiting.cancelled():  # by abandon(): an answer, not an end
                raise RuntimeError("the check stopped waiting for your handler") from None
            raise
        except (Exception, SystemExit) as error:
            self._note(error)
            raise
        finally:
            self.awaiting.discard(waiting)

    def _note(self, error: BaseException) -> None:
        """Keep a bug; a SystemExit becomes an error the server answers, not its end."""
        if isinstance(error, EnvelopeError):
            return  # a refusal, on purpose
        self.raised.append(error)
        if not isinstance(error, Exception):
            raise RuntimeError(describe(error)) from None

    def abandon(self) -> None:
        """Cancel what the handler still awaits (on the server's loop), so the server can stop."""
        self.abandoned = True
        for waiting in self.awaiting:
            waiting.cancel()


@dataclass
class _Lab:
    """The check's server and clients. ``stuck``: the learner's handler holds the server's
    loop (time.sleep, an endless loop), so it is stopped in the background, not waited for."""

    server: RunningServer
    clients: dict[str, Client] = field(default_factory=dict)
    stuck: bool = False

    def close(self) -> None:
        for client in self.clients.values():
            with contextlib.suppress(Exception):
                client.close()
        with contextlib.suppress(Exception):
            self.server.stop()


@contextlib.contextmanager
def _lab() -> Iterator[_Lab]:
    """A server for the check, closed at the end, in the background if it is stuck."""
    lab = _Lab(start_server(ping_interval=None))
    try:
        yield lab
    finally:
        if lab.stuck:
            threading.Thread(target=lab.close, name=STOPPER, daemon=True).start()
        else:
            lab.close()


def _round_trip(client: Client) -> None:
    """An acknowledged no-op: once it is back, everything sent to ``client`` before has arrived."""
    client.emit("leave-room", "no-such-room", ack=True, timeout=2)


def _shouted(client: Client) -> list[Any]:
    return [event.data for event in client.events("shouted")]


def _names(clients: list[Client]) -> str:
    """``bob, carol and carol's tab``: a user's second connection is their tab."""
    names: list[str] = []
    for client in clients:
        names.append(f"{client.user}'s tab" if client.user in names else client.user)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _what_failed(server: RunningServer, handler: _Watched, error: AckError) -> str:
    """Why the server answered ``internal``: what the handler raised, or what its log says."""
    if handler.raised:
        return f"your handler raised {describe(handler.raised[-1])}"
    failed = [line for line in server.log if "handler for 'shout'" in line]
    if failed:
        _, _, why = failed[-1].partition(" failed ")
        return f"your handler's answer could not be sent: {why.removeprefix('(')[:-1]}"
    return error.message


def _shout(
    server: RunningServer, handler: _Watched, client: Client, text: str, claims: str | None = None
) -> Any:
    """``client`` shouts to lobby (its data claiming to be from ``claims``, if given); the
    ack's data. An ``internal`` refusal says what failed."""
    data = {"roomId": SHOUT_ROOM, "message": text}
    if claims is not None:
        data["userId"] = claims
    try:
        return client.emit("shout", data, ack=True, timeout=ACK_TIMEOUT)
    except AckError as error:
        if error.code != "internal":
            raise
        if handler.raised and isinstance(handler.raised[-1], NotImplementedError):
            raise NotImplementedError from None
        raise AckError(error.code, _what_failed(server, handler, error)) from None


def _heard(
    server: RunningServer,
    handler: _Watched,
    sender: Client,
    hearers: list[Client],
    others: list[Client],
    text: str,
    timeout: float,
    claims: str | None = None,
) -> Problem | None:
    """``sender``, in lobby, shouts (claiming to be ``claims``, if given): ``hearers`` must
    get it once, ``others`` (the sender among them) nothing, and the ack must count the
    hearers' connections."""
    before = {id(client): len(_shouted(client)) for client in (*hearers, *others)}
    try:
        ack = _shout(server, handler, sender, text, claims)
    except AckError as error:
        return (
            f"{sender.user}, who is in {SHOUT_ROOM}, shouted {text!r} to it and was refused: "
            f"{error}",
            SHOUT_HINT,
        )
    except TimeoutError:
        return (
            f"{sender.user}'s shout got no acknowledgement within {ACK_TIMEOUT:g} s",
            BLOCKING_HINT,
        )
    expected = {"userId": sender.user, "roomId": SHOUT_ROOM, "message": text.upper()}
    for other in hearers:
        try:
            other.wait_for("shouted", before[id(other)] + 1, timeout=timeout)
        except (TimeoutError, ConnectionError):
            return (
                f"{other.user}, who is in {SHOUT_ROOM}, received no 'shouted' event from "
                f"{sender.user} within {timeout:g} s",
                SHOUT_HINT,
            )
        _round_trip(other)  # a second copy, if any, has arrived too
        got = _shouted(other)[before[id(other)] :]
        if got != [expected]:
            shown = _shown(got[0]) if len(got) == 1 else f"{len(got)} events {got!r}"
            forged = len(got) == 1 and isinstance(got[0], dict) and got[0].get("userId") == claims
            return (
                f"{other.user} received 'shouted' with {shown}, expected {_shown(expected)}",
                FORGED_HINT.format(sender=sender.user, claims=claims)
                if forged
                else SHOUT_DATA_HINT,
            )
    for other in others:
        _round_trip(other)
        if len(_shouted(other)) == before[id(other)]:
            continue
        if other is sender:
            return (
                f"{sender.user}, the sender, got the shout back as 'shouted'",
                "skip the sender: ns.emit(..., to=room, skip=session)",
            )
        return (
            f"{other.user}, who is in {OTHER_ROOM}, received the shout to {SHOUT_ROOM}",
            "send to the room only: ns.emit(..., to=room, skip=session)",
        )
    if ack != {"delivered": len(hearers)}:
        return (
            f"{sender.user}'s ack said {_shown(ack)}, expected "
            f"{{'delivered': {len(hearers)}}} ({_names(hearers)})",
            "return {'delivered': n}, where n is what ns.emit(...) returned: "
            "how many connections it was written to",
        )
    return None


def _refused(
    server: RunningServer, handler: _Watched, outsider: Client, members: list[Client]
) -> Problem | None:
    """``outsider``, not in lobby, shouts to it: refused with not_member, nobody told."""
    before = {id(client): len(_shouted(client)) for client in members}
    who = f"{outsider.user}, who is not in {SHOUT_ROOM},"
    try:
        ack = _shout(server, handler, outsider, "let me in")
    except AckError as error:
        if error.code == "internal":
            return (
                f"{who} was refused with 'internal' ({error.message}), expected 'not_member'",
                NOT_MEMBER_HINT,
            )
        if error.code != "not_member":
            return f"{who} was refused with {error.code!r}, expected 'not_member'", NOT_MEMBER_HINT
    except TimeoutError:
        return (
            f"{outsider.user}'s shout got no acknowledgement within {ACK_TIMEOUT:g} s",
            BLOCKING_HINT,
        )
    else:
        return (
            f"{who} shouted to it and was not refused (the ack said {_shown(ack)})",
            "a room is for its members: when not ns.rooms.is_member(session, room), "
            "raise EnvelopeError(ErrorCode.NOT_MEMBER, ...) before emitting anything",
        )
    for client in members:
        _round_trip(client)
        if len(_shouted(client)) > before[id(client)]:
            return (
                f"{outsider.user}'s refused shout still reached {client.user}",
                "check membership first, and raise before calling ns.emit",
            )
    return None


def _shout_problem(register_shout: Callable[[Namespace], Any], timeout: float) -> Problem | None:
    if not callable(register_shout):
        return f"expected a function, got {type(register_shout).__name__}", SHOUT_HINT
    with _lab() as lab:
        server = lab.server
        ns = server.server.namespace("/")
        # Before any client connects: no thread races with the server.
        if call_within(lambda: register_shout(ns), LEARNER_TIMEOUT) is STILL_RUNNING:
            return f"register_shout(ns) {ENDLESS.format(LEARNER_TIMEOUT)}", SHOUT_HINT
        if "shout" not in ns.handlers:
            return (
                "register_shout(ns) registered no 'shout' handler",
                "decorate your handler with @ns.on('shout') inside register_shout, on the "
                "ns it is given",
            )
        handler = _Watched(ns.handlers["shout"])
        ns.handlers["shout"] = handler
        try:
            return _scenes(server, handler, lab.clients, timeout)
        finally:
            # Cancel what the handler still awaits, so the server can stop; a loop that
            # does not answer is held by the handler itself.
            freed = call_within(lambda: server.call(handler.abandon), LEARNER_TIMEOUT)
            lab.stuck = freed is STILL_RUNNING


def _scenes(
    server: RunningServer, handler: _Watched, clients: dict[str, Client], timeout: float
) -> Problem | None:
    """alice shouts, dave (outside) is refused, then dave joins and shouts, claiming in
    his data to be alice. carol has two connections (a notebook and a tab)."""
    for key, user, room in [
        ("alice", "alice", SHOUT_ROOM),
        ("bob", "bob", SHOUT_ROOM),
        ("carol", "carol", SHOUT_ROOM),
        ("carol's tab", "carol", SHOUT_ROOM),
        ("dave", "dave", OTHER_ROOM),
    ]:
        clients[key] = connect(server, user)
        clients[key].emit("join-room", room, ack=True, timeout=2)
    alice, bob, carol, tab, dave = clients.values()
    lobby = [bob, carol, tab]
    problem = _heard(server, handler, alice, lobby, [alice, dave], "hello, lobby!", timeout)
    problem = problem or _refused(server, handler, dave, [alice, *lobby])
    if problem is not None:
        return problem
    dave.emit("join-room", SHOUT_ROOM, ack=True, timeout=2)  # now a shout from him counts
    return _heard(server, handler, dave, [alice, *lobby], [dave], "me too!", timeout, "alice")


def check_shout(register_shout: Callable[[Namespace], Any], timeout: float = 2.0) -> Verdict:
    """Grade ``register_shout(ns)`` on a lab server of the check's own.

    alice, bob and carol (on two connections) are in lobby, dave in kitchen. alice
    shouts: bob and carol's two connections must get ``shouted`` once with the text in
    capitals, alice and dave nothing, and alice's ack must be ``{"delivered": 3}``. dave
    shouts to lobby: refused, ``not_member``, nobody told. dave joins lobby and shouts,
    his data claiming ``"userId": "alice"``: the other four connections hear it from
    dave, and his ack says 4.
    """
    return grade("shout", lambda: _shout_problem(register_shout, timeout), SHOUT_HINT, SHOUT_NUDGE)
