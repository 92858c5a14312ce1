"""environment.yml (conda, Binder) and pyproject.toml (pip) ask for the same packages."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parent.parent
CONDA_NAMES = {"redis": "redis-py"}  # where conda-forge names a package differently
SYSTEM_PACKAGES = {"python", "pip", "redis-server"}  # not Python packages of pyproject


def conda_packages() -> dict[str, str]:
    spec = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert spec["channels"] == ["conda-forge"]
    packages = {}
    for entry in spec["dependencies"]:
        if isinstance(entry, str) and (pin := re.fullmatch(r"python=(3\.\d+)", entry)):
            packages["python"] = pin[1]  # conda's X.Y pin, not a PEP 508 requirement
        elif isinstance(entry, str):
            requirement = Requirement(entry)
            packages[requirement.name] = str(requirement.specifier)
    return packages


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_every_runtime_dependency_is_in_environment_yml_with_the_same_bound():
    conda = conda_packages()
    for line in pyproject()["dependencies"]:
        requirement = Requirement(line)
        name = CONDA_NAMES.get(requirement.name, requirement.name)
        assert name in conda, f"{name} missing from environment.yml"
        assert conda[name] == str(requirement.specifier), name


def test_environment_yml_has_nothing_pyproject_does_not_know():
    project = pyproject()
    known = {Requirement(line).name for line in project["dependencies"]}
    known |= {Requirement(line).name for line in project["optional-dependencies"]["test"]}
    known = {CONDA_NAMES.get(name, name) for name in known}
    assert set(conda_packages()) - known == SYSTEM_PACKAGES
    assert conda_packages()["python"] in SpecifierSet(project["requires-python"])
    assert conda_packages()["nbval"] == next(
        str(Requirement(line).specifier)
        for line in project["optional-dependencies"]["test"]
        if line.startswith("nbval")
    )


def test_environment_yml_installs_rtlab_itself():
    spec = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(entry["pip"] for entry in spec["dependencies"] if isinstance(entry, dict))
    assert pip == ["-e ."]


def test_binder_reads_an_exact_python_version():
    """repo2docker picks its base environment from ``python=X.Y`` only (no range)."""
    spec = yaml.safe_load((ROOT / "environment.yml").read_text())
    entries = [e for e in spec["dependencies"] if isinstance(e, str)]
    pythons = [e for e in entries if re.match(r"python(?![\w-])", e)]
    assert pythons == [f"python={conda_packages()['python']}"]
