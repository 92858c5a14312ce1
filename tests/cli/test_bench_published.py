"""rtlab/bench/published.json holds exactly the figures docs/benchmarks.md publishes, and
lesson 08 shows them labelled: the page and the lesson read one source."""

from __future__ import annotations

import re
from pathlib import Path

from rtlab.bench import published, report

DOCS = (Path(__file__).resolve().parents[2] / "docs" / "benchmarks.md").read_text()


def number(cell: str) -> float | None:
    """A figure as docs/benchmarks.md writes it: '36,496' or 'n/a: too short'."""
    cell = cell.strip()
    return None if cell.startswith("n/a") else float(cell.replace(",", ""))


def rows(heading: str) -> list[list[str]]:
    """The cells of every row of the first table after ``heading``, header excepted."""
    after = DOCS.split(heading, 1)[1]
    table = re.search(r"^\|.*?(?=\n\n|\Z)", after, re.S | re.M)[0].splitlines()
    return [[c.strip() for c in line.strip("|").split("|")] for line in table[2:]]


def in_the_file() -> dict[tuple[str, str, str], float | None]:
    return {(f.scenario, f.variant, f.server): f.rate_per_cpu for f in published.figures()}


def test_echo_and_fanout_are_the_results_sections_tables():
    docs = {}
    for scenario, variant in re.findall(r"^\*\*(echo|fanout): (.+?)\*\*$", DOCS, re.M):
        for server, _, per_cpu, *_ in rows(f"**{scenario}: {variant}**"):
            docs[scenario, variant, server] = number(per_cpu)
    mine = {k: v for k, v in in_the_file().items() if k[0] in ("echo", "fanout")}
    assert len(docs) == 27
    assert mine == docs


def test_chat_and_redis_are_the_round_two_tables():
    docs = {}
    for size, ack, *figures, _, _, _, _ in rows("**The chat message**"):
        members = f"{size} member" + ("s" if size != "1" else "")
        variant = f"rooms of {members}, " + ("ack" if ack == "yes" else "no ack")
        servers = ("rtlab", "websockets", "websockets-json", "socketio", "node-socketio")
        for server, figure in zip(servers, figures, strict=True):
            docs["chat", variant, server] = number(figure)
    commands = {}
    for variant, *figures, _, _, counts in rows("**Rooms across processes**"):
        for server, figure in zip(("rtlab", "socketio", "node-socketio"), figures, strict=True):
            docs["redis", variant, server] = number(figure)
        commands[variant] = counts
    assert len(docs) == 39
    assert {k: v for k, v in in_the_file().items() if k[0] in ("chat", "redis")} == docs
    for f in published.figures("redis"):
        ours, peers = commands[f.variant].split(";")
        assert peers.strip() == "1 and 1"
        expected = number(ours) if f.server == "rtlab" else 1
        assert f.redis_commands_per_message == expected


def test_the_tables_give_ratios_and_say_when_a_run_was_too_short():
    chat = published.table("chat").splitlines()
    assert "per server CPU second" in chat[0]
    [one] = [line for line in chat if line.startswith("rooms of 1 member, no ack")]
    assert one.split()[6:] == [
        *("49,751", "38,911", "(1.28)", "28,571", "(1.74)"),
        *("9,294", "(5.35)", "49,751", "(1.00)"),
    ]
    mine = published.Published("chat", "rooms of 9", "rtlab", 1000.0)
    short = published.Published("chat", "rooms of 9", "websockets", None)
    assert published._cell(short, mine) == report.TOO_SHORT  # null in the file
    assert published._cell(mine, short) == "1,000"  # no ratio to a figure too short


def test_each_scenario_names_its_run_its_date_and_the_machine():
    for scenario, when in (
        ("echo", "2 December 2026"),
        ("chat", "8 December 2026"),
        ("redis", "7 December 2026, 16:17"),
    ):
        text = published.source(scenario)
        assert when in text and "2 vCPUs" in text and "load average" in text
    assert "medians of three runs" in published.source("chat")
    assert "medians of three runs" in published.source("redis")
    assert "three full runs" in published.source("fanout")
    # The evening's Redis runs were on a slower machine, and say so.
    assert "slower than the afternoon's" in published.source("redis")
    assert "slower" not in published.source("chat")


def test_the_plot_has_a_panel_per_scenario_with_only_its_servers():
    figure = report.figure(published.figures("chat", "redis"))
    chat, redis = figure.axes
    assert chat.get_title().startswith("chat:") and redis.get_title().startswith("redis:")
    legend = [t.get_text() for t in redis.get_legend().get_texts()]
    assert legend == ["rtlab", "socketio", "node-socketio"]
