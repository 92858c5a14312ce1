"""A JavaScript exercise box: the learner's code, run in their own browser tab, then graded.

The box (an anywidget, like chatinput.py: a self-contained ES module, no CDN) shows the
code in an editable text area and a Run button. Run sends the code to the kernel, which
starts an :class:`Attempt` and answers with the URL to use; the page then runs the code
with ``url`` bound to it (:data:`RUNNER`), shows what the code logs, and reports to the
kernel what it logged, each JavaScript error it threw (at the top level or in a
``WebSocket`` listener) and each ``close`` event. The kernel grades the attempt in a worker
thread, with waits that all have a timeout, shows the verdict under the code, and tells
the page to stop the code (its timers and sockets).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anywidget
import traitlets

# The page's side of a run, also used as is by tests that drive a page without JupyterLab:
# runExercise(code, url, report) calls report(kind, text) with kind "log", "error", "closed" or
# "close-called" (the code called close() on an open socket; text: "HEARD AFTER DELAY
# ARMED", see CloseCall), and returns stop(): it cancels the code's timers and closes its
# sockets (a reconnecting client would otherwise go on in the tab after its verdict).
RUNNER = """
function runExercise(code, url, report) {
  let stopped = false;
  const sockets = new Set();
  const cancels = [];
  const tell = (kind, text) => { if (!stopped) report(kind, text); };
  const show = (value) => {
    if (typeof value === "string") return value;
    if (value instanceof Event) return `[${value.constructor.name} ${value.type}]`;
    try { return JSON.stringify(value) ?? String(value); } catch { return String(value); }
  };
  const failed = (error) => tell("error", error instanceof Error
    ? `${error.name}: ${error.message}` : `uncaught ${show(error)}`);
  const say = (real) => (...args) => { real(...args); tell("log", args.map(show).join(" ")); };
  const pageConsole = { ...console, log: say(console.log), info: say(console.info),
    debug: say(console.debug), warn: say(console.warn), error: say(console.error) };
  const guarded = new WeakMap();
  const guard = (listener) => {
    if (typeof listener !== "function") return listener;
    if (!guarded.has(listener)) guarded.set(listener, function (...args) {
      try { return listener.apply(this, args); } catch (error) { failed(error); throw error; }
    });
    return guarded.get(listener);
  };
  // The code's timer whose callback runs now, with the promise jobs it sets off (an awaited
  // sleep's), until the next task: {delay, messages: message events heard when it was set}.
  let onTimer = null;
  let messages = 0;  // message events of every socket so far
  const pageTimeout = setTimeout;  // the page's own: an unwrapped one, never cancelled
  const timer = (start, clear) => (callback, delay, ...rest) => {
    if (stopped) return 0;
    const armed = { delay: Number(delay) || 0, messages };
    const call = guard(callback);
    const run = typeof call !== "function" ? call : function (...args) {
      onTimer = armed;
      pageTimeout(() => { if (onTimer === armed) onTimer = null; });
      return call.apply(this, args);
    };
    const id = start.call(window, run, delay, ...rest);
    cancels.push(() => clear.call(window, id));
    return id;
  };
  const Native = window.WebSocket;
  const heard = new WeakMap();  // socket -> {count, at}: message events dispatched to it so far
  class WebSocket extends Native {
    constructor(...args) {
      super(...args);
      sockets.add(this);
      heard.set(this, { count: 0, at: 0 });  // counted before the learner's own listeners run
      super.addEventListener("message", () => {
        heard.set(this, { count: heard.get(this).count + 1, at: performance.now() });
        messages += 1;
        onTimer = null;  // an event's task, not a timer's
      });
      for (const type of ["open", "error", "close"]) {
        super.addEventListener(type, () => { onTimer = null; });
      }
      // after the learner's own close listeners, which run in this same dispatch
      super.addEventListener("close", (event) => setTimeout(() => tell("closed",
        `${event.code} ${event.reason}`)));
      if (stopped) this.close(1000, "run stopped");
    }
    close(...args) {  // what the page had heard when the code closed: the server can't tell
      if (this.readyState === Native.OPEN) {
        const { count, at } = heard.get(this);
        const after = count ? Math.round(performance.now() - at) : -1;
        const timer = onTimer ? `${Math.round(onTimer.delay)} ${onTimer.messages}` : "-1 -1";
        tell("close-called", `${count} ${after} ${timer}`);
      }
      return super.close(...args);
    }
    addEventListener(type, listener, options) {
      super.addEventListener(type, guard(listener), options);
    }
    removeEventListener(type, listener, options) {
      super.removeEventListener(type, guarded.get(listener) ?? listener, options);
    }
  }
  for (const name of ["onopen", "onmessage", "onerror", "onclose"]) {
    Object.defineProperty(WebSocket.prototype, name, {
      get() { return Reflect.get(Native.prototype, name, this); },
      set(listener) { Reflect.set(Native.prototype, name, guard(listener), this); },
    });
  }
  try {
    new Function("url", "WebSocket", "console", "setTimeout", "setInterval", code)(
      url, WebSocket, pageConsole, timer(setTimeout, clearTimeout),
      timer(setInterval, clearInterval));
  } catch (error) {
    failed(error);
  }
  return function stop() {  // the run is over: no more timers, reports or open sockets
    stopped = true;
    cancels.forEach((cancel) => cancel());
    sockets.forEach((socket) => socket.close(1000, "run stopped"));
  };
}
"""

_ESM = (
    RUNNER
    + """
function render({ model, el }) {
  el.classList.add("rtlab-jsbox");
  const title = document.createElement("div");
  const editor = document.createElement("textarea");
  editor.spellcheck = false;
  editor.style.cssText = "width:100%;box-sizing:border-box;font-family:var(--jp-code-font-family,"
    + "monospace);font-size:var(--jp-code-font-size,13px);tab-size:2";
  const button = document.createElement("button");
  button.className = "jupyter-widgets jupyter-button widget-button";
  button.textContent = "Run";
  const log = document.createElement("pre");
  log.className = "rtlab-jsbox-log";
  log.style.cssText = "margin:4px 0;max-height:16em;overflow:auto";
  const verdict = document.createElement("pre");
  verdict.className = "rtlab-jsbox-verdict";
  verdict.style.cssText = "margin:4px 0;white-space:pre-wrap";
  el.append(title, editor, button, log, verdict);

  const show = () => {
    title.textContent = `JavaScript exercise: ${model.get("name")} (runs in this browser tab)`;
    if (editor.value !== model.get("code")) editor.value = model.get("code");
    editor.rows = Math.max(6, model.get("code").split("\\n").length + 1);
    verdict.textContent = model.get("verdict");
    button.disabled = model.get("running");
  };
  editor.addEventListener("input", () => {
    model.set("code", editor.value);
    model.save_changes();
  });
  button.addEventListener("click", () => {
    log.textContent = "";
    model.send({ event: "run", code: editor.value });  // the code travels with the click
  });
  let stopRun = null;
  let running = null;
  const command = (message) => {
    if (message?.do === "stop" && message.run === running) stopRun?.();
    if (message?.do !== "run") return;
    stopRun?.();
    running = message.run;
    const address = new URL(message.url, location.href);
    address.protocol = address.protocol.replace(/^http/, "ws");
    address.searchParams.set("run", message.run);
    stopRun = runExercise(message.code, address.href, (kind, text) => {
      if (kind !== "closed") log.textContent += (kind === "error" ? "✖ " : "") + text + "\\n";
      model.send({ event: "report", run: message.run, kind, text });
    });
  };
  model.on("change", show);
  model.on("msg:custom", command);
  show();
  return () => {
    stopRun?.();
    model.off("change", show);
    model.off("msg:custom", command);
  };
}
export default { render };
"""
)


@dataclass(frozen=True)
class CloseCall:
    """What the page knew when the code called ``close()`` on an open socket."""

    heard: int  # message events the socket had dispatched
    after_ms: int | None  # since the latest of them; None before any
    # the requested delay of the code's timer whose callback (or the promise jobs it set
    # off, an awaited sleep's) called close(); None when close() came from no timer
    timer_ms: int | None = None
    armed_heard: int | None = None  # message events heard (every socket) when it was set

    @classmethod
    def parse(cls, text: str) -> CloseCall:
        """From the page's report, "HEARD AFTER DELAY ARMED" (-1: none); a bare count too."""
        try:
            numbers = [int(n) for n in str(text).split()]
        except ValueError:
            numbers = []
        heard, after, delay, armed = [*numbers, -1, -1, -1, -1][:4] if numbers else [0, -1, -1, -1]
        return cls(max(heard, 0), *(n if n >= 0 else None for n in (after, delay, armed)))


class Attempt:
    """One press of Run: its id (the ``run`` of the URL) and what the page reported."""

    def __init__(self, run: str, code: str) -> None:
        self.run = run
        self.code = code
        self.logs: list[str] = []  # what the code logged with console.log and friends
        self.errors: list[str] = []  # JavaScript errors the code threw, "TypeError: ..."
        self.closes: list[str] = []  # "CODE REASON" of each close event the page saw
        # each open socket's close() call: how many messages it had delivered by then
        self.close_calls: list[int] = []
        self.close_details: list[CloseCall] = []  # each such call, with when and from where
        self._changed = threading.Condition()

    def report(self, kind: str, text: str) -> None:
        """Take one report from the page (any thread)."""
        with self._changed:
            if kind == "close-called":
                call = CloseCall.parse(text)
                self.close_details.append(call)
                self.close_calls.append(call.heard)
            else:
                lists = {"log": self.logs, "error": self.errors, "closed": self.closes}
                lists.get(kind, []).append(str(text))
            self._changed.notify_all()

    def wait(self, condition: Callable[[], bool], timeout: float, poll: float = 0.05) -> bool:
        """Until ``condition()`` holds or the page reported an error; False after ``timeout``."""
        deadline = time.monotonic() + timeout
        while not (self.errors or condition()):
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            with self._changed:
                self._changed.wait(min(poll, left))  # woken early by a report
        return not self.errors


Grader = Callable[[Attempt], Any]  # an attempt -> a verdict (anything printable)


class JsBox(anywidget.AnyWidget):
    """A JavaScript exercise: ``code`` runs in the browser with ``url`` bound, ``grade`` judges.

    Its plain-text form is one deterministic line (what nbval compares).
    """

    _esm = _ESM
    name = traitlets.Unicode("").tag(sync=True)
    code = traitlets.Unicode("").tag(sync=True)
    verdict = traitlets.Unicode("").tag(sync=True)
    running = traitlets.Bool(False).tag(sync=True)

    def __init__(
        self,
        name: str,
        code: str,
        url: str,
        grade: Grader,
        on_close: Callable[[], Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """``on_close`` runs when the box is closed (say, to stop the servers behind ``url``)."""
        super().__init__(name=name, code=code.strip("\n") + "\n", **kwargs)
        self._on_close = on_close
        self.url = url  # where the page connects: ws://..., or a path on the notebook server
        self._grade = grade
        self._runs = itertools.count(1)
        self.attempt: Attempt | None = None
        self.graded = threading.Event()  # set when the current attempt has its verdict
        self.on_msg(self._handle_message)

    def run(self, code: str | None = None) -> Attempt:
        """As pressing Run: start an attempt and ask the page to run ``code`` (the box's)."""
        if code is not None:
            self.code = code
        attempt = Attempt(f"{id(self):x}-{next(self._runs)}", self.code)
        self.attempt = attempt
        self.graded.clear()
        self.running = True
        self.verdict = "running in your browser…"
        self.send({"do": "run", "run": attempt.run, "url": self.url, "code": attempt.code})
        threading.Thread(target=self._judge, args=(attempt,), daemon=True).start()
        return attempt

    def close(self) -> None:
        """Close the box, and stop what stands behind its URL."""
        if self._on_close is not None:
            self._on_close()
            self._on_close = None
        super().close()

    def _judge(self, attempt: Attempt) -> None:
        try:
            verdict = str(self._grade(attempt))
        except Exception as error:  # a check must never leave the box spinning
            verdict = f"❌ the check itself failed: {type(error).__name__}: {error}"
        if attempt is self.attempt:
            self.verdict = verdict
            self.running = False
            self.send({"do": "stop", "run": attempt.run})  # the page stops the code
            self.graded.set()

    def _handle_message(self, _: Any, content: Any, buffers: Any) -> None:
        if not isinstance(content, dict):
            return
        if content.get("event") == "run" and isinstance(content.get("code"), str):
            self.run(content["code"])
        elif (
            content.get("event") == "report"
            and self.attempt is not None
            and content.get("run") == self.attempt.run
        ):
            self.attempt.report(str(content.get("kind")), str(content.get("text")))

    def __repr__(self) -> str:
        line = f"<JavaScript exercise {self.name}: press Run to run it in this browser tab>"
        return f"{line}\n{self.verdict}" if self.verdict else line
