"""A JavaScript exercise in a real JupyterLab, run in Chromium as a learner runs it.

JupyterLab runs headless on a free 127.0.0.1 port with a copy of notebooks/ (see
jupyterlab.py). The test opens lesson 02, clears its
outputs, runs every cell above the clean-up cell, then presses Run in the exercise's box:
the solution, in this very tab, talks to the lab server and the box shows ✅. Then it types
wrong answers into the box and sees ❌ naming what the server saw, or the JavaScript error.
"""

from __future__ import annotations

import re

import pytest

from tests.e2e.jupyterlab import (
    ARTIFACTS,
    RUN_WAIT,
    code_cells,
    copy_notebooks,
    lesson_page,
    run_all_above,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(900)]

LESSON = "02_native_api.ipynb"
WRONG = {  # code typed into the box -> what its verdict must say
    "const socket = new WebSocket(url);\n"
    "socket.onopen = () => socket.send('Hello Server!');\n"
    "socket.onmessage = () => socket.close(4000, 'bye');": (
        "❌ browser_client: the server received close 4000 'bye', not 1000 'done'"
    ),
    "const socket = new WebSocket(url);\nsocket.onopen = () => socket.sendText('Hello Server!');": (
        "❌ browser_client: your code threw TypeError: socket.sendText is not a function"
    ),
}


def test_the_javascript_exercise_runs_in_the_learners_tab(tmp_path, chromium_path, capfd):
    sync_api = pytest.importorskip("playwright.sync_api")
    expect = sync_api.expect
    root = copy_notebooks(tmp_path)
    cleanup_cell = code_cells(root / LESSON)[-1][0]
    shot = ARTIFACTS / "jupyterlab-jsbox.png"

    try:
        with lesson_page(root, LESSON, cleanup_cell + 1, chromium_path) as page:
            run_all_above(page, cleanup_cell)

            box = page.locator(".rtlab-jsbox")
            expect(box).to_have_count(1)
            assert "Error displaying widget" not in page.locator("body").text_content()
            box.scroll_into_view_if_needed()
            editor, run = box.locator("textarea"), box.locator("button", has_text="Run")
            verdict, log = box.locator(".rtlab-jsbox-verdict"), box.locator(".rtlab-jsbox-log")
            expect(editor).to_have_value(re.compile(r"new WebSocket\(url\)"))  # the solution
            run.click()
            expect(verdict).to_contain_text("✅ browser_client: correct", timeout=RUN_WAIT)
            expect(verdict).to_contain_text("the server saw a browser (Origin http://127.0.0.1:")
            expect(log).to_contain_text("Message from server: Echo: Hello Server!")
            expect(log).to_contain_text("closed: 1000 done true")
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=shot, full_page=True)

            for code, expected in WRONG.items():
                editor.fill(code)
                run.click()
                expect(verdict).to_contain_text(expected, timeout=RUN_WAIT)
                expect(run).to_be_enabled()
    finally:
        capfd.readouterr()  # the kernel's and JupyterLab's own chatter
    with capfd.disabled():
        print(f"\nJupyterLab screenshot: {shot}")
