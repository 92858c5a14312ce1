"""The Host check in real Chromium: a DNS rebinding page gets 421, and the pages a
notebook hands out through a proxy (another Host, forwarding headers) work with its pass.

Chromium's ``--host-resolver-rules`` makes ``rebind.example`` and ``hub.example`` resolve
to 127.0.0.1, as an attacker's DNS (or a hub's proxy) would: the browser then sends
``Host: rebind.example:PORT`` to the lab server.
"""

from __future__ import annotations

import os
import time

import pytest

import rtlab

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

WAIT = 30_000  # ms: a hang guard for a loaded machine, never a speed claim


@pytest.fixture
def browser(chromium_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    from tests.e2e.test_browser import CHROMIUM_ARGS

    rules = "--host-resolver-rules=MAP rebind.example 127.0.0.1, MAP hub.example 127.0.0.1"
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path, args=[*CHROMIUM_ARGS, rules]
        )
        yield browser
        browser.close()


def expect(target):
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


def test_a_rebinding_name_gets_421_and_no_page(browser, server):
    page = browser.new_page()
    answer = page.goto(f"http://rebind.example:{server.port}/?user=alice")
    assert answer is not None and answer.status == 421
    assert "does not serve the name" in page.content()
    assert server.clients == []


def test_pages_with_the_servers_pass_work_under_another_host(browser, server):
    given = server.page_pass()
    page = browser.new_page()
    page.goto(f"http://hub.example:{server.port}/?user=erin&room=lobby&pass={given}")
    expect(page.locator("#status")).to_have_text("connected as erin", timeout=WAIT)
    echo = browser.new_page()
    echo.goto(f"http://hub.example:{server.port}/echo.html?pass={given}")
    expect(echo.locator("#status")).to_have_text("open", timeout=WAIT)
    rtlab.wait_until(lambda: len(server.clients) == 2, what="the chat and echo pages")


@pytest.fixture
def jupyter_proxy(tmp_path):
    """A Jupyter server with jupyter-server-proxy on 127.0.0.1, as on a hub or Binder: it
    passes the browser's Host on, and relays /proxy/PORT/... to 127.0.0.1:PORT."""
    import subprocess
    import sys
    import urllib.request
    from pathlib import Path

    from tests.e2e.jupyterlab import free_port, kill_tree

    port = free_port()
    command = [
        str(Path(sys.executable).with_name("jupyter")),
        "server",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        "--IdentityProvider.token=",
        "--ServerApp.password=",
        "--ServerApp.allow_remote_access=True",  # Host: hub.example is the point here
        f"--ServerApp.root_dir={tmp_path}",
    ]
    if os.geteuid() == 0:  # containers and CI machines
        command.append("--allow-root")
    log = tmp_path / "jupyter.log"
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    with log.open("wb") as out:
        jupyter = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        url = f"http://127.0.0.1:{port}/api/status"
        for _ in range(240):  # a hang guard of 60 s, polling a real condition
            assert jupyter.poll() is None, log.read_text()[-3000:]
            try:
                with urllib.request.urlopen(url, timeout=5) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                time.sleep(0.25)
        else:
            raise AssertionError(f"Jupyter never answered:\n{log.read_text()[-3000:]}")
        yield port
    finally:
        kill_tree(jupyter)


def test_pages_through_jupyter_server_proxy_need_the_pass(browser, server, jupyter_proxy):
    hub = f"http://hub.example:{jupyter_proxy}/proxy/{server.port}/"
    page = browser.new_page()
    answer = page.goto(f"{hub}?user=erin&room=lobby")
    assert answer is not None and answer.status == 421  # the hub's Host, relayed as is
    page.goto(f"{hub}?user=erin&room=lobby&pass={server.page_pass()}")
    expect(page.locator("#status")).to_have_text("connected as erin", timeout=WAIT)
    rtlab.wait_until(lambda: len(server.clients) == 1, what="the page's WebSocket")
