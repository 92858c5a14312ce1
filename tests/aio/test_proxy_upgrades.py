"""The proxy can refuse WebSocket upgrades, as some corporate proxies do, and still pass HTTP."""

from __future__ import annotations

import urllib.request

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

import rtlab
from rtlab.aio.proxy import asks_upgrade


def test_an_upgrade_request_is_told_apart_from_plain_http():
    upgrade = b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: WebSocket\r\n\r\n"
    assert asks_upgrade(upgrade)
    assert not asks_upgrade(b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n")
    assert not asks_upgrade(b"POST /x HTTP/1.1\r\nHost: x\r\n\r\nUpgrade: websocket")  # a body


def test_refused_upgrades_get_403_while_http_passes(server):
    with rtlab.start_proxy(server) as proxy:
        proxy.faults(refuse_upgrades=True)
        with pytest.raises(InvalidStatus) as refused:
            connect(proxy.url + "/echo", open_timeout=10)
        assert refused.value.response.status_code == 403
        with urllib.request.urlopen(proxy.http_url, timeout=10) as page:
            assert page.status == 200
        assert proxy.proxy.refused == 1
        proxy.faults(refuse_upgrades=False)
        with connect(proxy.url + "/echo", open_timeout=10) as ws:
            ws.send("through again")
            assert ws.recv(timeout=10) == "Echo: through again"
