"""The live wire table: fed from the proxy's loop, redrawn without printing."""

from __future__ import annotations

import pytest
from websockets.sync.client import connect

import rtlab


def test_the_table_follows_the_traffic_and_clears(server):
    with rtlab.start_proxy(server, capture=True) as proxy:
        view = rtlab.wire_view(proxy, decode=lambda payload: f"«{payload}»")
        assert "0 records" in view.status.value
        with connect(proxy.url + "/echo", compression=None) as ws:
            ws.send("a <b>")
            assert ws.recv(timeout=10) == "Echo: a <b>"
        rtlab.wait_until(lambda: ">6 records" in view.status.value, what="the table's redraw")
        table = view.table.value
        assert "GET /echo HTTP/1.1" in table and "1000" in table
        assert "«Echo: a &lt;b&gt;»" in table  # decoded, escaped
        assert table.index("Echo: a") < table.index("GET /echo")  # newest first, as DevTools
        view.clear()
        assert proxy.wire.records == []
        assert "0 records" in view.status.value
        view.stop()
        assert (
            repr(view) == "WireView(live table of the proxy's traffic; proxy.wire.text() prints it)"
        )
        assert view._repr_mimebundle_()["text/plain"] == repr(view)


def test_a_proxy_that_does_not_capture_has_no_view(server):
    with rtlab.start_proxy(server) as proxy, pytest.raises(RuntimeError, match="capture=True"):
        rtlab.wire_view(proxy)
