"""Lesson 05's JavaScript exercise in a real JupyterLab, in Chromium, as a learner runs it:
the reconnecting client runs in the tab through the fault proxy's cuts and refusals, and
the box shows ✅ with what the server saw; a wrong answer typed in shows ❌ naming it.
(JupyterLab's set-up: jupyterlab.py.)"""

from __future__ import annotations

import re

import pytest

from tests.e2e.jupyterlab import RUN_WAIT, code_cells, copy_notebooks, lesson_page, run_all_above

pytestmark = [pytest.mark.browser, pytest.mark.timeout(900)]

LESSON = "05_resilience.ipynb"


def test_the_reconnecting_client_runs_in_the_learners_tab(tmp_path, chromium_path, capfd):
    sync_api = pytest.importorskip("playwright.sync_api")
    expect = sync_api.expect
    root = copy_notebooks(tmp_path)
    cells = code_cells(root / LESSON)
    box_cell = next(i for i, source in cells if "js_keep_asking(reconnecting_client)" in source)

    try:
        with lesson_page(root, LESSON, box_cell + 2, chromium_path) as page:
            run_all_above(page, box_cell + 1)

            box = page.locator(".rtlab-jsbox")
            expect(box).to_have_count(1)
            box.scroll_into_view_if_needed()
            editor, run = box.locator("textarea"), box.locator("button", has_text="Run")
            verdict, log = box.locator(".rtlab-jsbox-verdict"), box.locator(".rtlab-jsbox-log")
            run.click()
            expect(verdict).to_contain_text("✅ js_keep_asking: correct", timeout=RUN_WAIT)
            expect(verdict).to_contain_text("connections from a browser, 7 refused attempts")
            expect(log).to_contain_text(re.compile(r"closed 1006, again in \d+ ms"))

            solution = editor.input_value()
            wait = re.search(r"setTimeout\(connect, .*\);", solution)
            assert wait is not None
            editor.fill(solution.replace(wait.group(0), "connect();"))
            run.click()
            hot = re.compile(  # which of the two depends on how fast handshakes fail here
                r"a hot loop, with no wait between attempts|they did not grow"
            )
            expect(verdict).to_contain_text(hot, timeout=RUN_WAIT)
            expect(run).to_be_enabled()
    finally:
        capfd.readouterr()  # the kernel's and JupyterLab's own chatter
