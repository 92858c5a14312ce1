"""rtlab bench: every scenario, run for real at tiny sizes against every server under test.

Nothing here judges speed (that is docs/benchmarks.md's job): the tests check that
every message was counted back, every fan-out delivery arrived exactly once, and that
the ratios and the JSON come from the measured values.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

from rtlab.bench import cli, peers, report, scenarios
from rtlab.bench.cli import SCENARIOS, SERVERS, TINY
from rtlab.bench.servers.websockets_server import chat_event
from rtlab.bench.wire import WIRES, chat_json
from rtlab.core.stats import ratio

ROOM_SCENARIOS = {"fanout", "chat", "slow", "class"}
REDIS_SCENARIOS = {"redis"}  # rooms across processes: the peers with a Redis adapter


@pytest.fixture(scope="module")
def run() -> cli.Run:
    return cli.run(SERVERS, SCENARIOS, TINY, strict=True)


def by(run: cli.Run, scenario: str) -> list[scenarios.Result]:
    return [r for r in run.results if r.scenario == scenario]


def test_every_server_runs_here(run):
    # CI has node and the npm registry: the Node peers must really run, not be skipped.
    assert run.peers == dict.fromkeys(SERVERS, "ok")
    assert run.failures == []


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_each_scenario_measured_on_each_server(run, scenario):
    servers = {r.server for r in by(run, scenario)}
    wanted = {s for s in SERVERS if peers.PEERS[s].rooms or scenario not in ROOM_SCENARIOS}
    wanted = {s for s in wanted if not peers.PEERS[s].only or scenario in peers.PEERS[s].only}
    if scenario in REDIS_SCENARIOS:
        wanted = {s for s in SERVERS if peers.PEERS[s].redis}
        assert wanted == {"rtlab", "socketio", "node-socketio"}
    if scenario == "workers":  # rtlab serve --workers N, which only rtlab has
        wanted = {"rtlab"}
    assert servers == wanted
    assert "node-ws" not in servers or scenario not in ROOM_SCENARIOS


def test_echo_counts_every_round_trip_back_once(run):
    results = by(run, "echo")
    echoing = [s for s in SERVERS if not peers.PEERS[s].only]
    assert len(results) == len(echoing) * len(TINY.echo_connections)
    for r in results:
        per = TINY.echo_messages // r.details["connections"]
        assert r.expected == per * r.details["connections"]
        assert (r.server, r.messages, r.duplicates) == (r.server, r.expected, 0)
        assert r.seconds > 0 and r.rate == r.messages / r.seconds


def test_latency_has_one_sample_per_round_trip(run):
    for r in by(run, "latency"):
        assert r.complete, r
        lat = r.latency_ms
        assert lat["count"] == TINY.latency_messages
        assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]


def test_fanout_delivers_each_message_to_each_member_exactly_once(run):
    (members, messages), *_ = TINY.fanout
    for r in by(run, "fanout"):
        assert r.expected == members * messages
        assert (r.server, r.messages, r.duplicates) == (r.server, r.expected, 0)
        assert r.latency_ms["count"] == messages  # a last delivery for every message


def test_chat_delivers_every_members_message_to_its_room_exactly_once(run):
    results = by(run, "chat")
    assert {r.details["ack"] for r in results} == {False, True}
    for r in results:
        k, n, m = TINY.chat[0]
        assert (r.details["room_size"], r.details["connections"]) == (k, n)
        assert r.expected == n * k * m and r.complete, r
        # Each acknowledgement asked for came back once, from the servers that have acks.
        acks = WIRES[peers.PEERS[r.server].wire].acks
        asked = n * m if r.details["ack"] and acks else 0
        assert r.details["acks"] == r.details["acks_expected"] == asked, r


def test_the_plain_json_chat_reads_every_message_and_answers_only_a_right_one():
    """websockets-json's server: what any JSON chat does, so the chat scenario compares
    rtlab's chat message with a chat's, not only with a relay that never reads it."""
    sent = chat_json("r1", "hi ~m1~", None)
    event = json.loads(chat_event(sent, "r1", "ada"))
    assert event["event"] == "receive-message"
    data = event["data"]
    assert (data["userId"], data["roomId"], data["message"]) == ("ada", "r1", "hi ~m1~")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", data["timestamp"])
    for wrong in ("not json", "[]", sent.replace("r1", "r2"), sent.replace("send-", "get-")):
        assert chat_event(wrong, "r1", "ada") is None, wrong
    assert chat_event(chat_json("r1", "", None), "r1", "ada") is None


def test_rooms_across_processes_deliver_each_message_once_and_count_redis_commands(run):
    results = [r for r in by(run, "redis") if "mid" not in r.variant]
    [(processes, members, messages)] = TINY.redis
    assert {r.server for r in results} == {"rtlab", "socketio", "node-socketio"}
    for r in results:
        assert r.variant == f"{processes} processes, room of {members}"
        assert r.expected == members * messages and r.complete, r
        # Members on both processes: a delivery crossed Redis, or counted would be short.
        assert r.details["processes"] == processes
        assert r.details["redis_commands"] > 0
        assert r.details["redis_commands_per_message"] == r.details["redis_commands"] / messages


def test_with_a_mid_on_each_message_only_rtlab_is_measured_and_its_mids_are_kept(run):
    [(processes, members, messages)] = TINY.redis_mids
    [plain] = [r for r in by(run, "redis") if r.server == "rtlab" and "mid" not in r.variant]
    [r] = [r for r in by(run, "redis") if "mid" in r.variant]
    assert r.server == "rtlab"
    assert r.variant == f"{processes} processes, room of {members}, a mid on each message"
    assert r.expected == members * messages and r.complete and r.duplicates == 0, r
    # Each mid checked and kept with its ack (keep.lua's remember): more commands each.
    assert r.details["redis_commands_per_message"] > plain.details["redis_commands_per_message"]


def test_rtlab_serve_with_1_and_2_workers_spreads_the_room_and_reports_the_efficiency(run):
    results = by(run, "workers")
    assert [r.details["processes"] for r in results] == [k for k, _, _ in TINY.workers]
    for r, (processes, members, messages) in zip(results, TINY.workers, strict=True):
        plural = "s" if processes > 1 else ""
        assert r.variant == f"{processes} worker{plural}, room of {members}"
        assert r.expected == members * messages and r.complete, r
        spread = r.details["connections_per_worker"]
        assert len(spread) == processes and sum(spread) == members, spread
    text = report.table(run.results, run.peers)
    [two] = [r for r in results if r.details["processes"] == 2]
    gain = two.rate / results[0].rate
    assert f"2 workers over 1: {gain:.2f}x the throughput, an efficiency of {gain / 2:.2f}" in text


def test_slow_consumer_is_measured_against_the_same_room_without_it(run):
    results = by(run, "slow")
    for server in {r.server for r in results}:
        alone, slowed = (r for r in results if r.server == server)
        assert "not reading" not in alone.variant and "not reading" in slowed.variant
        assert alone.complete and slowed.complete  # the others got everything
        member = slowed.details["slow_member"]
        assert member["of"] == TINY.slow_messages
        assert 0 <= member["received"] <= member["of"]
        assert member["closed"] is None or member["closed"] >= 1000  # a close code
        assert "slow_member" not in alone.details


def test_memory_counts_idle_connections_and_server_rss(run):
    for r in by(run, "memory"):
        assert r.messages == r.expected == TINY.memory_connections
        grown = r.details["rss_with_connections"] - r.details["rss_before"]
        assert r.rss_per_connection == grown / TINY.memory_connections
        assert r.details["rss_before"] > 0


def test_class_delivers_every_chat_message_to_its_table(run):
    for r in by(run, "class"):
        assert r.expected == TINY.class_students * TINY.class_messages * 10
        assert (r.server, r.messages, r.duplicates) == (r.server, r.expected, 0)
        assert r.latency_ms["count"] == r.expected
        # At most a typing=true and its end per message and member (how many come depends
        # on timing): a storm of typing events would break it.
        assert r.details["typing_events_received"] <= 2 * r.expected


def test_ratios_are_computed_from_the_measured_values(run):
    rows = report.ratios(run.results)
    assert rows
    mine = {(r.scenario, r.variant): r for r in run.results if r.server == "rtlab"}
    peers_ = {(r.scenario, r.variant, r.server): r for r in run.results}
    for row in rows:
        ours = mine[row["scenario"], row["variant"]]
        theirs = peers_[row["scenario"], row["variant"], row["peer"]]
        expected = ratio(ours.rate, theirs.rate)
        assert row["rate"] == expected or (math.isnan(expected) and row["rate"] is None)
        if theirs.latency_ms:
            assert row["p99"] == ratio(ours.latency_ms["p99"], theirs.latency_ms["p99"])
    peers_in_ratios = {row["peer"] for row in rows}
    assert peers_in_ratios == set(SERVERS) - {"rtlab"}


def test_targets_say_whether_each_holds(run):
    rows = report.targets(run.results)
    kinds = {(t["scenario"], t["peer"]) for t in rows}
    assert ("echo", "websockets") in kinds and ("fanout", "node-socketio") in kinds
    assert ("latency", "websockets") in kinds and ("memory", "websockets") in kinds
    for t in rows:
        bound = float(t["bound"].split()[1])
        if t["ratio"] is None:  # too few clock ticks of CPU (TINY sizes): no verdict
            assert t["holds"] is (None if t["metric"] == "rate_per_cpu" else False)
        elif t["bound"].startswith(">="):
            assert t["holds"] == (t["ratio"] >= bound)
        else:
            assert t["holds"] == (t["ratio"] <= bound)


def _result(server: str, cpu_seconds: float) -> scenarios.Result:
    rate_per_cpu = 1000 / cpu_seconds if scenarios.long_enough(cpu_seconds) else None
    return scenarios.Result(
        "echo",
        "4 connections, window 8",
        server,
        1000,
        1000,
        0,
        1.0,
        cpu_seconds,
        1000.0,
        rate_per_cpu,
    )


def test_a_rate_per_cpu_second_needs_fifty_clock_ticks():
    tick = scenarios.CLOCK_TICK
    assert not scenarios.long_enough(49 * tick)
    assert scenarios.long_enough(50 * tick)


def test_a_run_too_short_to_tell_says_so_instead_of_a_ratio():
    # 0.02 s against 0.01 s of CPU would read as 0.50x: two and one clock ticks.
    short = [
        _result("rtlab", 2 * scenarios.CLOCK_TICK),
        _result("websockets", scenarios.CLOCK_TICK),
    ]
    text = report.table(short, dict.fromkeys(["rtlab", "websockets"], "ok"))
    assert report.TOO_SHORT in text and "0.50x" not in text
    [target] = report.targets(short)
    assert (target["ratio"], target["holds"]) == (None, None)
    assert f"{report.TOO_SHORT}" in text.split("targets, rtlab over the peer:")[1]
    long = [_result("rtlab", 1.0), _result("websockets", 2.0)]
    [target] = report.targets(long)
    assert (target["ratio"], target["holds"]) == (2.0, True)


def test_one_connection_echo_is_not_held_to_four_times_python_socketio():
    one = [
        scenarios.Result("echo", variant, server, 10, 10, 0, 1.0, 1.0, 10.0, rate)
        for variant in ("1 connection, window 1", "10 connections, window 8")
        for server, rate in (("rtlab", 10.0), ("socketio", 5.0))
    ]
    assert [t["variant"] for t in report.targets(one)] == ["10 connections, window 8"]


def test_json_document_is_complete(run):
    document = report.document(run.results, run.peers, {"preset": "tiny"}, "test")
    text = json.dumps(document, allow_nan=False)  # strict JSON: no NaN or Infinity
    data = json.loads(text)
    assert data["schema"] == report.SCHEMA
    assert set(data) >= {"command", "machine", "settings", "peers", "results", "ratios", "targets"}
    assert data["machine"]["cpus"] >= 1
    fields = {
        "scenario",
        "variant",
        "server",
        "messages",
        "expected",
        "duplicates",
        "seconds",
        "cpu_seconds",
        "rate",
        "rate_per_cpu",
        "latency_ms",
        "rss_per_connection",
        "details",
        "complete",
    }
    assert len(data["results"]) == len(run.results)
    for row in data["results"]:
        assert set(row) == fields
        assert row["complete"] is True


def test_table_names_every_server_and_the_plot_is_a_png(run, tmp_path):
    text = report.table(run.results, run.peers)
    for server in SERVERS:
        assert server in text
    assert "targets, rtlab over the peer:" in text
    assert "issue" not in text  # what a user reads names targets, not tracker numbers
    report.plot(run.results, tmp_path / "bench.png")
    assert (tmp_path / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_node_peers_are_reported_not_installed_without_node(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no node, no npm
    outcome = cli.run(["rtlab", "node-ws", "node-socketio"], ["latency"], TINY, strict=True)
    assert outcome.peers["rtlab"] == "ok"
    for name in ("node-ws", "node-socketio"):
        assert outcome.peers[name].startswith("not installed: node and npm not found")
    assert [r.server for r in outcome.results] == ["rtlab"]
    assert "node-ws: not installed" in report.table(outcome.results, outcome.peers)


def test_rtlab_bench_quick_json_on_stdout():
    # Two servers keep it short: every server already ran every scenario above.
    command = ["bench", "--quick", "--json", "-", "--servers", "rtlab,websockets"]
    done = subprocess.run(
        [sys.executable, "-m", "rtlab.cli", *command],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    data = json.loads(done.stdout)
    assert data["settings"]["preset"] == "quick"
    assert {r["scenario"] for r in data["results"]} == set(SCENARIOS)
    assert {r["server"] for r in data["results"]} == {"rtlab", "websockets"}
    assert all(r["complete"] for r in data["results"])
    assert {t["peer"] for t in data["targets"]} == {"websockets"}
    assert data["failures"] == []
    assert "round trips per server CPU second" in done.stderr  # the table, beside the JSON


def test_unknown_server_is_refused():
    done = subprocess.run(
        [sys.executable, "-m", "rtlab.cli", "bench", "--servers", "rtlab,nginx"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "unknown server nginx" in done.stderr


def test_a_baseline_checkout_is_measured_beside_rtlab(tmp_path, monkeypatch):
    monkeypatch.setattr(peers, "PEERS", dict(peers.PEERS))  # add_baseline registers one
    with pytest.raises(peers.NotInstalled, match="not an rtlab checkout"):
        peers.add_baseline(str(tmp_path))
    root = str(Path(__file__).resolve().parents[2])  # this checkout, as its own baseline
    assert peers.add_baseline(root).checkout == root
    outcome = cli.run(["rtlab", peers.BASELINE], ["latency"], TINY, strict=True)
    assert [r.server for r in outcome.results] == ["rtlab", peers.BASELINE]
    assert all(r.complete for r in outcome.results)
    [row] = report.ratios(outcome.results)
    assert row["peer"] == peers.BASELINE  # rtlab over the baseline: new over old
