"""The figures docs/benchmarks.md publishes, shipped with rtlab as ``published.json``.

Lesson 08 shows them: a full ``rtlab bench`` takes minutes and measures the machine it
runs on, while these say which run they come from, when, and on what machine.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

from rtlab.bench.report import HEADLINE, TOO_SHORT
from rtlab.core.stats import ratio

NAMES = {
    "rtlab": "rtlab",
    "websockets": "raw websockets",
    "websockets-json": "plain JSON chat",
    "socketio": "python-socketio",
    "node-ws": "Node ws",
    "node-socketio": "Node Socket.IO",
}


@dataclass(frozen=True)
class Published:
    """One server's rate per CPU second in one scenario and size (None: too short to tell)."""

    scenario: str
    variant: str
    server: str
    rate_per_cpu: float | None
    redis_commands_per_message: float | None = None


def load() -> dict[str, Any]:
    """The whole file: what it holds, the machine, and each run with its results."""
    return json.loads(files("rtlab.bench").joinpath("published.json").read_text())


def figures(*scenarios: str) -> list[Published]:
    """The published figures of these scenarios (all of them when none is named)."""
    rows = [row for run in load()["runs"] for row in run["results"]]
    return [Published(**r) for r in rows if not scenarios or r["scenario"] in scenarios]


def source(scenario: str) -> str:
    """Which run a scenario's figures come from, when, on what machine (a run's own, or
    the file's), and how busy it was."""
    data = load()
    [run] = [r for r in data["runs"] if any(x["scenario"] == scenario for x in r["results"])]
    lines = [f"{run['what']}; {run['when']}; {run['rtlab']}", run.get("machine", data["machine"])]
    lines.append(f"load average {run['load_average']}")
    return "\n".join(lines)


def _cell(row: Published | None, mine: Published | None) -> str:
    if row is None or row.rate_per_cpu is None:
        return TOO_SHORT
    text = f"{row.rate_per_cpu:,.0f}"
    if mine is None or mine is row or mine.rate_per_cpu is None:
        return text
    return f"{text} ({ratio(mine.rate_per_cpu, row.rate_per_cpu):.2f})"


def table(scenario: str) -> str:
    """Each size on a line: every server's figure, a peer's followed by rtlab's over it."""
    rows = figures(scenario)
    servers = list(dict.fromkeys(r.server for r in rows))
    found = {(r.variant, r.server): r for r in rows}
    commands = "  Redis commands per message"
    width = max(len(commands), *(len(r.variant) for r in rows)) + 1
    lines = [
        f"{scenario}: {HEADLINE[scenario][1]}; in brackets rtlab's over the peer's",
        f"{'':<{width}}" + "".join(f"{NAMES[s]:>18}" for s in servers),
    ]
    for variant in dict.fromkeys(r.variant for r in rows):
        mine = found.get((variant, "rtlab"))
        cells = [_cell(found.get((variant, s)), mine) for s in servers]
        lines.append(f"{variant:<{width}}" + "".join(f"{c:>18}" for c in cells))
        if scenario == "redis":
            counts = [f"{found[variant, s].redis_commands_per_message:g}" for s in servers]
            lines.append(f"{commands:<{width}}" + "".join(f"{c:>18}" for c in counts))
    return "\n".join(lines)
