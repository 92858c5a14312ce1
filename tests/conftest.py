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


pytest_plugins = ["pytester"]
