"""RTLAB_REQUIRE_ALL=1 turns every skip into a failure, as CI runs it."""

from __future__ import annotations

from pathlib import Path

import pytest

CONFTEST = (Path(__file__).parent / "conftest.py").read_text()
SKIPPING = """
import pytest

def test_skipped():
    pytest.skip("Chromium not found")

def test_passes():
    assert True
"""


@pytest.mark.slow
@pytest.mark.parametrize("required", ["1", ""])
def test_skips_fail_only_when_everything_is_required(pytester, monkeypatch, required):
    monkeypatch.setenv("RTLAB_REQUIRE_ALL", required)
    pytester.makeconftest(CONFTEST.replace('pytest_plugins = ["pytester"]', ""))
    pytester.makepyfile(test_skipping=SKIPPING)
    result = pytester.runpytest_subprocess("-p", "no:nbval", "-o", "addopts=")
    if required:
        result.assert_outcomes(passed=1, failed=1)
        result.stdout.fnmatch_lines(["*RTLAB_REQUIRE_ALL=1 allows no skip*Chromium not found*"])
    else:
        result.assert_outcomes(passed=1, skipped=1)
