"""What ``rtlab bench`` shows: ratios against each peer, the targets, a table, a plot and JSON.

Ratios are always rtlab's value over the peer's, from measured values only. For rates
higher is better for rtlab; for latency and memory lower is.
"""

from __future__ import annotations

import math
import platform
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import psutil

from rtlab.bench.scenarios import Result
from rtlab.core.stats import ratio

if TYPE_CHECKING:
    from matplotlib.figure import Figure

SCHEMA = "rtlab-bench/1"
# scenario -> (headline metric, its label, higher is better)
HEADLINE = {
    "echo": ("rate_per_cpu", "round trips per server CPU second", True),
    "latency": ("p99", "p99 round trip, ms", False),
    "fanout": ("rate_per_cpu", "deliveries per server CPU second", True),
    "chat": ("rate_per_cpu", "deliveries per server CPU second", True),
    "redis": ("rate_per_cpu", "deliveries per CPU second of the servers and redis-server", True),
    "workers": ("rate", "deliveries per second (all workers and redis-server)", True),
    "memory": ("rss_per_connection", "server RSS per idle connection, KiB", False),
    "slow": ("p99", "p99 publish-to-last-delivery, ms (the others)", False),
    "class": ("p99", "p99 delivery latency, ms", False),
}


@dataclass(frozen=True)
class Target:
    """rtlab's ``metric`` over ``peer``'s, in ``scenario``, against ``bound``; sizes
    whose variant starts with ``except_variant`` are not held to it."""

    scenario: str
    metric: str
    peer: str
    bound: float
    at_least: bool  # True: ratio >= bound; False: ratio <= bound
    except_variant: str = ""

    def applies(self, variant: str) -> bool:
        return not (self.except_variant and variant.startswith(self.except_variant))

    def holds(self, value: float) -> bool:
        if math.isnan(value):
            return False
        return value >= self.bound if self.at_least else value <= self.bound


# Round trips against Node Socket.IO, and 4x python-socketio over one connection, are
# not targets: raw websockets, which rtlab must build on, reaches neither
# (docs/benchmarks.md). Its ratio to them is reported instead, as the floor.
TARGETS = [
    Target("echo", "rate_per_cpu", "websockets", 0.9, True),
    Target("echo", "rate_per_cpu", "socketio", 4.0, True, except_variant="1 connection,"),
    *(
        Target("fanout", "rate_per_cpu", peer, bound, True)
        for peer, bound in (("websockets", 0.9), ("socketio", 4.0), ("node-socketio", 1.0))
    ),
    # The message a chat sends: the raw relay is the floor (its ratio to Node is reported).
    Target("chat", "rate_per_cpu", "websockets", 0.9, True),
    Target("chat", "rate_per_cpu", "socketio", 5.0, True),
    # Rooms across processes on one Redis, against the peers' own Redis adapters.
    Target("redis", "rate_per_cpu", "node-socketio", 1.0, True),
    Target("redis", "rate_per_cpu", "socketio", 5.0, True),
    Target("latency", "p99", "websockets", 1.3, False),
    Target("memory", "rss_per_connection", "websockets", 1.1, False),
]
TOO_SHORT = "n/a: too short"  # a rate per CPU second read off too few clock ticks


class Measurement(Protocol):
    """What a plot reads of a measurement (a :class:`Result`, or a published figure)."""

    @property
    def scenario(self) -> str: ...
    @property
    def variant(self) -> str: ...
    @property
    def server(self) -> str: ...


def metric(result: Measurement, name: str) -> float:
    """One of ``result``'s figures by name (NaN when it has none)."""
    if name in ("p50", "p90", "p99"):
        latency = getattr(result, "latency_ms", None)
        return latency[name] if latency else math.nan
    value = getattr(result, name)
    return math.nan if value is None else float(value)


def ratios(results: Iterable[Result], ours: str = "rtlab") -> list[dict[str, Any]]:
    """rtlab over each peer, for each scenario and size both ran."""
    results = list(results)
    mine = {(r.scenario, r.variant): r for r in results if r.server == ours}
    rows = []
    for r in results:
        base = mine.get((r.scenario, r.variant))
        if r.server == ours or base is None:
            continue
        row: dict[str, Any] = {"scenario": r.scenario, "variant": r.variant, "peer": r.server}
        for name in ("rate", "rate_per_cpu", "p50", "p99", "rss_per_connection"):
            a, b = metric(base, name), metric(r, name)
            row[name] = None if math.isnan(a) or math.isnan(b) else ratio(a, b)
        rows.append(row)
    return rows


def targets(results: Iterable[Result]) -> list[dict[str, Any]]:
    """Each target at each size measured: the ratio and whether it holds (None when a
    run was too short to tell: see ``scenarios.long_enough``)."""
    rows = []
    table = ratios(results)
    for target in TARGETS:
        for row in table:
            if (row["scenario"], row["peer"]) != (target.scenario, target.peer):
                continue
            if not target.applies(row["variant"]):
                continue
            value = row[target.metric]
            short = value is None and target.metric == "rate_per_cpu"
            rows.append(
                {
                    "scenario": target.scenario,
                    "variant": row["variant"],
                    "peer": target.peer,
                    "metric": target.metric,
                    "ratio": value,
                    "bound": (">= " if target.at_least else "<= ") + f"{target.bound:g}",
                    "holds": None if short else target.holds(math.nan if value is None else value),
                }
            )
    return rows


def machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": psutil.cpu_count(),
        "cpu": platform.processor() or platform.machine(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "load_average": [round(x, 2) for x in psutil.getloadavg()],
    }


def finite(value: Any) -> Any:
    """``value`` with every infinite or NaN float made ``None``, for strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def document(
    results: list[Result], peers: dict[str, str], settings: dict[str, Any], command: str
) -> dict[str, Any]:
    """The whole run as JSON-ready data (schema ``rtlab-bench/1``)."""
    return finite(
        {
            "schema": SCHEMA,
            "command": command,
            "machine": machine(),
            "settings": settings,
            "peers": peers,
            "results": [r.to_dict() for r in results],
            "ratios": ratios(results),
            "targets": targets(results),
        }
    )


def _n(value: float | None, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}"


def _one_worker(results: list[Result], r: Result) -> Result | None:
    """The run of one worker that ``r``, a run of several, compares with."""
    if r.details.get("processes", 1) == 1:
        return None
    size = r.variant.partition(", ")[2]
    found = [
        o
        for o in results
        if o.scenario == "workers" and o.details.get("processes") == 1 and o.variant.endswith(size)
    ]
    return found[0] if found else None


def table(results: list[Result], peers: dict[str, str]) -> str:
    """A plain-text table: one block per scenario and size, one line per server."""
    lines: list[str] = []
    mine = {(r.scenario, r.variant): r for r in results if r.server == "rtlab"}
    seen: list[tuple[str, str]] = []
    for r in results:
        if (r.scenario, r.variant) not in seen:
            seen.append((r.scenario, r.variant))
    for scenario, variant in seen:
        key, label, _ = HEADLINE[scenario]
        lines.append(f"{scenario}: {variant}  [{label}]")
        lines.append(
            f"  {'server':<14}{'msg/s':>10}{'msg/CPU-s':>11}{'p50 ms':>9}{'p99 ms':>9}"
            f"{'KiB/conn':>10}  {'counted':<16}{'rtlab/peer':>15}"
        )
        for r in results:
            if (r.scenario, r.variant) != (scenario, variant):
                continue
            lat = r.latency_ms or {}
            base = mine.get((scenario, variant))
            versus = "-"
            if base is not None and r.server != "rtlab":
                value = ratio(metric(base, key), metric(r, key))
                if not math.isnan(value):
                    versus = f"{value:.2f}x"
                elif key == "rate_per_cpu":
                    versus = TOO_SHORT
            kib = r.rss_per_connection / 1024 if r.rss_per_connection is not None else None
            counted = f"{r.messages}/{r.expected}" + ("" if r.complete else " !")
            lines.append(
                f"  {r.server:<14}{_n(r.rate):>10}{_n(r.rate_per_cpu):>11}"
                f"{_n(lat.get('p50'), 2):>9}{_n(lat.get('p99'), 2):>9}{_n(kib, 1):>10}"
                f"  {counted:<16}{versus:>15}"
            )
            if r.scenario == "slow" and "slow_member" in r.details:
                s = r.details["slow_member"]
                closed = f"closed {s['closed']}" if s["closed"] is not None else "still open"
                lines.append(
                    f"  {'':<14}member not reading: got {s['received']}/{s['of']}, {closed}, "
                    f"server RSS +{r.details['rss_growth'] / 2**20:.1f} MiB"
                )
            if r.scenario == "memory" and "accept_seconds" in r.details:
                took = r.details["accept_seconds"]
                lines.append(
                    f"  {'':<14}opened {r.messages:,} in {took:.1f} s "
                    f"({r.messages / took:,.0f} a second), handshakes included"
                )
            if r.scenario == "redis":
                per = r.details["redis_commands_per_message"]
                lines.append(f"  {'':<14}Redis commands per room message: {per:.1f}")
            if r.scenario == "workers" and r.details.get("processes", 1) > 1:
                spread = ", ".join(map(str, r.details["connections_per_worker"]))
                lines.append(f"  {'':<14}connections per worker: {spread}")
            if r.scenario == "workers" and (one := _one_worker(results, r)) is not None:
                n, gain = r.details["processes"], ratio(r.rate, one.rate)
                lines.append(
                    f"  {'':<14}{n} workers over 1: {gain:.2f}x the throughput, "
                    f"an efficiency of {gain / n:.2f}"
                )
            if r.scenario == "class":
                d = r.details
                lines.append(
                    f"  {'':<14}typing events received {d['typing_events_received']}, "
                    f"error events {d['error_events_received']}"
                )
        lines.append("")
    missing = {name: why for name, why in peers.items() if why != "ok"}
    for name, why in missing.items():
        lines.append(f"{name}: not installed ({why})")
    checks = targets(results)
    if checks:
        lines.append("targets, rtlab over the peer:")
        for t in checks:
            mark = {True: "holds", False: "MISSED", None: TOO_SHORT}[t["holds"]]
            lines.append(
                f"  {t['scenario']:<8}{t['variant']:<30}{t['metric']:<20}vs {t['peer']:<14}"
                f"{_n(t['ratio'], 2):>7} {t['bound']:<6} {mark}"
            )
    return "\n".join(lines)


def figure(results: Sequence[Measurement]) -> Figure:
    """One panel per scenario, its headline metric, grouped by size and server."""
    from matplotlib.figure import Figure  # no pyplot: no backend chosen, none changed

    scenarios = list(dict.fromkeys(r.scenario for r in results))
    colour = {server: f"C{i}" for i, server in enumerate(dict.fromkeys(r.server for r in results))}
    drawing = Figure(figsize=(9, 3.2 * len(scenarios)))
    axes = drawing.subplots(len(scenarios), 1, squeeze=False)
    for ax, scenario in zip(axes[:, 0], scenarios, strict=True):
        key, label, _ = HEADLINE[scenario]
        variants = list(dict.fromkeys(r.variant for r in results if r.scenario == scenario))
        servers = list(dict.fromkeys(r.server for r in results if r.scenario == scenario))
        width = 0.8 / len(servers)
        for i, server in enumerate(servers):
            values = []
            for variant in variants:
                found = [
                    r
                    for r in results
                    if (r.scenario, r.variant, r.server) == (scenario, variant, server)
                ]
                value = metric(found[0], key) if found else math.nan
                values.append(value / 1024 if key == "rss_per_connection" else value)
            offsets = [v + i * width for v in range(len(variants))]
            ax.bar(offsets, values, width, label=server, color=colour[server])
        ax.set_xticks([v + width * (len(servers) - 1) / 2 for v in range(len(variants))])
        ax.set_xticklabels([v.replace(", ", "\n") for v in variants], fontsize=7)
        ax.set_title(f"{scenario}: {label}", fontsize=10)
        ax.legend(fontsize=7)
    drawing.tight_layout()
    return drawing


def plot(results: list[Result], path: str | Path) -> None:
    """The figure of the results, to a PNG."""
    figure(results).savefig(path, dpi=100)
