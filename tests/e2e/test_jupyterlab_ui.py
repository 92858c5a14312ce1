"""A lesson in a real JupyterLab, driven in Chromium as a learner would drive it.

JupyterLab runs headless on a free 127.0.0.1 port with a copy of notebooks/. The test
opens the lesson (03, and 07 once it exists), clears its outputs, runs every cell up
to the last one (the clean-up cell) from the Run menu, and waits until the kernel is
idle with every cell run: the ChatPanes are rendered widget views, and no "Error
displaying widget" appears. It types into the first pane and presses Enter, sees the
line in every pane (and in the chat page the lesson shows in an iframe), types key by
key into the second and presses Enter at once, then clicks Send there, then runs the
clean-up cell and sees every pane turn red.
A screenshot lands in $RTLAB_ARTIFACTS (default test-artifacts/, gitignored).
(JupyterLab's set-up: jupyterlab.py.)
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.e2e.jupyterlab import (
    ARTIFACTS,
    NOTEBOOK_JS,
    ROOT,
    click_menu,
    code_cells,
    copy_notebooks,
    lesson_page,
    run_all_above,
    wait_for_cells,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(900)]

# Lesson 03 (rooms) and lesson 09 (the chat app): their ChatPanes live.
LESSONS = [
    name for name in ("03_rooms.ipynb", "09_chat_app.ipynb") if (ROOT / "notebooks" / name).exists()
]


@pytest.mark.parametrize("notebook", LESSONS)
def test_a_lesson_runs_in_jupyterlab_and_its_chat_panes_talk(
    notebook, tmp_path, chromium_path, capfd
):
    sync_api = pytest.importorskip("playwright.sync_api")
    expect = sync_api.expect
    root = copy_notebooks(tmp_path)
    cells = code_cells(root / notebook)
    cleanup_cell, cleanup = cells[-1]
    assert "close()" in cleanup  # the lesson's last cell closes the panes
    shot = ARTIFACTS / f"jupyterlab-{Path(notebook).stem}.png"

    try:
        with lesson_page(root, notebook, cleanup_cell + 1, chromium_path) as page:
            assert page.locator(".jupyter-widgets").count() == 0  # started from nothing
            # Every cell above the clean-up cell, from the Run menu.
            run_all_above(page, cleanup_cell)

            # The panes: widget views, each a box with a header, a log, a text box and Send.
            # The live ones (a lesson may have closed some on purpose) are the conversation.
            every_pane = page.locator(".jp-OutputArea .jupyter-widgets.widget-vbox").filter(
                has=page.locator(".widget-text input")
            )
            expect(every_pane.first).to_be_visible()
            assert "Error displaying widget" not in page.locator("body").text_content()
            panes = [
                pane for pane in every_pane.all() if pane.locator(".widget-text input").is_enabled()
            ]
            assert len(panes) >= 2, "a conversation needs two live panes"
            names = [
                re.match(r"\s*(\S+) in #", pane.locator(".widget-html").first.inner_text())[1]
                for pane in panes
            ]
            boxes = [pane.locator(".widget-text input") for pane in panes]
            # The lesson's chat page in an iframe, when it shows one, is in the conversation too.
            pages = page.locator("iframe[src*='user=']")

            def everywhere(text: str) -> None:
                """``text`` in every live pane, and in every chat page the lesson shows."""
                for pane in panes:
                    expect(pane).to_contain_text(text)
                for index in range(pages.count()):
                    frame = page.frame_locator("iframe[src*='user=']").nth(index)
                    expect(frame.locator("#log li span", has_text=text)).to_have_count(1)

            panes[0].scroll_into_view_if_needed()
            # fill() is one input event, so one value update, sent at once.
            boxes[0].fill("hello from JupyterLab <b>!</b>")
            boxes[0].press("Enter")
            everywhere(f"{names[0]}: hello from JupyterLab <b>!</b>")
            expect(boxes[0]).to_have_value("")
            # Key after key, and Enter at once after the last: ipywidgets holds back the
            # value updates of keys typed while the kernel handles an earlier one, so the
            # kernel may see Enter first. Enter carries the text: the whole line goes.
            boxes[1].click()
            page.keyboard.type("typed key by key, then Enter at once")
            page.keyboard.press("Enter")
            everywhere(f"{names[1]}: typed key by key, then Enter at once")
            expect(boxes[1]).to_have_value("")
            boxes[1].click()
            page.keyboard.type("typed, then Send")
            panes[1].locator(".widget-button").click()
            everywhere(f"{names[1]}: typed, then Send")
            expect(boxes[1]).to_have_value("")
            assert "Error displaying widget" not in page.locator("body").text_content()

            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            panes[0].scroll_into_view_if_needed()
            page.screenshot(path=shot, full_page=True)

            # The clean-up cell, as the last step of running them all: the panes go red.
            page.evaluate(f"{NOTEBOOK_JS}.content.activeCellIndex = {cleanup_cell}")
            click_menu(page, "Run", "Run Selected Cells?")
            wait_for_cells(page, cleanup_cell)
            for pane, box in zip(panes, boxes, strict=True):
                expect(pane).to_contain_text("🔴 disconnected")
                expect(box).to_be_disabled()
            assert "Error displaying widget" not in page.locator("body").text_content()
    finally:
        capfd.readouterr()  # the kernel's and JupyterLab's own chatter
    with capfd.disabled():
        print(f"\nJupyterLab screenshot: {shot}")
