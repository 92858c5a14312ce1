"""Checks for lesson 04, Socket.IO on the wire, both graded by a live python-socketio server.

Exercise 1:
``packet(event, data, ack_id=None)`` returns the text of a Socket.IO event inside an
Engine.IO message, as it crosses the wire: ``42["send-message",{…}]``, with the ack id
between ``42`` and the array when there is one (``421["join-room","lobby"]``). The check
starts the tutorial's chat server (python-socketio), puts a python-socketio client in
room ``lobby``, opens a long-polling session by hand and POSTs the learner's packets: the
server's acks and what the room member receives decide, so any valid JSON spelling passes.

Exercise 2: ``join_by_polling(url, room, message)`` is a Socket.IO client over HTTP
long-polling: it connects, joins ``room`` with an ack, sends ``message`` there and returns
the ack's data. The check runs it against a fresh server with a member in ``room``, and
grades from the server's side: requests by transport, who connected and joined, what the
member received, and what the function returned.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import logging
import time
from collections.abc import Callable
from typing import Any

import socketio

from rtlab.aio.socketio_chat import timestamp
from rtlab.checks import Verdict, describe, grade
from rtlab.checks.bounded import STILL_RUNNING, call_within
from rtlab.core.engineio import PacketError, parse
from rtlab.notebook.longpoll import LongPolling
from rtlab.notebook.socketio_lab import RunningSocketIO, start_socketio
from rtlab.notebook.wait import wait_until

__all__ = ["check_join_by_polling", "check_packet"]

Problem = str | tuple[str, str]

LEARNER_TIMEOUT = 2.0  # seconds packet() may take for one call
WAIT = 3.0  # seconds to wait for the server's answer or the room member's message

PACKET_NUDGE = (
    "look at section 2's packets: what comes before the JSON array in "
    '421["join-room","lobby"], and what does each character mean?'
)
PACKET_RECIPE = (
    "'4' (Engine.IO: a message), '2' (Socket.IO: an event), the ack id when there is one, "
    "then the JSON array [event, data]: "
    "'42' + ('' if ack_id is None else str(ack_id)) + json.dumps([event, data])"
)
ENGINE_DIGIT = (
    "every Socket.IO packet travels inside an Engine.IO message, type 4: a packet starts "
    "with '4', then the Socket.IO type, '2' for an event"
)
SOCKET_DIGIT = "after Engine.IO's '4' comes Socket.IO's type: '2' for an event ('0' connects)"
AN_ARRAY = (
    "Socket.IO sends an event as a JSON array, [name, data], not an object with named "
    "fields (that is the course's own /ws envelope)"
)
JSON = "the array is JSON: json.dumps([event, data]), with double quotes, not str() or repr()"
ACK_PLACE = (
    'the ack id goes between \'42\' and the array, as digits: 421["join-room","lobby"] '
    "asks for ack 1, and 0 is an id like any other (socket.io-client's first): test "
    "`ack_id is not None`, not `if ack_id`"
)
NAMESPACE = (
    "the chat's handlers are in the default namespace, '/': a packet for it names no namespace "
    "(42[...]); '42/chat,' would go to /chat, which this session never connected to (40/chat,)"
)
NO_ACK = "without an ack_id, no digits between '42' and the array: nobody waits for an answer"


class _Member:
    """A python-socketio client in ``room``: what a learner's event reached."""

    def __init__(self, url: str, room: str = "lobby") -> None:
        quiet = logging.getLogger("rtlab.checks.socketio.member")
        quiet.propagate = False
        if not quiet.handlers:
            quiet.addHandler(logging.NullHandler())
        self.received: list[dict[str, Any]] = []
        self.client = socketio.Client(reconnection=False, logger=quiet, engineio_logger=quiet)
        self.client.on("receive-message", self.received.append)
        self.client.connect(url, transports=["websocket"], wait_timeout=WAIT)
        self.client.call("join-room", room, timeout=WAIT)

    def close(self) -> None:
        self.client.disconnect()


def _answers(session: LongPolling, deadline: float) -> list[str]:
    """The server's packets until ``deadline`` (answering its pings)."""
    packets: list[str] = []
    while time.monotonic() < deadline:
        got = [p for p in session.get() if p]
        if "2" in got:
            session.post("3")
        packets += [p for p in got if p != "2"]
        if packets:
            return packets
    return packets


def _diagnose(text: str, event: str, data: Any, ack_id: int | None) -> Problem | None:
    """A hint for a packet the server would drop or misread, found before sending it."""
    if not text.startswith("4"):
        return f"{text[:40]!r} is not an Engine.IO message", ENGINE_DIGIT
    if not text.startswith("42"):
        return f"{text[:40]!r} is not a Socket.IO event", SOCKET_DIGIT
    try:
        parsed = parse(text)
    except PacketError:
        if ack_id is not None and text.rstrip().endswith(str(ack_id)):
            return f"{text[:40]!r}: the ack id is after the array", ACK_PLACE
        return f"{text[:40]!r}: what follows the header is not JSON", JSON
    if not isinstance(parsed.data, list):
        return f"{text[:40]!r}: the data is not a JSON array", AN_ARRAY
    if parsed.data != [event, data]:
        return f"{text[:40]!r} carries {parsed.data!r}, not [event, data]", JSON
    if parsed.ack_id != ack_id:
        if ack_id is None:
            return f"{text[:40]!r} asks for ack {parsed.ack_id}", NO_ACK
        return f"{text[:40]!r} asks for ack {parsed.ack_id}, not {ack_id}", ACK_PLACE
    return None


def _live_hint(text: str) -> str:
    """The hint for a well-formed packet the server did not act on."""
    return NAMESPACE if parse(text).ns != "/" else PACKET_RECIPE


def _grade_packet(packet: Callable[..., Any]) -> Problem | None:
    cases = [
        ("join-room", "lobby", 0),
        ("send-message", {"roomId": "lobby", "message": "héllo ✓ from a packet"}, None),
        ("join-room", "kitchen", 12),
    ]
    texts: list[str] = []
    for event, data, ack_id in cases:
        where = f"packet({event!r}, {data!r}, ack_id={ack_id!r})"
        got = call_within(
            functools.partial(packet, event, copy.deepcopy(data), ack_id=ack_id), LEARNER_TIMEOUT
        )
        if got is STILL_RUNNING:
            return f"{where} did not return within {LEARNER_TIMEOUT:g} s", PACKET_RECIPE
        if not isinstance(got, str):
            return f"{where} returned {type(got).__name__}, not str", PACKET_RECIPE
        if (problem := _diagnose(got, event, data, ack_id)) is not None:
            return f"{where}: {problem[0]}", problem[1]
        texts.append(got)
    chat: RunningSocketIO = start_socketio(ping_interval=1, ping_timeout=5)
    member: _Member | None = None
    try:
        member = _Member(chat.url)
        session = LongPolling(chat.url, timeout=WAIT)
        session.open()
        session.post("40")
        _answers(session, time.monotonic() + WAIT)  # 40{"sid":…}: connected to /
        for (event, data, ack_id), text in zip(cases, texts, strict=True):
            where = f"packet({event!r}, {data!r}, ack_id={ack_id!r}) = {text[:50]!r}"
            session.post(text)
            if ack_id is None:
                try:
                    wait_until(lambda: member.received, timeout=WAIT, what="the message")
                except TimeoutError:
                    return f"{where}: the room member received nothing", _live_hint(text)
                if member.received[0]["message"] != data["message"]:
                    return f"{where}: the room member received {member.received[0]!r}"
                continue
            answers = _answers(session, time.monotonic() + WAIT)
            acks = [p for p in answers if parse(p).socket == "ack"]
            if not acks:
                return f"{where}: the server sent no ack (it answered {answers!r})", _live_hint(
                    text
                )
            if parse(acks[0]).ack_id != ack_id:
                return f"{where}: the server acked {parse(acks[0]).ack_id}", ACK_PLACE
    except TimeoutError as error:  # our own waits: the server never answered a request
        return f"no answer from the server: {describe(error)}", PACKET_RECIPE
    finally:
        if member is not None:
            member.close()
        chat.stop()
    return None


def check_packet(packet: Callable[..., Any]) -> Verdict:
    """Exercise 1: ``packet(event, data, ack_id=None)``, sent to a live python-socketio server."""
    return grade("packet", lambda: _grade_packet(packet), PACKET_RECIPE, PACKET_NUDGE)


# -- exercise 2: join_by_polling(url, room, message) -----------------------------------------

POLL_TIMEOUT = 8.0  # seconds join_by_polling may take (LongPolling waits 5 s per request)
POLL_ROOM, POLL_MESSAGE = "kitchen", "hello over long-polling ✓"
POLL_NUDGE = (
    "follow section 2 with LongPolling(url): open(), then post and get what each step needs; "
    "start with the open and the connect to '/'"
)
POLL_RECIPE = (
    "session = LongPolling(url); session.open(); session.post('40'); session.get() (the "
    "40{sid} answer); post '421' + json.dumps(['join-room', room]); get() until a packet "
    "starts with '431'; post '42' + json.dumps(['send-message', {'roomId': room, 'message': "
    "message}]); return json.loads(ack[3:])[0]"
)
POLLING_ONLY = (
    "stay on long-polling: LongPolling never upgrades (a python-socketio Client would need "
    "transports=['polling'])"
)
NO_SESSION = "begin with the open: LongPolling(url).open() is the first GET, it makes the session"
CONNECT_FIRST = (
    "after the open, connect to the namespace '/': POST '40' (then a GET brings 40{sid}); "
    "until then the server ignores your events and a GET waits for the next ping"
)
JOIN_WITH_ACK = (
    "join with an ack id, '421' + json.dumps(['join-room', room]), then GET until the "
    "packet '431[...]' arrives: without an id nothing answers, and the GET waits"
)
SEND_IT = (
    "join with an ack id ('421' + json.dumps(['join-room', room])) and GET until '431[...]' "
    "arrives; then POST the event '42' + json.dumps(['send-message', {'roomId': room, "
    "'message': message}]): the server sends receive-message to the whole room"
)
RETURN_DATA = (
    "return the ack's data, not the packet: '431[{\"roomId\":...}]' is '43', the id 1, "
    "then a JSON array of the handler's return values; json.loads(packet[3:])[0]"
)
KEEP_LOOKING = (
    "a GET brings what the server has for you, in order: here a welcome event came before "
    "the ack. Look through every packet of every GET until one starts with '431'"
)
WELCOME = "welcome"  # what the check's server sends a joiner before the ack


def _welcoming_joins(chat: RunningSocketIO) -> list[dict[str, Any]]:
    """Make ``join-room`` on ``chat`` send the joiner a ``welcome`` event before its ack,
    and put the time of joining in the ack: an answer must find the ack among other
    packets, and read it. The acks sent, as they are sent."""
    sio, acks = chat.chat.sio, []
    join = sio.handlers["/"]["join-room"]

    async def join_and_welcome(sid: str, room_id: str) -> dict[str, Any]:
        ack = {**await join(sid, room_id), "joinedAt": timestamp()}
        await sio.emit(WELCOME, {"roomId": room_id}, to=sid)
        acks.append(ack)
        return ack

    chat.call(sio.on, "join-room", join_and_welcome)
    return acks


def _grade_join_by_polling(join_by_polling: Callable[..., Any]) -> Problem | None:
    # Pings every second: a client library's pending GET comes back soon, so it can disconnect.
    chat: RunningSocketIO = start_socketio(ping_interval=1, ping_timeout=5)
    member: _Member | None = None
    try:
        member = _Member(chat.url, POLL_ROOM)
        acks = _welcoming_joins(chat)
        log_before, requests_before = len(chat.log), chat.requests
        error: BaseException | None = None
        try:
            got = call_within(
                lambda: join_by_polling(chat.url, POLL_ROOM, POLL_MESSAGE), POLL_TIMEOUT
            )
        except NotImplementedError:
            raise
        except (Exception, SystemExit) as raised:
            error, got = raised, None
        if got is STILL_RUNNING:
            return f"join_by_polling did not return within {POLL_TIMEOUT:g} s", POLL_RECIPE
        with contextlib.suppress(TimeoutError):  # the message may still be on its way
            wait_until(lambda: member.received, timeout=1.0, what="the message")
        used = chat.requests - requests_before
        log = chat.log[log_before:]
        said = f" (your function raised {describe(error)})" if error is not None else ""
        if used["websocket GET"]:
            return f"the client upgraded to WebSocket{said}", POLLING_ONLY
        if not used["polling GET"]:
            return f"the server saw no long-polling request{said}", NO_SESSION
        if not any(line.startswith("User connected") for line in log):
            return f"a session opened, but never connected to '/'{said}", CONNECT_FIRST
        if not any(f"joined room {POLL_ROOM}" in line for line in log):
            return f"connected, but never joined {POLL_ROOM!r}{said}", JOIN_WITH_ACK
        if error is not None:
            return f"joined {POLL_ROOM!r}, then raised {describe(error)}", JOIN_WITH_ACK
        if [m["message"] for m in member.received] != [POLL_MESSAGE]:
            heard = [m["message"] for m in member.received]
            return f"joined {POLL_ROOM!r}; the member there received {heard!r}", SEND_IT
        if got != chat.call(lambda: acks[-1] if acks else None):
            welcomed = isinstance(got, str) and WELCOME in got
            return f"returned {got!r:.80}, not the ack's data", (
                KEEP_LOOKING if welcomed else RETURN_DATA
            )
        return None
    finally:
        if member is not None:
            member.close()
        chat.stop()


def check_join_by_polling(join_by_polling: Callable[..., Any]) -> Verdict:
    """Exercise 2: a Socket.IO client over long-polling, graded by a live server."""
    return grade(
        "join_by_polling",
        lambda: _grade_join_by_polling(join_by_polling),
        POLL_RECIPE,
        POLL_NUDGE,
    )
