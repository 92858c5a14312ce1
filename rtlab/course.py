"""Where the course's notebooks are, for `rtlab lab` and `rtlab learner`."""

from __future__ import annotations

from pathlib import Path

REPO_NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def notebooks_folder() -> Path:
    """The course's notebooks: the checkout's ``notebooks/``, else the current folder's."""
    for folder in (REPO_NOTEBOOKS, Path.cwd() / "notebooks"):
        if folder.is_dir():
            return folder
    return Path.cwd()
