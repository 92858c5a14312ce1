"""``rtlab doctor``: is this installation ready for the course?"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from websockets.sync.client import connect

from rtlab.notebook.background import start_server

PACKAGES = ("websockets", "jupyterlab", "ipywidgets", "ipykernel", "nest-asyncio2")
WIDGETS_EXTENSION = Path("labextensions", "@jupyter-widgets", "jupyterlab-manager", "package.json")


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


def _widgets_extension() -> Check:
    from jupyter_core.paths import jupyter_path

    for folder in jupyter_path():
        if (Path(folder) / WIDGETS_EXTENSION).is_file():
            return Check("JupyterLab widgets extension", True, str(Path(folder) / "labextensions"))
    return Check("JupyterLab widgets extension", False, "not found: pip install jupyterlab_widgets")


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
        _widgets_extension,
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
