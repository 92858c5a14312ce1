"""``pytest notebooks/X.ipynb`` finds nbval's sanitize file from any folder.

A small project with the real pytest options, sanitize file and ``notebooks/conftest.py``
holds a notebook whose saved output matches only after the sanitize file's port rule."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def project(tmp_path: Path) -> Path:
    addopts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]
    addopts = addopts["ini_options"]["addopts"]
    (tmp_path / "pyproject.toml").write_text(f"[tool.pytest.ini_options]\naddopts = {addopts!r}\n")
    (tmp_path / "tests").mkdir()
    shutil.copy(ROOT / "tests" / "nbval_sanitize.cfg", tmp_path / "tests")
    (tmp_path / "notebooks").mkdir()
    shutil.copy(ROOT / "notebooks" / "conftest.py", tmp_path / "notebooks")
    cell = nbformat.v4.new_code_cell("print('listening on 127.0.0.1:' + str(40000 + 321))")
    cell.execution_count = 1
    cell.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text="listening on 127.0.0.1:5555\n")
    ]
    notebook = nbformat.v4.new_notebook(cells=[cell])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nbformat.write(notebook, tmp_path / "notebooks" / "ports.ipynb")
    (tmp_path / "elsewhere").mkdir()
    return tmp_path


def pytest_in(folder: Path, notebook: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", notebook],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("where", "notebook"),
    [
        ("notebooks", "ports.ipynb"),
        (".", "notebooks/ports.ipynb"),
        ("elsewhere", "../notebooks/ports.ipynb"),
    ],
)
def test_the_sanitize_file_is_found_from_any_folder(project, where, notebook):
    done = pytest_in(project / where, notebook)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout


def test_without_the_conftest_inside_notebooks_fails(project):
    """What the conftest is for: nbval alone opens the path from the current folder."""
    (project / "notebooks" / "conftest.py").unlink()
    done = pytest_in(project / "notebooks", "ports.ipynb")
    assert done.returncode != 0
    assert "tests/nbval_sanitize.cfg" in done.stdout + done.stderr
