"""State kept per user or per room stays bounded, however many names a client invents."""

from __future__ import annotations

import logging

from rtlab.aio import events
from rtlab.aio.events import EventHub
from rtlab.core.history import History


def test_history_forgets_the_least_recently_used_rooms():
    history = History(size=5, window=60, rooms=3)
    for room in ("a", "b", "c"):
        history.append("/", room, {"m": room}, now=0)
    history.append("/", "a", {"m": "a again"}, now=1)  # a is now the most recent
    history.append("/", "d", {"m": "d"}, now=2)  # b goes
    assert [(r.room, r.seq) for r in history.records()] == [
        ("a", 1),
        ("a", 2),
        ("c", 1),
        ("d", 1),
    ]
    assert history.since("/", "b", 0, now=2) == ([], False)  # b's message is gone: incomplete
    assert history.last_seq("/", "b") == 1  # numbering goes on where it was


def test_remembered_mids_are_bounded_by_users(monkeypatch):
    monkeypatch.setattr(events, "REMEMBERED_USERS", 100)
    hub = EventHub(logging.Logger("test"))
    for i in range(1000):
        hub.remember(f"user{i}", "/", "m1", {"ok": True})
    hub.remember("user950", "/", "m2", {"ok": True})
    assert len(hub._mids) == 100
    assert "user950" in hub._mids and "user0" not in hub._mids
