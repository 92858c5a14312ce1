"""Chromium's native WebSocket API against a server that compresses only above a threshold."""

from __future__ import annotations

import pytest

import rtlab
from rtlab.aio.compression import negotiated
from rtlab.aio.server import LabServer
from tests.e2e.test_browser import CHROMIUM_ARGS

pytestmark = pytest.mark.browser

# In the page: open /echo, send each message, and collect the answers and the
# extensions the browser negotiated.
ROUND_TRIP = """async (messages) => {
  const url = new URL("echo", location.href);
  url.protocol = "ws:";
  const socket = new WebSocket(url);
  await new Promise((resolve, reject) => {
    socket.onopen = resolve;
    socket.onerror = () => reject(new Error("no connection"));
  });
  const answers = [];
  for (const message of messages) {
    const answer = new Promise((resolve) => (socket.onmessage = (e) => resolve(e.data)));
    socket.send(message);
    answers.push(await answer);
  }
  return { answers, extensions: socket.extensions };  // left open: the server counts
}"""


def sent_by_the_server(server: LabServer) -> list[tuple[int, int]]:
    """(compressed, skipped) messages of each open connection, as the server sent them."""
    found = []
    for connection in server._clients:
        extension = negotiated(connection.protocol.extensions)
        assert extension is not None, "Chromium offers permessage-deflate"
        found.append((extension.compressed, extension.skipped))
    return sorted(found)


def test_chromium_sends_and_receives_small_and_large_messages_through_a_threshold(
    chromium_path,
):
    sync_api = pytest.importorskip("playwright.sync_api")
    small = "small message"
    large = '{"event":"receive-message","data":{"message":"hello from Chromium"}}' * 200
    with (
        rtlab.start_server(compression=1024, ping_interval=None) as server,
        rtlab.start_proxy(server) as proxy,
        sync_api.sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(proxy.http_url + "echo.html")  # the server's own origin, via the proxy
            page.wait_for_selector("#status.open", timeout=10_000)
            proxy.reset()
            result = page.evaluate(ROUND_TRIP, [small, large, small])
            traffic = proxy.reset()
            sent = server.call(sent_by_the_server, server.server)
        finally:
            browser.close()
    assert result["extensions"].startswith("permessage-deflate")
    assert result["answers"] == [f"Echo: {small}", f"Echo: {large}", f"Echo: {small}"]
    # The large echo went compressed (RSV1 set), the small ones as they are: the server
    # sent far fewer bytes than the answers hold, and decoded what Chromium compressed.
    answered = sum(len(a) for a in result["answers"])
    assert traffic.to_client < answered / 5
    assert sent == [(0, 0), (1, 2)]  # the page's own idle socket, and ours
