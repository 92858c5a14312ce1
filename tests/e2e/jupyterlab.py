"""A lesson open in a real JupyterLab, in real Chromium: what the JupyterLab tests share.

JupyterLab runs headless on a free 127.0.0.1 port with a copy of notebooks/; Chromium
opens the lesson, waits for its kernel, and clears its outputs, so that the test starts
from nothing, as a learner running it for the first time. JupyterLab and its kernels are
killed at the end, whatever happens.
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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.e2e.test_browser import CHROMIUM_ARGS

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("RTLAB_ARTIFACTS") or ROOT / "test-artifacts")
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


def copy_notebooks(tmp_path: Path) -> Path:
    """A copy of notebooks/ for JupyterLab to run (and save) without touching the real one."""
    root = tmp_path / "notebooks"
    shutil.copytree(ROOT / "notebooks", root, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    return root


@contextlib.contextmanager
def lesson_page(root: Path, lesson: str, cells: int, chromium_path: str) -> Iterator[Any]:
    """A Chromium page on ``lesson`` in a JupyterLab serving ``root``, its kernel idle and
    every output cleared (``cells``: how many cells must be on the page); Playwright's
    ``expect`` waits up to WAIT meanwhile."""
    from playwright import sync_api

    sync_api.expect.set_options(timeout=WAIT)
    home = root.parent / "lab"
    home.mkdir()
    port = free_port()
    lab = start_lab(root, home, port)
    try:
        wait_until_answering(lab, port, home / "jupyterlab.log")
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(WAIT)
            page.goto(f"http://127.0.0.1:{port}/lab/tree/{lesson}?token={TOKEN}")
            page.wait_for_function(
                f"window.jupyterapp && {NOTEBOOK_JS}?.content?.widgets?.length >= {cells}"
            )
            page.wait_for_function(
                f"{NOTEBOOK_JS}.sessionContext.session?.kernel?.status === 'idle'",
                timeout=RUN_WAIT,
            )
            click_menu(page, "Edit", "Clear Outputs of All Cells")
            page.wait_for_function(
                f"{NOTEBOOK_JS}.content.widgets.every("
                "(cell) => cell.model.type !== 'code' || cell.model.executionCount === null)"
            )
            yield page
            browser.close()
    finally:
        sync_api.expect.set_options(timeout=None)
        kill_tree(lab)


def run_all_above(page: Any, cell: int) -> None:
    """Run every cell above ``cell`` from the Run menu, until they have all run."""
    page.evaluate(f"{NOTEBOOK_JS}.content.activeCellIndex = {cell}")
    click_menu(page, "Run", "Run All Above Selected Cell")
    wait_for_cells(page, cell - 1)
