"""Chat panes: one user's view of a room as an ipywidget, fed live from the server.

::

    row = rtlab.chat_panes(server)             # alice, bob and carol in "lobby", side by side
    row                                        # shows the three panes
    row["alice"].send("hi")                    # as typing "hi" and pressing Enter
    row["carol"].wait_for_messages(1)          # [('alice', 'hi')]
    row["bob"].input.value = "hel"             # as typing: alice and carol see "bob is typing…"
    row.close()

A pane shows who is online in its room (a green dot) and who was (a hollow one,
with the time they were last seen), who is typing, the room's last messages when
it joins (the join's ``history``), and direct messages to its user. Its text box
says ``typing`` to the server as the learner types: true on the first key, false
after ``typing_idle`` seconds without one or when the message goes (see
:func:`rtlab.core.presence.debounce`).
Enter and Send carry the box's text in the same message (see
:mod:`rtlab.notebook.chatinput`): what goes is what the box held, however busy the
kernel is with the keys before it.

What a pane knows of its room is a :class:`~rtlab.notebook.room_view.RoomView`, plain
data; the pane renders it as HTML. Each pane owns a synchronous
:class:`~rtlab.notebook.clients.Client`. Its event handlers run on the shared client
loop's thread: they update the view model under a lock and then the widgets' traits,
which ipykernel sends to the browser from any thread (its IOPub socket queues messages
from every thread). Nothing here prints: output from another thread would land in
whichever cell happens to run, so problems become lines in the pane's log instead.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import html
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import ipywidgets as widgets

from rtlab.aio.client import AckError
from rtlab.core.envelope import DEFAULT_NAMESPACE
from rtlab.core.presence import TYPING_IDLE, Debounce, Input, debounce
from rtlab.notebook.chatinput import ChatInput
from rtlab.notebook.clients import Client, Target, client_loop, connect
from rtlab.notebook.room_view import Kind, Line, Presence, RoomView, typing_line

CONNECTED = "🟢 connected"
DISCONNECTED = "🔴 disconnected"
SEND_TIMEOUT = 5.0  # seconds to wait for the server to acknowledge a message
QUEUED_TIMEOUT = 3600.0  # a message queued offline: its ack comes after reconnecting
# Seconds between two redraws of the log at most: each sends the whole log's HTML to the
# browser, and a classmate sending long messages within the rate limit made a pane
# redrawn at every event send 2.3 MiB a second. A quiet room's message shows at once.
LOG_EVERY = 0.25
PANE_WIDTH = "300px"
LOG_HEIGHT = "220px"

_MUTED = "color: var(--jp-ui-font-color2, #757575)"
_ONLINE_DOT = "<span style='color: var(--jp-success-color1, #388e3c)'>●</span>"
_OFFLINE_DOT = f"<span style='{_MUTED}'>○</span>"
_LOG_STYLE = (
    f"height: {LOG_HEIGHT}; overflow-y: auto; display: flex; flex-direction: column-reverse;"
    " font-family: var(--jp-code-font-family, monospace); font-size: 12px; line-height: 1.45;"
    " white-space: pre-wrap; overflow-wrap: anywhere; padding: 4px 6px;"
    " border: 1px solid var(--jp-border-color2, #e0e0e0);"
    " background: var(--jp-layout-color1, #fff); color: var(--jp-ui-font-color1, #212121)"
)
# column-reverse keeps the newest line in view without any JavaScript: the
# scroll box starts at its end each time the HTML is replaced.


def _clock(iso: Any) -> str:
    """``'04:41:07'`` from an ISO time (UTC), for "last seen"; ``'?'`` if unreadable."""
    return iso[11:19] if isinstance(iso, str) and len(iso) >= 19 else "?"


def _markup(line: Line) -> str:
    """A log line as HTML: a message in bold, history muted, notes in their colour."""
    text = html.escape(line.text)
    if line.user is not None:
        said = f"<b>{html.escape(line.user)}</b>: {text}"
        return f"<span style='{_MUTED}'>{said}</span>" if line.kind == "history" else said
    if line.kind == "broadcast":
        return f"<span style='color: var(--jp-info-color1, #0288d1)'>{text}</span>"
    if line.kind == "direct":
        return f"<span style='color: var(--jp-warn-color1, #f57c00)'>{text}</span>"
    return f"<i style='{_MUTED}'>{text}</i>"


def _reason(error: BaseException) -> str:
    if isinstance(error, AckError):
        return error.message or error.code
    if isinstance(error, TimeoutError):
        return "no answer from the server in time"
    return str(error) or type(error).__name__


class ChatPane(widgets.VBox):
    """One user in one room: a status light, who is online, the log, who types, a text box.

    ``ChatPane(server, "alice")`` connects as alice (``server`` is what
    :func:`rtlab.start_server` returned, or a ``ws://`` URL, or a list of them as
    :func:`rtlab.connect` takes) and joins ``room``,
    then keeps itself current from the server's events. Type and press Enter (or
    click Send) to talk; in code, :meth:`send` does the same and waits for the
    server's acknowledgement.
    """

    def __init__(
        self,
        server_or_url: Target | Sequence[Target],
        user: str,
        room: str = "lobby",
        *,
        ns: str = DEFAULT_NAMESPACE,
        **client_options: Any,
    ) -> None:
        self.user = user
        self.room = room
        self.ns = ns
        self._changed = threading.Condition(threading.RLock())
        self.view = RoomView(user, room)  # what the pane shows, guarded by _changed
        self._debounce = Debounce()  # this pane's own typing, as told to the server
        self._tick: asyncio.TimerHandle | None = None
        self._log_drawn = -LOG_EVERY  # when the log was last drawn (time.monotonic)
        self._log_due = False  # a redraw of the log is on its way
        self.typing_idle = TYPING_IDLE  # seconds without a key before "stopped typing"
        self._background = client_loop()
        # client_options go to rtlab.connect: reconnection=..., ping_interval=, ping_timeout=...
        self._client: Client = connect(server_or_url, user, **client_options)  # before widgets

        self.header = widgets.HTML()
        self.online_view = widgets.HTML()
        self.log_view = widgets.HTML()
        self.typing_view = widgets.HTML()
        # Enter and Send carry the box's text in the same message: see chatinput.py.
        self.input = ChatInput(placeholder="message (Enter sends)", tooltip="send to the room")
        self.input.observe(self._on_input, names="value")  # every key: that is typing
        self.input.on_submit(self._on_submit)
        self.send_button = self.input.button  # send_button.click(): as clicking Send
        super().__init__(
            [
                self.header,
                self.online_view,
                self.log_view,
                self.typing_view,
                self.input,
            ],
            layout=widgets.Layout(
                width=PANE_WIDTH,
                padding="6px",
                margin="0 8px 8px 0",
                border="1px solid var(--jp-border-color1, #bdbdbd)",
            ),
        )
        try:
            for event, handler in [
                ("receive-message", self._on_message),
                ("user-joined", self._on_joined),
                ("user-left", self._on_left),
                ("broadcast-message", self._on_broadcast),
                ("presence", self._on_presence_event),
                ("typing", self._on_typing),
                ("direct-message", self._on_direct),
            ]:
                self._client.on(event, handler, ns=ns)
            # The connection's own events are local ones, in the default namespace.
            self._client.on("disconnect", self._on_drop)
            self._client.on("reconnect", self._on_back)
            with self._changed:
                self.view.connected = True
                self._render()
            self._apply_join(self._client.emit("join-room", room, ns=ns, ack=True), first=True)
            self._flush_log()  # the history shows as the pane does
            self._watcher = asyncio.run_coroutine_threadsafe(
                self._watch_connection(), self._background.loop
            )
        except BaseException:
            with contextlib.suppress(Exception):
                self._client.close()
            for widget in self.children:
                widget.close()
            widgets.VBox.close(self)
            raise

    # -- what lessons and tests read ---------------------------------------------------

    @property
    def messages(self) -> list[tuple[str, str]]:
        """The room's messages received so far, as ``(user, text)``, in order (the last
        10,000)."""
        with self._changed:
            return list(self.view.messages)

    @property
    def online(self) -> list[str]:
        """Who is in the room now, as far as this pane knows, sorted."""
        with self._changed:
            return sorted(self.view.online)

    @property
    def offline(self) -> dict[str, str | None]:
        """Who was in the room and left, with when they were last seen (ISO, UTC)."""
        with self._changed:
            return dict(sorted(self.view.away.items()))

    @property
    def typing(self) -> list[str]:
        """Who else is typing in the room now, as the server said, sorted."""
        with self._changed:
            return sorted(self.view.typing)

    @property
    def history(self) -> list[tuple[str, str]]:
        """The room's last messages from before this pane joined, as ``(user, text)``."""
        with self._changed:
            return list(self.view.history)

    @property
    def direct(self) -> list[tuple[str, str, str]]:
        """Direct messages to this user (or from their other tabs): ``(from, to, text)``
        (the last 10,000)."""
        with self._changed:
            return list(self.view.direct)

    @property
    def connected(self) -> bool:
        with self._changed:
            return self.view.connected

    @property
    def queued(self) -> int:
        """Messages waiting for the server's acknowledgement (typed offline, say)."""
        return self._client.queued

    @property
    def errors(self) -> list[str]:
        """What the client noted instead of printing (lost history, refused rejoins)."""
        return self._client.errors

    @property
    def status(self) -> str:
        """``'🟢 connected'`` or ``'🔴 disconnected'``."""
        return CONNECTED if self.connected else DISCONNECTED

    @property
    def lines(self) -> list[str]:
        """What the log shows, as plain text, one line each (the last 200)."""
        with self._changed:
            return [line.plain for line in self.view.lines]

    def wait_for_messages(self, n: int, timeout: float = 5.0) -> list[tuple[str, str]]:
        """Block until ``n`` messages arrived in all, then return :attr:`messages`.

        Raises ``TimeoutError`` saying how many came, or ``ConnectionError`` when the
        connection closes first, so that a cell never hangs.
        """
        deadline = time.monotonic() + timeout
        view = self.view
        with self._changed:
            while view.received < n and not view.ended:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"{self.user}: {view.received} of {n} messages within {timeout} s"
                    )
                self._changed.wait(left)
            if view.received < n:
                raise ConnectionError(
                    f"{self.user}: disconnected after {view.received} of {n} messages"
                )
            self._flush_log()  # what was waited for shows now
            return list(view.messages)

    # -- sending -----------------------------------------------------------------------

    def send(self, text: str, *, timeout: float = SEND_TIMEOUT) -> Any:
        """Send ``text`` to the room, as typing it and pressing Enter does; wait for the ack.

        Returns the acknowledgement's data (``{"roomId", "seq", "delivered"}``); the
        pane's own copy of the message is already in :attr:`messages` by then. A refusal raises
        :class:`~rtlab.AckError` (``TimeoutError``, ``ConnectionError``) here, in
        the calling cell, and shows in the log too.
        """
        if not self.connected:
            if self._can_queue():
                self._queue_offline(text)
                return None
            self._system("⚠ not sent: disconnected")
            raise ConnectionError(f"{self.user}: disconnected")
        self._typed("send")
        data = {"roomId": self.room, "message": text}
        try:
            ack = self._client.emit("send-message", data, ns=self.ns, ack=True, timeout=timeout)
        except (AckError, TimeoutError, ConnectionError) as error:
            self._system(f"⚠ not sent: {_reason(error)}")
            self._flush_log()
            raise
        self._flush_log()  # its own copy, which came before the ack, shows now
        return ack

    def _send_soon(self, text: str) -> None:
        """Send from the widget's own callbacks: never block the kernel, never raise.

        ipywidgets shows a callback's exception in whichever cell runs, so every
        failure becomes a line in the log instead.
        """
        if not text.strip():
            return
        if not self.connected:
            if self._can_queue():
                self._queue_offline(text)
            else:
                self._system("⚠ not sent: disconnected")
            return
        self._typed("send")
        data = {"roomId": self.room, "message": text}
        try:
            future = self._client.emit_soon(
                "send-message", data, ns=self.ns, ack=True, timeout=SEND_TIMEOUT
            )
        except ConnectionError as error:  # the client loop is gone
            self._system(f"⚠ not sent: {_reason(error)}")
            return
        future.add_done_callback(self._sent)

    def _can_queue(self) -> bool:
        """Offline but not closed for good, with reconnection: the client queues."""
        with self._changed:
            ended = self.view.ended
        return not ended and self._client.inner.reconnection is not None and not self._client.closed

    def _queue_offline(self, text: str) -> None:
        """Hand ``text`` to the client's offline queue; it goes out after reconnecting.

        The acknowledgement comes only then, so nothing waits for it here (a
        failure, say the client closing for good first, becomes a line in the log).
        """
        data = {"roomId": self.room, "message": text}
        try:
            future = self._client.emit_soon(
                "send-message", data, ns=self.ns, ack=True, timeout=QUEUED_TIMEOUT
            )
        except ConnectionError as error:
            self._system(f"⚠ not sent: {_reason(error)}")
            return
        self._system(f"⏳ queued: {text}")
        future.add_done_callback(self._sent)

    def _sent(self, future: concurrent.futures.Future[Any]) -> None:
        if future.cancelled():
            self._system("⚠ not sent: cancelled")
        elif (error := future.exception()) is not None:
            self._system(f"⚠ not sent: {_reason(error)}")

    def dm(self, user: str, text: str, *, timeout: float = SEND_TIMEOUT) -> Any:
        """Send ``text`` to ``user`` alone (all their tabs); the ack: ``{"delivered": N}``."""
        try:
            answer = self._client.dm(user, text, ns=self.ns, timeout=timeout)
        except (AckError, TimeoutError, ConnectionError) as error:
            self._system(f"⚠ not sent: {_reason(error)}")
            self._flush_log()
            raise
        with self._changed:
            self.view.direct_message(self.user, user, text)
            self._draw_log()
            self._changed.notify_all()
        return answer

    def _on_input(self, change: dict[str, Any]) -> None:
        # The front end sends the value at every key; Enter and Send come to _on_submit.
        if change["new"]:
            self._typed("key")

    def _on_submit(self, text: str) -> None:
        """Enter or Send, with the text the box held then (the box empties itself)."""
        self._send_soon(text)

    # -- typing: the debounce rule, timers on the client loop ------------------------------

    def _typed(self, what: Input) -> None:
        """A key, a send, or the idle timer: tell the server if the rule says so."""
        with self._changed:
            before = self._debounce
            self._debounce, signal = debounce(before, what, time.monotonic(), self.typing_idle)
            if self._debounce.typing and not before.typing:
                self._arm(self.typing_idle)
            connected = self.view.connected and not self.view.ended
        if signal is not None and connected:
            data = {"roomId": self.room, "typing": signal}
            with contextlib.suppress(ConnectionError):  # the client loop is gone: no typing
                future = self._client.emit_soon("typing", data, ns=self.ns, ack=True)
                future.add_done_callback(self._typing_sent)

    def _typing_sent(self, future: concurrent.futures.Future[Any]) -> None:
        if not future.cancelled() and (error := future.exception()) is not None:
            self._client.inner.note_error(f"typing not sent: {_reason(error)}")

    def _arm(self, delay: float) -> None:
        """Check for idleness ``delay`` seconds from now, on the client loop."""
        loop = self._background.loop

        def arm() -> None:
            if self._tick is not None:
                self._tick.cancel()
            self._tick = loop.call_later(delay, self._idle)

        with contextlib.suppress(RuntimeError):  # the loop is closed
            loop.call_soon_threadsafe(arm)

    def _idle(self) -> None:
        self._tick = None
        self._typed("tick")
        with self._changed:
            state = self._debounce
        if state.typing:  # keys came meanwhile: look again when they would be idle
            delay = max(0.0, state.last_key + self.typing_idle - time.monotonic()) + 0.001
            self._tick = self._background.loop.call_later(delay, self._idle)

    def focus(self) -> None:
        """Put the cursor in the text box."""
        self.input.focus()

    def blur(self) -> None:
        self.input.blur()

    # -- events from the server (on the client loop's thread) -----------------------------

    def _apply_join(self, ack: Any, *, first: bool = False) -> None:
        """The join's answer: who is here and who was, and (the first time) the history."""
        with self._changed:
            self.view.join(ack, first=first)
            self._render()
            self._changed.notify_all()

    def _on_message(self, data: Any) -> None:
        with self._changed:
            if self.view.message(data):
                self._render_typing()
                self._render_log()
                self._changed.notify_all()

    def _on_broadcast(self, data: Any) -> None:
        with self._changed:
            if self.view.broadcast(data):
                self._render_log()

    def _on_direct(self, data: Any) -> None:
        if not isinstance(data, dict):
            return
        sender, to = str(data.get("from", "?")), str(data.get("to", "?"))
        with self._changed:
            self.view.direct_message(sender, to, str(data.get("message", "")))
            self._render_log()
            self._changed.notify_all()

    def _on_joined(self, data: Any) -> None:
        self._on_presence("joined", data)

    def _on_left(self, data: Any) -> None:
        self._on_presence("left", data)

    def _on_presence_event(self, data: Any) -> None:
        self._on_presence("presence", data)

    def _on_typing(self, data: Any) -> None:
        self._on_presence("typing", data)

    def _on_presence(self, kind: Presence, data: Any) -> None:
        with self._changed:
            if self.view.presence(kind, data):
                self._render()
                self._changed.notify_all()

    def _on_drop(self, _: Any) -> None:
        """The link dropped and the client reconnects: red until it is back."""
        with self._changed:
            if self.view.dropped():
                self._debounce = Debounce()  # this pane's own typing is unknown now too
                self._render()
                self._changed.notify_all()

    def _on_back(self, _: Any) -> None:
        """Reconnected (the client joined the room again): green, and who is online now."""
        with self._changed:
            if not self.view.back():
                return
            self._render()
            self._changed.notify_all()
        # The client rejoined the room itself, but keeps the answer; joining again
        # changes nothing on the server and answers with the members. From this
        # handler (on the client loop) the ack is awaited in a task of its own.
        asyncio.get_running_loop().create_task(self._refresh_online())

    async def _refresh_online(self) -> None:
        try:
            ack = await self._client.inner.emit(
                "join-room", self.room, ns=self.ns, ack=True, timeout=SEND_TIMEOUT
            )
        except Exception as error:  # shown in the log, never raised
            self._system(f"⚠ online list not refreshed: {_reason(error)}")
            with self._changed:
                self.view.joined = True
            return
        self._apply_join(ack)

    async def _watch_connection(self) -> None:
        """Turn the light red when the connection closes, whoever closes it."""
        await self._client.inner.wait_closed()
        self._disconnected()

    def _disconnected(self) -> None:
        with self._changed:
            if not self.view.end():
                return
            if self._client.refusal is not None:  # no reconnecting: say why, and what to do
                self.view.note(f"⛔ {self._client.refusal}")
            self._debounce = Debounce()
            if hasattr(self, "input"):  # not when the constructor failed before it
                self.input.disabled = True
            self._render()
            self._changed.notify_all()

    # -- drawing -------------------------------------------------------------------------

    def _system(self, text: str, kind: Kind = "system") -> None:
        with self._changed:
            self.view.note(text, kind)
            self._render_log()

    def _render(self) -> None:
        with self._changed:
            view = self.view
            light = CONNECTED if view.connected else DISCONNECTED
            self.header.value = (
                f"<div style='display: flex; justify-content: space-between'>"
                f"<span><b>{html.escape(self.user)}</b> in <b>#{html.escape(self.room)}</b></span>"
                f"<span>{light}</span></div>"
            )
            names = ", ".join(f"{_ONLINE_DOT} {html.escape(u)}" for u in sorted(view.online))
            away = ", ".join(
                f"{_OFFLINE_DOT} {html.escape(u)} <span style='{_MUTED}'>(seen {_clock(t)})</span>"
                for u, t in sorted(view.away.items())
            )
            self.online_view.value = (
                f"<span style='{_MUTED}'>online ({len(view.online)}):</span> {names or '—'}"
                + (f"<br><span style='{_MUTED}'>offline:</span> {away}" if away else "")
            )
            self._render_log()
            self._render_typing()

    def _render_typing(self) -> None:
        line = html.escape(typing_line(self.view.typing)) or "&nbsp;"
        self.typing_view.value = f"<i style='{_MUTED}; font-size: 12px'>{line}</i>"

    def _render_log(self) -> None:
        """Draw the log now, or once ``LOG_EVERY`` has passed since it was last drawn:
        a flood of events is drawn a few times a second, its last state always."""
        with self._changed:
            if self._log_due:
                return  # the redraw on its way will show this too
            wait = self._log_drawn + LOG_EVERY - time.monotonic()
            if wait <= 0:
                self._draw_log()
                return
            self._log_due = True
            loop = self._background.loop
            try:
                loop.call_soon_threadsafe(loop.call_later, wait, self._flush_log)
            except RuntimeError:  # the client loop is gone: nothing comes later
                self._draw_log()

    def _flush_log(self) -> None:
        """Draw the log now if a redraw is on its way."""
        with self._changed:
            if self._log_due:
                self._draw_log()

    def _draw_log(self) -> None:
        self._log_due = False
        self._log_drawn = time.monotonic()
        lines = "".join(f"<div>{_markup(line)}</div>" for line in self.view.lines)
        self.log_view.value = f"<div style='{_LOG_STYLE}'><div>{lines}</div></div>"

    # -- closing and showing -------------------------------------------------------------

    def close(self) -> None:
        """Leave the room and close the connection; the pane stays on screen, 🔴.

        (Unlike ``Widget.close()`` this keeps the widget alive, so that it shows why
        it stopped; ``ipywidgets.Widget.close(pane)`` would remove it.)
        """
        client = getattr(self, "_client", None)
        if client is not None and not client.closed:
            with contextlib.suppress(Exception):  # closing anyway
                client.emit("leave-room", self.room, ns=self.ns, ack=True, timeout=2.0)
            with contextlib.suppress(Exception):
                client.close()
        if hasattr(self, "header"):  # not when the constructor failed before its widgets
            self._disconnected()
            self._flush_log()

    def __repr__(self) -> str:
        with self._changed:
            return (
                f"ChatPane(user={self.user!r}, room={self.room!r}, status={self.status!r}, "
                f"{self.view.summary()})"
            )

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
        return _full_text(super()._repr_mimebundle_(**kwargs), repr(self))


def _full_text(bundle: dict[str, Any] | None, text: str) -> dict[str, Any] | None:
    # ipywidgets cuts text/plain to 110 characters; nbval compares it in full.
    if bundle is not None:
        bundle["text/plain"] = text
    return bundle


class PaneRow(widgets.HBox):
    """Chat panes side by side; ``row["bob"]`` is bob's pane."""

    def __init__(self, panes: Iterable[ChatPane]) -> None:
        self.panes = list(panes)
        super().__init__(self.panes, layout=widgets.Layout(flex_flow="row wrap"))

    def __getitem__(self, user: str) -> ChatPane:
        for pane in self.panes:
            if pane.user == user:
                return pane
        raise KeyError(user)

    def __iter__(self) -> Iterator[ChatPane]:
        return iter(self.panes)

    def __len__(self) -> int:
        return len(self.panes)

    def close(self) -> None:
        """Close every pane (each leaves its room and disconnects)."""
        for pane in self.panes:
            pane.close()

    def __repr__(self) -> str:
        inner = "".join(f"  {pane!r},\n" for pane in self.panes)
        return f"PaneRow(\n{inner})"

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
        return _full_text(super()._repr_mimebundle_(**kwargs), repr(self))


def chat_panes(
    server: Target | Sequence[Target],
    users: Iterable[str] = ("alice", "bob", "carol"),
    room: str = "lobby",
    *,
    ns: str = DEFAULT_NAMESPACE,
    timeout: float = 5.0,
    **client_options: Any,
) -> PaneRow:
    """One pane per user in ``room``, side by side, joined one after the other.

    Returns when every pane sees every user online, so that what the panes show
    (and their reprs) is the same on every run. ``client_options`` go to each pane's
    client (``reconnection=``, ``ping_interval=``, ``ping_timeout=``...).
    """
    names = list(users)
    panes: list[ChatPane] = []
    try:
        for user in names:
            panes.append(ChatPane(server, user, room, ns=ns, **client_options))
        deadline = time.monotonic() + timeout
        for pane in panes:
            while not set(names) <= set(pane.online):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{pane.user} sees {pane.online} online, not all of {names}")
                time.sleep(0.01)
    except BaseException:
        for pane in panes:
            pane.close()
        raise
    return PaneRow(panes)
