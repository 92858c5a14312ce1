"""``rtlab doctor``: is this installation ready for the course?

The exit code is 0 when every check the lessons need passes (Python, the packages,
the JupyterLab extensions, a loopback round trip). The programs only some parts use
(``redis-server`` for lesson 10, ``node`` and ``npm`` for ``rtlab bench``'s Node peers)
are checked too, ❌ with the command that installs them when missing, but do not
change the exit code: lessons 00-09 run without them. Neither does the class's server,
checked when ``RTLAB_SERVER`` is set (a workshop): a connection with ``RTLAB_TOKEN``.
"""

from __future__ import annotations

import os
import re
import shutil
import ssl
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from websockets.exceptions import InvalidStatus
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
# Programs that only some parts of the course use: the row's name, the programs, what
# needs them, and the packages that install them on Debian (apt-get) and with conda.
TOOLS = (
    ("redis-server", ("redis-server",), "lesson 10", "redis-server", "redis-server"),
    ("node", ("node", "npm"), "rtlab bench's Node peers", "nodejs npm", "nodejs"),
)


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    optional: bool = False  # when it fails, the lessons named in ``detail`` wait; no others


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


def _version(program: str) -> str:
    """``program --version``'s version number, or its first line."""
    try:
        said = subprocess.run(
            [program, "--version"], capture_output=True, text=True, timeout=10
        ).stdout
    except (OSError, subprocess.SubprocessError) as error:
        return f"({type(error).__name__})"
    found = re.search(r"\d+\.\d+(\.\d+)?", said)
    return found[0] if found else (said.splitlines() or ["?"])[0]


def _tool(name: str, programs: tuple[str, ...], needed_for: str, debian: str, conda: str) -> Check:
    found = {program: shutil.which(program) for program in programs}
    missing = [program for program, path in found.items() if path is None]
    if missing:
        return Check(
            name,
            False,
            f"{' and '.join(missing)} not found, needed for {needed_for}: sudo apt-get install "
            f"{debian} (Debian, Ubuntu) or conda install -c conda-forge {conda}",
            optional=True,
        )
    versions = ", ".join(f"{program} {_version(path)}" for program, path in found.items())
    return Check(name, True, f"{versions} (for {needed_for})", optional=True)


def _class_server() -> Check | None:
    """With ``RTLAB_SERVER`` set (a workshop): a handshake there with ``RTLAB_TOKEN``, which
    tells a mistyped token or a missing certificate before a check's report is lost."""
    from rtlab.aio.client import events_url
    from rtlab.notebook.shared import SERVER_VARIABLE, TOKEN_VARIABLE, shared_server

    if not os.environ.get(SERVER_VARIABLE):
        return None
    name = "class server"
    try:
        shared = shared_server()
        if shared.token is None:
            return Check(name, False, f"{shared.url}: set {TOKEN_VARIABLE} too", optional=True)
        with connect(events_url(shared.url, "", shared.token), open_timeout=5):
            pass
    except InvalidStatus as refused:
        reason = refused.response.body.decode(errors="replace").strip()
        status = refused.response.status_code
        return Check(name, False, f"refused (HTTP {status}): {reason}", optional=True)
    except ssl.SSLCertVerificationError:
        return Check(
            name,
            False,
            f"{shared.url}: its certificate is not trusted: set SSL_CERT_FILE to the "
            "class's rootCA.pem",
            optional=True,
        )
    except Exception as error:
        return Check(name, False, f"{type(error).__name__}: {error}", optional=True)
    return Check(name, True, f"{shared.url} as {shared.user}", optional=True)


def tool_checks() -> list[Check]:
    """The programs only some lessons need (:data:`TOOLS`)."""
    return [_tool(*tool) for tool in TOOLS]


def run_checks() -> list[Check]:
    """Every check the lessons need, in the order the table shows them."""
    checks: list[Callable[[], Check]] = [
        _python,
        *[lambda name=name: _package(name) for name in PACKAGES],
        *[lambda extension=extension: _extension(*extension) for extension in EXTENSIONS],
        _round_trip,
    ]
    return [check() for check in checks]


def ready(checks: list[Check]) -> bool:
    """Whether the lessons can run: every check passed but, perhaps, optional ones."""
    return all(c.ok or c.optional for c in checks)


def report(checks: list[Check]) -> str:
    """A ✅/❌ table, one row per check, and a last line saying what follows from it."""
    width = max(len(c.name) for c in checks)
    rows = [f"{'✅' if c.ok else '❌'} {c.name:<{width}}  {c.detail}" for c in checks]
    passed = sum(c.ok for c in checks)
    summary = f"{passed} of {len(checks)} checks passed"
    if not ready(checks):
        summary += ": fix the ❌ rows above before starting the lessons"
    elif passed < len(checks):
        summary += ": ready for the lessons; a ❌ tool is needed only where its row says"
    rows.append(summary)
    return "\n".join(rows)


def main() -> int:
    """Print the table: exit code 0 when the lessons can run (optional tools aside)."""
    checks = run_checks() + tool_checks()
    if (workshop := _class_server()) is not None:
        checks.append(workshop)
    print(report(checks))
    return 0 if ready(checks) else 1
