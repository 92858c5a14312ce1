"""pytest settings for the lessons: nbval finds its sanitize file from any folder.

pyproject.toml's ``addopts`` give ``--nbval-sanitize-with=tests/nbval_sanitize.cfg``,
and nbval opens that path from the current folder. Here a relative path that is not
there is taken from the rootdir (pyproject.toml's folder) instead, so that
``pytest notebooks/00_welcome.ipynb`` works from any folder, inside ``notebooks/`` too.
"""

from __future__ import annotations

from pathlib import Path

import pytest


def pytest_configure(config: pytest.Config) -> None:
    given = getattr(config.option, "nbval_sanitize_with", None)  # None without nbval
    if given is None or Path(given).is_absolute():
        return
    path = Path(given)
    config.option.nbval_sanitize_with = str(
        path.resolve() if path.is_file() else config.rootpath / path
    )
