"""The static pages over plain HTTP (no browser): what is served where, and what it uses."""

from __future__ import annotations

import re
import urllib.request

import pytest

import rtlab
from rtlab.notebook import page as page_module


def fetch(url: str) -> tuple[int, str, str]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.headers["Content-Type"], response.read().decode()


@pytest.mark.parametrize("path", ["", "index.html", "echo.html"])
def test_pages_are_served_as_html(server, path):
    status, content_type, body = fetch(server.http_url + path)
    assert status == 200
    assert content_type == "text/html; charset=utf-8"
    assert body.startswith("<!doctype html>")


def test_the_echo_page_shows_the_four_events_on_echo(server):
    echo = fetch(server.http_url + "echo.html")[2]
    assert "new WebSocket(url)" in echo
    assert 'new URL("echo", location.href)' in echo
    for event in ("open", "message", "error", "close"):
        assert f'socket.addEventListener("{event}"' in echo


def test_the_chat_page_speaks_protocol_v1_on_ws(server):
    chat = fetch(server.http_url)[2]
    assert fetch(server.http_url + "index.html")[2] == chat
    assert "new WebSocket(url)" in chat
    assert 'new URL("ws", location.href)' in chat  # relative: works behind a proxy prefix
    for event in ("join-room", "send-message", "receive-message", "user-joined", "user-left"):
        assert f'"{event}"' in chat
    for element in ("status", "user", "room", "join", "online", "log", "text", "send"):
        assert f'id="{element}"' in chat
    assert 'maxlength="500"' in chat


@pytest.mark.parametrize("path", ["", "echo.html"])
def test_pages_are_self_contained_and_never_parse_received_html(server, path):
    body = fetch(server.http_url + path)[2]
    assert not re.search(r"\.(inner|outer)HTML\s*=", body)
    assert "insertAdjacentHTML(" not in body
    assert "document.write" not in body
    # no CDN, no external script, style, font or image: the course works offline
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", body)
    assert "@import" not in body


def test_page_url_appends_the_page_path(server, monkeypatch):
    monkeypatch.delenv("JUPYTERHUB_SERVICE_PREFIX", raising=False)
    assert rtlab.page_url(server) == server.http_url
    assert rtlab.page_url(server, "echo.html") == server.http_url + "echo.html"
    assert repr(rtlab.show_page(server, "echo.html")) == (
        f"<browser page {server.http_url}echo.html>"
    )
    assert rtlab.show_page(server, height=200).height == 200


def test_page_url_goes_through_jupyter_server_proxy_on_a_hub(server, monkeypatch):
    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", "/user/ada/")
    monkeypatch.setattr(page_module.importlib.util, "find_spec", lambda name: object())
    proxied = f"/user/ada/proxy/{server.port}/"
    assert rtlab.page_url(server).startswith(f"{proxied}?pass=")  # the server's own pass
    assert rtlab.page_url(server, "echo.html").startswith(f"{proxied}echo.html?pass=")
