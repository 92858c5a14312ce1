"""A live table of what crosses a capturing proxy, like the browser's DevTools WebSocket panel.

::

    proxy = rtlab.start_proxy(server, capture=True)
    rtlab.wire_view(proxy)        # the table fills in as traffic flows
    print(proxy.wire.text())      # the same records as text (what nbval compares)

The proxy's loop feeds the wire log; each new record asks that loop to redraw the
table a moment later (at most ``REFRESH`` times a second, however fast frames come).
Redrawing only sets a widget's value: nothing prints from the background thread.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets

from rtlab.core.wirelog import TO_SERVER, WireRecord
from rtlab.notebook.background import RunningProxy

REFRESH = 0.2  # seconds between redraws, at most
ROWS = 100  # the newest rows shown

_CELL = "padding: 1px 8px; border-bottom: 1px solid var(--jp-border-color3, #eee);"
_TABLE = (
    "max-height: 260px; overflow-y: auto; font-family: var(--jp-code-font-family, monospace);"
    " font-size: 12px; border: 1px solid var(--jp-border-color2, #e0e0e0)"
)
_SENT = "background: var(--jp-success-color3, #e8f5e9)"  # DevTools tints what the client sent
_COLUMNS = ("time", "conn", "", "opcode", "FIN", "RSV1", "MASK", "length", "data")


class WireView(widgets.VBox):
    """A capturing proxy's records as a live table: ↑ sent by the client, ↓ by the server."""

    def __init__(
        self,
        proxy: RunningProxy,
        *,
        rows: int = ROWS,
        decode: Callable[[bytes | str], str] | None = None,
    ) -> None:
        self.proxy = proxy
        self.wire = proxy.wire  # raises if the proxy does not capture
        self.rows = rows
        self.decode = decode
        self._pending = False
        self.status = widgets.HTML()
        self.table = widgets.HTML()
        clear = widgets.Button(description="Clear", icon="ban", layout={"width": "90px"})
        clear.on_click(lambda _: self.clear())
        super().__init__([widgets.HBox([clear, self.status]), self.table])
        self._render()
        self._unsubscribe = self.wire.subscribe(self._on_record)

    def clear(self) -> None:
        """Forget the records so far (the proxy keeps decoding)."""
        self.wire.clear()
        self._render()

    def stop(self) -> None:
        """Stop following the proxy; the table keeps what it shows."""
        self._unsubscribe()

    def _on_record(self, record: WireRecord) -> None:
        # On the proxy's loop: redraw soon, once for a burst of records.
        if not self._pending:
            self._pending = True
            self.proxy.loop.call_later(REFRESH, self._render)

    def _render(self) -> None:
        self._pending = False
        records = self.wire.records
        shown = records[-self.rows :] if self.rows else []
        dropped = self.wire.dropped + len(records) - len(shown)
        self.status.value = (
            f"<span style='font-size: 12px'>{len(records)} records"
            + (f", {dropped} older not shown" if dropped else "")
            + "</span>"
        )
        head = "".join(f"<th style='{_CELL} text-align: left'>{c}</th>" for c in _COLUMNS)
        body = "".join(self._row(record) for record in reversed(shown))
        self.table.value = (
            f"<div style='{_TABLE}'><table style='border-collapse: collapse; width: 100%'>"
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"
        )

    def _row(self, record: WireRecord) -> str:
        sent = record.direction == TO_SERVER
        arrow = (
            "<span style='color: #2e7d32'>↑</span>"
            if sent
            else "<span style='color: #c62828'>↓</span>"
        )
        data = record.line if record.kind != "frame" else record.preview
        if (
            record.kind == "frame"
            and self.decode is not None
            and record.opcode in ("TEXT", "BINARY")
        ):
            try:
                data = self.decode(record.payload)
            except Exception as error:  # a decoder's bug must not stop the view
                data = f"{data}  [decode failed: {type(error).__name__}]"
        if record.kind == "http" and record.length:
            data += f"  body: {record.preview}"
        if record.inflated is not None:
            data += f"  (inflated to {record.inflated})"
        flags = (
            ("", "", "")
            if record.kind != "frame"
            else (
                str(int(record.fin)),
                str(int(record.rsv1)),
                str(int(record.masked)),
            )
        )
        opcode = record.opcode or ("HTTP" if record.kind == "http" else "?")
        cells = (
            f"{record.time:.3f}",
            str(record.conn),
            arrow,
            opcode,
            *flags,
            str(record.length),
            html.escape(data),
        )
        style = f" style='{_SENT}'" if sent else ""
        return (
            f"<tr{style}>" + "".join(f"<td style='{_CELL}'>{cell}</td>" for cell in cells) + "</tr>"
        )

    def __repr__(self) -> str:
        return "WireView(live table of the proxy's traffic; proxy.wire.text() prints it)"

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is not None:  # ipywidgets shortens text/plain; nbval compares it whole
            bundle["text/plain"] = repr(self)
        return bundle


def wire_view(
    proxy: RunningProxy,
    *,
    rows: int = ROWS,
    decode: Callable[[bytes | str], str] | None = None,
) -> WireView:
    """A live table of what crosses ``proxy`` (started with ``capture=True``): the newest
    ``rows`` records, each data frame's payload shown through ``decode`` if given."""
    return WireView(proxy, rows=rows, decode=decode)
