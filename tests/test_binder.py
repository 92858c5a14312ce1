"""Binder, one click to lesson 00: repo2docker's layout, the badge, and postBuild for real.

What can be tested without Docker: the files repo2docker reads are where it looks and
parse (environment.yml: tests/test_environment.py), the README's badge opens lesson
00's learner copy, and postBuild, run in a fresh venv with the packages environment.yml
names, leaves learner copies without solutions and an installation rtlab doctor passes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from rtlab.learner import PLACEHOLDER
from tests.test_environment import CONDA_NAMES, SYSTEM_PACKAGES, conda_packages

ROOT = Path(__file__).resolve().parent.parent
BADGE = re.compile(
    r"\[!\[Launch on Binder\]\(https://mybinder\.org/badge_logo\.svg\)\]"
    r"\((https://mybinder\.org/v2/gh/[^)\s]+)\)"
)
PLACEHOLDER_REPO = "OWNER/REPO"  # the README says how to fill it in
LESSON_00 = "lab/tree/learner/00_welcome.ipynb"
ORIGIN = r"^origin\s+(?:https://github\.com/|git@github\.com:)(\S+?)(?:\.git)?\s"


def git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30, check=True
    ).stdout


def test_postbuild_is_a_committed_executable_bash_script_where_repo2docker_looks():
    script = ROOT / "postBuild"
    assert script.read_text().startswith("#!/bin/bash\n") and os.access(script, os.X_OK)
    assert subprocess.run(["bash", "-n", str(script)], timeout=30).returncode == 0
    assert git("ls-files", "--stage", "postBuild").startswith("100755 "), (
        "Binder builds from git: postBuild must be committed executable (git add --chmod=+x)"
    )
    for folder in ("binder", ".binder"):  # repo2docker would ignore the top-level files
        assert not (ROOT / folder).exists(), f"{folder}/ hides environment.yml and postBuild"


def github_repository() -> str | None:
    """``owner/name`` of the ``origin`` remote when it is on GitHub, else None."""
    found = re.search(ORIGIN, git("remote", "-v"), re.MULTILINE)
    return found[1] if found else None


def test_the_readme_badge_opens_lesson_00s_learner_copy_on_binder():
    readme = (ROOT / "README.md").read_text()
    [url] = BADGE.findall(readme)
    parts = urlsplit(url)
    owner, name, ref = parts.path.removeprefix("/v2/gh/").split("/")
    assert ref == "HEAD"
    assert parse_qs(parts.query) == {"urlpath": [LESSON_00]}
    assert (ROOT / "notebooks" / Path(LESSON_00).name).is_file()
    origin = github_repository()
    if origin is None:  # no GitHub remote here: the placeholder, and how to fill it in
        assert f"{owner}/{name}" == PLACEHOLDER_REPO
        assert f"replace `{PLACEHOLDER_REPO}`" in readme
    else:
        assert f"{owner}/{name}" == origin, "the badge must launch this repository"


def pip_requirements() -> list[str]:
    """environment.yml's conda packages as pip requirements, then its pip section."""
    pip_names = {conda: pip for pip, conda in CONDA_NAMES.items()}
    packages = [
        f"{pip_names.get(name, name)}{specifier}"
        for name, specifier in conda_packages().items()
        if name not in SYSTEM_PACKAGES
    ]
    return [*packages, "-e", "."]


def repository_copy(destination: Path) -> Path:
    """The files Binder clones: those git tracks or would track, as in the work tree."""
    listed = git("ls-files", "--cached", "--others", "--exclude-standard", "-z").split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)  # keeps postBuild's mode
    return destination


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_postbuild_in_a_fresh_venv_leaves_learner_copies_and_a_working_install(tmp_path):
    repo = repository_copy(tmp_path / "repo")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    assert "include-system-site-packages = false" in (venv / "pyvenv.cfg").read_text()
    bin_ = venv / "bin"
    installed = subprocess.run(
        [bin_ / "python", "-m", "pip", "install", "--quiet", *pip_requirements()],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert installed.returncode == 0, installed.stderr[-3000:]
    env = {
        "PATH": f"{bin_}:/usr/bin:/bin",
        "HOME": str(tmp_path / "home"),
        "LANG": "C.UTF-8",
    }  # nothing of this session's venv, no RTLAB_* or JUPYTER_* variable
    built = subprocess.run(
        ["./postBuild"], cwd=repo, env=env, capture_output=True, text=True, timeout=600
    )
    assert built.returncode == 0, built.stdout + built.stderr
    assert "loopback" in built.stdout, "postBuild ends with rtlab doctor's table"
    lessons = sorted(path.name for path in (repo / "notebooks").glob("*.ipynb"))
    copies = sorted(path.name for path in (repo / "learner").glob("*.ipynb"))
    assert copies == lessons and "00_welcome.ipynb" in copies
    for name in copies:
        copy = (repo / "learner" / name).read_text()
        assert "# BEGIN SOLUTION" not in copy and "# END SOLUTION" not in copy, name
        if "# BEGIN SOLUTION" in (repo / "notebooks" / name).read_text():
            assert PLACEHOLDER in copy, name
        assert json.loads(copy)["metadata"]["kernelspec"]["name"] == "python3"
    where = subprocess.run(
        [bin_ / "python", "-c", "import rtlab, sys; print(rtlab.__file__, sys.prefix)"],
        cwd=tmp_path,  # not this checkout: its rtlab/ would come first on sys.path
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.split()
    assert where == [str(repo / "rtlab" / "__init__.py"), str(venv)]
