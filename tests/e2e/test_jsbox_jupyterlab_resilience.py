"""Lesson 05's JavaScript exercise in a real JupyterLab, in Chromium, as a learner runs it:
the reconnecting client runs in the tab through the fault proxy's cuts and refusals, and
the box shows ✅ with what the server saw; a wrong answer typed in shows ❌ naming it.
(JupyterLab set-up and helpers: test_jupyterlab_ui.py, as test_jsbox_jupyterlab.py.)"""

from __future__ import annotations

import re
import shutil

import pytest

from tests.e2e.test_browser import CHROMIUM_ARGS
from tests.e2e.test_jupyterlab_ui import (
    NOTEBOOK_JS,
    ROOT,
    RUN_WAIT,
    TOKEN,
    WAIT,
    click_menu,
    code_cells,
    free_port,
    kill_tree,
    start_lab,
    wait_for_cells,
    wait_until_answering,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(900)]

LESSON = "05_resilience.ipynb"


def test_the_reconnecting_client_runs_in_the_learners_tab(tmp_path, chromium_path, capfd):
    sync_api = pytest.importorskip("playwright.sync_api")
    expect = sync_api.expect
    expect.set_options(timeout=WAIT)  # restored in the finally below
    root = tmp_path / "notebooks"
    shutil.copytree(ROOT / "notebooks", root, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    cells = code_cells(root / LESSON)
    box_cell = next(i for i, source in cells if "js_keep_asking(reconnecting_client)" in source)

    home = tmp_path / "lab"
    home.mkdir()
    port = free_port()
    lab = start_lab(root, home, port)
    try:
        wait_until_answering(lab, port, home / "jupyterlab.log")
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(WAIT)
            page.goto(f"http://127.0.0.1:{port}/lab/tree/{LESSON}?token={TOKEN}")
            page.wait_for_function(
                f"window.jupyterapp && {NOTEBOOK_JS}?.content?.widgets?.length > {box_cell}"
            )
            page.wait_for_function(
                f"{NOTEBOOK_JS}.sessionContext.session?.kernel?.status === 'idle'",
                timeout=RUN_WAIT,
            )
            click_menu(page, "Edit", "Clear Outputs of All Cells")
            page.evaluate(f"{NOTEBOOK_JS}.content.activeCellIndex = {box_cell + 1}")
            click_menu(page, "Run", "Run All Above Selected Cell")
            wait_for_cells(page, box_cell)

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
            browser.close()
    finally:
        expect.set_options(timeout=None)
        kill_tree(lab)
        capfd.readouterr()  # the kernel's and JupyterLab's own chatter
