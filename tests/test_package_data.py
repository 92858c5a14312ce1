"""Every file rtlab reads at run time ships with it: pages, Lua scripts, the bench's Node peers."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "rtlab"


def test_every_data_file_in_the_package_is_declared_as_package_data():
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["rtlab"]
    data = [
        path.relative_to(PACKAGE)
        for path in PACKAGE.rglob("*")
        if path.is_file()
        and path.suffix not in {".py", ".pyc"}
        and "__pycache__" not in path.parts
        and "node_modules" not in path.parts
    ]
    assert any(path.suffix == ".lua" for path in data)
    missing = [str(path) for path in data if not any(path.match(p) for p in patterns)]
    assert not missing, f"not in [tool.setuptools.package-data]: {missing}"
