"""Importing rtlab has no side effects: `rtlab serve` loads no notebook machinery."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import rtlab

NOTEBOOK_MACHINERY = ("ipywidgets", "anywidget", "IPython", "nest_asyncio2")


def loaded_after(statement: str) -> set[str]:
    """The top-level modules a fresh interpreter holds after running ``statement``."""
    code = f"import sys\n{statement}\nprint(' '.join(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    return {name.split(".")[0] for name in result.stdout.split()} | set(result.stdout.split())


@pytest.mark.parametrize("statement", ["import rtlab.cli", "import rtlab; rtlab.__version__"])
def test_the_command_line_loads_no_notebook_machinery(statement):
    loaded = loaded_after(statement)
    assert not loaded & set(NOTEBOOK_MACHINERY), sorted(loaded & set(NOTEBOOK_MACHINERY))
    assert "rtlab.notebook" not in loaded


def test_the_notebook_layer_is_loaded_on_first_use():
    loaded = loaded_after("import rtlab; rtlab.chat_panes")
    assert {"ipywidgets", "anywidget", "rtlab.notebook"} <= loaded


@pytest.mark.parametrize("name", sorted(set(rtlab.__all__) - {"__version__"}))
def test_each_public_name_is_its_home_modules_object(name):
    value = getattr(rtlab, name)
    assert value.__module__.startswith("rtlab.")
    assert getattr(importlib.import_module(value.__module__), name) is value


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        rtlab.nothing_here  # noqa: B018
