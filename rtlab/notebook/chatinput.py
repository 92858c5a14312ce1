"""A text box with a Send button whose Enter carries the text: the chat pane's input.

ipywidgets' own ``Text`` sends each key's value as a state update, and holds back
the next update while one is in flight, but sends Enter's ``{"event": "submit"}`` at
once: the kernel could see Enter before the last keys. Here the browser sends
``{"event": "submit", "text": ...}``, the box's text in the same message as the
Enter (or the click on Send), then empties the box itself, so nothing can overtake
anything. Keys still update :attr:`ChatInput.value` as they are typed (that is
how a pane knows its user types).

Built on anywidget: its JupyterLab extension ships prebuilt in its wheel, and the
front end below is a self-contained ES module (no CDN), so it works offline. It
uses ipywidgets' own CSS classes (``widget-text``, ``widget-button``), so it looks
like the widgets around it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anywidget
import traitlets
from ipywidgets import CallbackDispatcher

_ESM = """
function render({ model, el }) {
  el.style.display = "flex";
  el.style.gap = "4px";
  const box = document.createElement("div");
  box.className = "jupyter-widgets widget-inline-hbox widget-text";
  box.style.flex = "1 1 auto";
  box.style.width = "auto";
  box.style.margin = "0";
  const input = document.createElement("input");
  input.type = "text";
  input.className = "widget-input";
  input.style.width = "100%";
  box.appendChild(input);
  const button = document.createElement("button");
  button.className = "jupyter-widgets jupyter-button widget-button";
  button.style.width = "64px";
  button.style.margin = "0";
  el.append(box, button);

  const show = () => {
    if (input.value !== model.get("value")) input.value = model.get("value");
    input.placeholder = model.get("placeholder");
    button.textContent = model.get("description");
    button.title = model.get("tooltip");
    input.disabled = button.disabled = model.get("disabled");
  };
  const typed = () => {
    model.set("value", input.value);
    model.save_changes();
  };
  const submit = () => {
    if (input.disabled) return;
    const text = input.value;
    model.send({ event: "submit", text });  // the text travels with the Enter
    if (text) {
      input.value = "";
      typed();
    }
  };
  const keydown = (event) => {
    if (event.key === "Enter" && !event.isComposing) {
      event.preventDefault();
      submit();
    }
  };
  const command = (message) => {
    if (message?.do === "focus") input.focus();
    else if (message?.do === "blur") input.blur();
  };
  input.addEventListener("input", typed);
  input.addEventListener("keydown", keydown);
  button.addEventListener("click", submit);
  model.on("change", show);
  model.on("msg:custom", command);
  show();
  return () => {
    model.off("change", show);
    model.off("msg:custom", command);
  };
}
export default { render };
"""


class ChatInput(anywidget.AnyWidget):
    """A text box and a Send button; Enter or Send hands the box's text to :meth:`on_submit`.

    ``value`` follows the keys as they are typed; setting it from code is as typing.
    """

    _esm = _ESM
    value = traitlets.Unicode("").tag(sync=True)
    placeholder = traitlets.Unicode("").tag(sync=True)
    description = traitlets.Unicode("Send").tag(sync=True)  # the button's label
    tooltip = traitlets.Unicode("").tag(sync=True)
    disabled = traitlets.Bool(False).tag(sync=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._submit_handlers = CallbackDispatcher()
        self.on_msg(self._handle_submit)
        self.button = SendButton(self)

    def on_submit(self, callback: Callable[[str], Any], remove: bool = False) -> None:
        """Call ``callback(text)`` on Enter or Send, with what the box held then."""
        self._submit_handlers.register_callback(callback, remove=remove)

    def submit(self) -> None:
        """As clicking Send: hand on what the box holds and empty it."""
        text, self.value = self.value, ""
        self._submit_handlers(text)

    def focus(self) -> None:
        """Put the cursor in the box."""
        self.send({"do": "focus"})

    def blur(self) -> None:
        self.send({"do": "blur"})

    def _handle_submit(self, _: Any, content: Any, buffers: Any) -> None:
        if isinstance(content, dict) and content.get("event") == "submit":
            text = content.get("text")
            if isinstance(text, str):
                self._submit_handlers(text)


class SendButton:
    """A :class:`ChatInput`'s Send button, for code: ``click()`` as clicking it."""

    def __init__(self, box: ChatInput) -> None:
        self._box = box

    @property
    def disabled(self) -> bool:
        return self._box.disabled

    def click(self) -> None:
        """Send what the box holds and empty it, as clicking Send does."""
        self._box.submit()

    def __repr__(self) -> str:
        return f"<SendButton {'disabled' if self.disabled else 'enabled'}>"
