"""Shared fixtures, and RTLAB_REQUIRE_ALL=1: every skip becomes a failure."""

from __future__ import annotations

import os
import shutil

import pytest

REQUIRE_ALL = os.environ.get("RTLAB_REQUIRE_ALL") == "1"
CHROMIUM = os.environ.get("RTLAB_CHROMIUM") or shutil.which("chromium")


def _forbid_skip(report: pytest.CollectReport | pytest.TestReport) -> None:
    if REQUIRE_ALL and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped, but RTLAB_REQUIRE_ALL=1 allows no skip: {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    _forbid_skip(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector):  # type: ignore[no-untyped-def]
    outcome = yield
    _forbid_skip(outcome.get_result())


@pytest.fixture
def server():
    """A lab server in the background on 127.0.0.1, any free port."""
    from rtlab import start_server

    with start_server() as running:
        yield running


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Debian's Chromium, or a skip (a failure under RTLAB_REQUIRE_ALL=1)."""
    if not CHROMIUM:
        pytest.skip("Chromium not found: apt-get install chromium (or set RTLAB_CHROMIUM)")
    return CHROMIUM


# Slow: what starts browsers, JupyterLab, Redis, runs notebooks or the bench (tests
# marked @pytest.mark.slow one by one are the others). pytest -m "not slow": a minute.
SLOW_FOLDERS = ("tests/e2e/", "notebooks/")
SLOW_MODULES = {
    "tests/cli/test_bench.py",
    "tests/cli/test_learner_notebooks.py",
    "tests/test_nbval_paths.py",  # runs pytest and a kernel three times
    "tests/notebook/test_chatpane.py",
    # checks graded against live servers, with learner code that hangs on purpose
    "tests/checks/test_checks_handshake.py",
    "tests/checks/test_checks_native_api.py",
    "tests/checks/test_checks_performance.py",
    "tests/checks/test_checks_resilience.py",
    "tests/checks/test_checks_rooms.py",
    "tests/checks/test_checks_scaling.py",
    "tests/checks/test_checks_socketio.py",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        where = item.path.relative_to(config.rootpath).as_posix()
        slow = where.startswith(SLOW_FOLDERS) or where in SLOW_MODULES
        if slow or item.get_closest_marker("browser") is not None:
            item.add_marker(pytest.mark.slow)


pytest_plugins = ["pytester"]
