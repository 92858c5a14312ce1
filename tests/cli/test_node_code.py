"""The tutorial's Node code run as written (node -e, beside the bench's installed ws)."""

from __future__ import annotations

import asyncio
import shutil

import pytest
from websockets.asyncio.client import connect

from rtlab.bench import node_code
from rtlab.bench.peers import NotInstalled

ECHO = """
const WebSocket = require('ws');
const wss = new WebSocket.Server({ host: '127.0.0.1', port: 0 });
wss.on('listening', () => console.log(`listening ${wss.address().port}`));
wss.on('connection', (ws) => {
  console.log('Client connected');
  ws.on('message', (message) => {
    console.log('Received:', message);
    ws.send(`Echo: ${message}`);
  });
});
"""


NODE = bool(shutil.which("node") and shutil.which("npm"))
needs_node = pytest.mark.skipif(not NODE, reason="node and npm not found")


@needs_node
def test_the_tutorials_echo_server_answers_and_its_log_is_kept():
    server = node_code.start_node(ECHO)
    try:

        async def ask() -> str:
            async with connect(server.url) as ws:
                await ws.send("Hello Server!")
                return await ws.recv()

        assert asyncio.run(ask()) == "Echo: Hello Server!"
        assert server.wait_for_output(2) == [
            "Client connected",
            "Received: <Buffer 48 65 6c 6c 6f 20 53 65 72 76 65 72 21>",
        ]
    finally:
        server.stop()
    assert repr(server) == f"<NodeServer ws://127.0.0.1:{server.port} stopped>"


@needs_node
def test_code_that_never_listens_is_an_error_naming_its_output():
    with pytest.raises(RuntimeError, match=r"node did not start: .*ReferenceError"):
        node_code.start_node("nope();")


def test_without_node_it_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr(node_code.shutil, "which", lambda name: None)
    with pytest.raises(NotInstalled, match=r"node and npm not found: install Node\.js 18"):
        node_code.start_node(ECHO)
