"""The checks of lesson 09 pass the reference answers and fail the usual slips."""

from __future__ import annotations

from rtlab.checks.scaling import check_deliveries, check_not_exactly_once


def good_deliveries(where, members, room):
    out: dict[str, list[str]] = {}
    for user in sorted(members.get(room, set())):
        out.setdefault(where[user], []).append(user)
    return out


def good_not_exactly_once(received, last_seq):
    return sorted(u for u, seqs in received.items() if seqs != list(range(1, last_seq + 1)))


def test_the_reference_answers_pass():
    assert str(check_deliveries(good_deliveries)) == "✅ deliveries: correct"
    assert str(check_not_exactly_once(good_not_exactly_once)) == "✅ not_exactly_once: correct"


def test_not_done_yet_shows_the_hint():
    def todo(*args):
        raise NotImplementedError

    verdict = check_deliveries(todo)
    assert not verdict
    assert str(verdict).startswith("❌ deliveries: not done yet\n   Hint: each process")
    assert not check_not_exactly_once(todo)


def test_delivering_to_everyone_on_a_process_fails():
    def everyone_there(where, members, room):
        in_room = {where[u] for u in members.get(room, set())}
        return {p: sorted(u for u in where if where[u] == p) for p in in_room}

    verdict = check_deliveries(everyone_there)
    assert not verdict
    assert "are not in 'lobby': they get nothing" in str(verdict)


def test_listing_empty_processes_fails():
    def with_empty(where, members, room):
        out = {p: [] for p in where.values()}
        for user in members.get(room, set()):
            out[where[user]].append(user)
        return out

    verdict = check_deliveries(with_empty)
    assert not verdict
    assert "leave out a process that has no member" in str(verdict)


def test_counting_only_missing_messages_fails():
    def only_missing(received, last_seq):
        return sorted(u for u, seqs in received.items() if set(seqs) != set(range(1, last_seq + 1)))

    verdict = check_not_exactly_once(only_missing)
    assert not verdict
    assert "a message twice counts" in str(verdict)


def test_a_set_instead_of_a_list_fails():
    verdict = check_not_exactly_once(lambda received, last_seq: set())
    assert not verdict
    assert "expected a list of names, got set" in str(verdict)


def test_unsorted_names_fail():
    def unsorted(received, last_seq):
        return [u for u, seqs in received.items() if seqs != list(range(1, last_seq + 1))]

    verdict = check_not_exactly_once(unsorted)
    assert not verdict
    assert "sorted names" in str(verdict)
