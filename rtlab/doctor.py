"""``rtlab doctor``: is this installation ready for the course?"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from websockets.sync.client import connect

from rtlab.notebook.background import start_server

PACKAGES = ("websockets", "jupyterlab", "ipywidgets", "anywidget", "ipykernel", "nest-asyncio2")
# The JupyterLab extensions the chat panes need: name shown, folder, the pip package.
EXTENSIONS = (
    (
        "JupyterLab widgets extension",
        ("@jupyter-widgets", "jupyterlab-manager"),
        "jupyterlab_widgets",
    ),
    ("JupyterLab anywidget extension", ("anywidget",), "anywidget"),
)


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def _python() -> Check:
    ok = sys.version_info >= (3, 11)
    return Check("Python", ok, sys.version.split()[0] + ("" if ok else " (3.11 or newer needed)"))


def _package(name: str) -> Check:
    try:
        return Check(name, True, version(name))
    except PackageNotFoundError:
        return Check(name, False, f"not installed: pip install {name}")


def _extension(name: str, parts: tuple[str, ...], package: str) -> Check:
    from jupyter_core.paths import jupyter_path

    for folder in jupyter_path():
        if Path(folder, "labextensions", *parts, "package.json").is_file():
            return Check(name, True, str(Path(folder) / "labextensions"))
    return Check(name, False, f"not found: pip install {package}")


def _round_trip() -> Check:
    name = "loopback WebSocket round trip"
    try:
        with start_server() as server, connect(server.echo_url, open_timeout=5) as ws:
            ws.send("ping")
            answer = ws.recv(timeout=5)
    except Exception as error:
        return Check(name, False, f"{type(error).__name__}: {error}")
    ok = answer == "Echo: ping"
    return Check(name, ok, f"sent 'ping', got {answer!r}")


def run_checks() -> list[Check]:
    """Every check, in the order the table shows them."""
    checks: list[Callable[[], Check]] = [
        _python,
        *[lambda name=name: _package(name) for name in PACKAGES],
        *[lambda extension=extension: _extension(*extension) for extension in EXTENSIONS],
        _round_trip,
    ]
    return [check() for check in checks]


def report(checks: list[Check]) -> str:
    """A ✅/❌ table, one row per check."""
    width = max(len(c.name) for c in checks)
    rows = [f"{'✅' if c.ok else '❌'} {c.name:<{width}}  {c.detail}" for c in checks]
    passed = sum(c.ok for c in checks)
    rows.append(f"{passed} of {len(checks)} checks passed")
    return "\n".join(rows)


def main() -> int:
    checks = run_checks()
    print(report(checks))
    return 0 if all(c.ok for c in checks) else 1
