"""Chat panes in a real JupyterLab, driven through Debian's Chromium: typing, Enter, Send."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

LAB_CELLS = [
    "import rtlab\nserver = rtlab.start_server()\nrow = rtlab.chat_panes(server)\nrow",
    "print('second cell')",
]


@pytest.mark.browser
def test_typing_in_jupyterlab(tmp_path, chromium_path, capfd):
    """Enter and Send in a real JupyterLab reach every pane; the lights turn red on stop."""
    sync_api = pytest.importorskip("playwright.sync_api")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in LAB_CELLS])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nbformat.write(nb, tmp_path / "panes.ipynb")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    jupyter = Path(sys.executable).with_name("jupyter")
    lab = subprocess.Popen(
        [
            str(jupyter),
            "lab",
            "--no-browser",
            "--allow-root",
            "--ip=127.0.0.1",
            f"--port={port}",
            "--IdentityProvider.token=rtlab",
            f"--ServerApp.root_dir={tmp_path}",
            f"--LabApp.workspaces_dir={tmp_path}",
            "--LabApp.expose_app_in_browser=True",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=chromium_path, args=["--headless=new", "--no-sandbox"]
            )
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            deadline = time.monotonic() + 30
            while True:
                try:
                    page.goto(f"http://127.0.0.1:{port}/lab/tree/panes.ipynb?token=rtlab")
                    break
                except sync_api.Error:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.3)
            page.wait_for_function("window.jupyterapp && document.querySelector('.jp-Notebook')")
            kernel = "window.jupyterapp.shell.currentWidget.sessionContext"
            page.wait_for_function(f"{kernel}.session?.kernel?.status === 'idle'", timeout=60_000)
            page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
            page.wait_for_function(
                "document.querySelectorAll('.widget-text input').length === 3", timeout=60_000
            )

            def shown_everywhere(line: str) -> None:
                page.wait_for_function(
                    f"document.body.innerText.split({line!r}).length - 1 === 3", timeout=10_000
                )

            boxes = page.query_selector_all(".widget-text input")

            def shown(text: str, times: int) -> None:
                page.wait_for_function(
                    f"document.body.innerText.split({text!r}).length - 1 === {times}",
                    timeout=10_000,
                )

            boxes[0].click()
            page.keyboard.type("hello from the lab", delay=10)
            shown("alice is typing…", 2)  # in bob's pane and in carol's
            page.keyboard.press("Enter")
            shown_everywhere("alice: hello from the lab")
            shown("alice is typing…", 0)  # the message ended it
            page.wait_for_function(
                "document.querySelectorAll('.widget-text input')[0].value === ''"
            )
            boxes[2].click()
            page.keyboard.type("via the button")  # and Send at once
            page.query_selector_all(".widget-button")[2].click()
            shown_everywhere("carol: via the button")
            outputs = page.evaluate(
                "[...document.querySelectorAll('.jp-OutputArea-output')].map(e => e.innerText)"
            )
            assert len(outputs) == 2 and outputs[1] == "second cell\n"  # nothing strayed
            page.evaluate(f"{kernel}.session.kernel.requestExecute({{code: 'server.stop()'}})")
            shown_everywhere("🔴 disconnected")
            assert page.evaluate(
                "[...document.querySelectorAll('.widget-text input')].every(e => e.disabled)"
            )
            browser.close()
    finally:
        lab.terminate()
        lab.wait(timeout=20)
        capfd.readouterr()  # JupyterLab's and the kernel's own logs
