"""LICENSE and CONTRIBUTING.md: what an instructor reads before adopting the course."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_license_states_mit_for_the_code_and_cc_by_for_the_lesson_text():
    text = (ROOT / "LICENSE").read_text()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT" and "\nMIT License\n" in text
    assert "Permission is hereby granted, free of charge" in text
    assert "https://creativecommons.org/licenses/by/4.0/" in text
    lesson_text = text[text.index("- The lesson text") : text.index("\nMIT License\n")]
    assert "notebooks/" in lesson_text and "docs/" in lesson_text and "CC BY 4.0" in lesson_text
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## License") :]
    assert "MIT License" in section and "CC BY 4.0" in section and "`notebooks/`" in section


def test_contributing_names_commands_files_and_markers_that_exist():
    text = (ROOT / "CONTRIBUTING.md").read_text()
    assert "docs/authoring.md" in text and (ROOT / "docs/authoring.md").is_file()
    makefile = (ROOT / "Makefile").read_text()
    for target in re.findall(r"^make (\w+)", text, re.MULTILINE):
        assert re.search(rf"^{target}:", makefile, re.MULTILINE), f"no make {target}"
    markers = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]
    registered = {line.split(":")[0] for line in markers["ini_options"]["markers"]}
    for marker in re.findall(r'-m "not (\w+)"', text):
        assert marker in registered, f"pytest -m {marker}: not a registered marker"
    paths = re.findall(r"\.venv/bin/\w+ .*?((?:tests|notebooks)/[\w.]+)", text)
    assert any(path.endswith(".ipynb") for path in paths)
    for path in [p for p in paths if "NN_" not in p]:  # NN_topic: a lesson to come
        assert (ROOT / path).exists(), f"CONTRIBUTING.md names {path}, which is not there"
