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
JupyterLab and its kernels are killed at the end, whatever happens.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.e2e.test_browser import CHROMIUM_ARGS

pytestmark = [pytest.mark.browser, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("RTLAB_ARTIFACTS") or ROOT / "test-artifacts")
# Lesson 03 (rooms) and, once it exists, lesson 09 (the chat app): their ChatPanes live.
LESSONS = [
    name for name in ("03_rooms.ipynb", "09_chat_app.ipynb") if (ROOT / "notebooks" / name).exists()
]
TOKEN = "rtlab-ui-test"
WAIT = 60_000  # ms: hang guards for a loaded 2-core machine, never speed claims
RUN_WAIT = 240_000  # ms: the whole lesson, cell after cell, on that machine
# JupyterLab's own settings for this run: every cell attached to the page (no windowing).
SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "checkForUpdates": False,
        "fetchNews": "false",
    },
}
NOTEBOOK_JS = "window.jupyterapp.shell.currentWidget"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_lab(root: Path, home: Path, port: int) -> subprocess.Popen[bytes]:
    for name, values in SETTINGS.items():
        path = home / "settings" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    command = [
        str(Path(sys.executable).with_name("jupyter")),
        "lab",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.token={TOKEN}",
        f"--ServerApp.root_dir={root}",
        f"--LabApp.user_settings_dir={home / 'settings'}",
        f"--LabApp.workspaces_dir={home / 'workspaces'}",
        "--LabApp.expose_app_in_browser=True",
    ]
    if os.geteuid() == 0:
        command.append("--allow-root")
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(home / "runtime")}
    log = (home / "jupyterlab.log").open("wb")
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)


def wait_until_answering(lab: subprocess.Popen[bytes], port: int, log: Path) -> None:
    """Poll /api/status until JupyterLab answers (a hang guard of WAIT, not a timing)."""
    url = f"http://127.0.0.1:{port}/api/status?token={TOKEN}"
    deadline = time.monotonic() + WAIT / 1000
    while True:
        assert lab.poll() is None, f"JupyterLab exited:\n{log.read_text()[-3000:]}"
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=10) as answer:
            if answer.status == 200:
                return
        assert time.monotonic() < deadline, f"JupyterLab never answered:\n{log.read_text()[-3000:]}"
        time.sleep(0.25)  # between polls of a real condition


def kill_tree(lab: subprocess.Popen[bytes]) -> None:
    """JupyterLab asked to stop, then it and every process it started (kernels) killed."""
    import psutil

    try:
        family = psutil.Process(lab.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        family = []
    lab.terminate()
    try:
        lab.wait(timeout=20)
    except subprocess.TimeoutExpired:
        lab.kill()
        lab.wait(timeout=20)
    for process in family:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    psutil.wait_procs(family, timeout=20)


def code_cells(path: Path) -> list[tuple[int, str]]:
    """(index, source) of the notebook's code cells."""
    cells = json.loads(path.read_text())["cells"]
    return [(i, "".join(c["source"])) for i, c in enumerate(cells) if c["cell_type"] == "code"]


def click_menu(page, menu: str, item: str) -> None:
    """Open ``menu`` in JupyterLab's menu bar and click the item labelled ``item`` (a regex)."""
    page.locator(".lm-MenuBar-item", has_text=re.compile(f"^{menu}$")).click()
    label = page.locator(".lm-Menu-itemLabel:visible", has_text=re.compile(f"^{item}$"))
    label.click()


def wait_for_cells(page, last: int) -> None:
    """Until the kernel is idle and every code cell up to ``last`` has run; fail on an error."""
    state = page.wait_for_function(
        f"""() => {{
            const nb = {NOTEBOOK_JS};
            const cells = nb.content.widgets.slice(0, {last} + 1).filter(
                (cell) => cell.model.type === "code");
            const failed = cells.find((cell) => cell.model.outputs.toJSON().some(
                (output) => output.output_type === "error"));
            if (failed) return "error in cell " + nb.content.widgets.indexOf(failed) + ": "
                + JSON.stringify(failed.model.outputs.toJSON().filter(
                    (output) => output.output_type === "error"));
            const kernel = nb.sessionContext.session?.kernel;
            const done = cells.every((cell) => cell.model.executionCount !== null);
            return kernel?.status === "idle" && done ? "done" : false;
        }}""",
        timeout=RUN_WAIT,
        polling=250,
    ).json_value()
    assert state == "done", state


@pytest.mark.parametrize("notebook", LESSONS)
def test_a_lesson_runs_in_jupyterlab_and_its_chat_panes_talk(
    notebook, tmp_path, chromium_path, capfd
):
    sync_api = pytest.importorskip("playwright.sync_api")

    expect = sync_api.expect
    expect.set_options(timeout=WAIT)  # restored in the finally below
    root = tmp_path / "notebooks"
    shutil.copytree(ROOT / "notebooks", root, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    cells = code_cells(root / notebook)
    cleanup_cell, cleanup = cells[-1]
    assert "close()" in cleanup  # the lesson's last cell closes the panes
    shot = ARTIFACTS / f"jupyterlab-{Path(notebook).stem}.png"

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
            page.goto(f"http://127.0.0.1:{port}/lab/tree/{notebook}?token={TOKEN}")
            page.wait_for_function(
                f"window.jupyterapp && {NOTEBOOK_JS}?.content?.widgets?.length > {cleanup_cell}"
            )
            page.wait_for_function(
                f"{NOTEBOOK_JS}.sessionContext.session?.kernel?.status === 'idle'",
                timeout=RUN_WAIT,
            )
            # Start from nothing: no saved outputs, no execution counts.
            click_menu(page, "Edit", "Clear Outputs of All Cells")
            page.wait_for_function(
                f"{NOTEBOOK_JS}.content.widgets.every("
                "(cell) => cell.model.type !== 'code' || cell.model.executionCount === null)"
            )
            assert page.locator(".jupyter-widgets").count() == 0

            # Every cell above the clean-up cell, from the Run menu.
            page.evaluate(f"{NOTEBOOK_JS}.content.activeCellIndex = {cleanup_cell}")
            click_menu(page, "Run", "Run All Above Selected Cell")
            wait_for_cells(page, cleanup_cell - 1)

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
            browser.close()
    finally:
        expect.set_options(timeout=None)
        kill_tree(lab)
        capfd.readouterr()  # the kernel's and JupyterLab's own chatter
    with capfd.disabled():
        print(f"\nJupyterLab screenshot: {shot}")
