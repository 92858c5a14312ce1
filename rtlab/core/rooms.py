"""Room membership: who is in which room. One ``Rooms`` per namespace; empty rooms vanish."""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from typing import Generic, TypeVar

M = TypeVar("M", bound=Hashable)


class Rooms(Generic[M]):
    """Members in rooms, both ways round: a room's members and a member's rooms."""

    def __init__(self) -> None:
        self._members: dict[str, set[M]] = {}
        self._rooms: dict[M, set[str]] = {}

    def join(self, member: M, room: str) -> bool:
        """Put ``member`` in ``room``; False if it was there already."""
        members = self._members.setdefault(room, set())
        if member in members:
            return False
        members.add(member)
        self._rooms.setdefault(member, set()).add(room)
        return True

    def leave(self, member: M, room: str) -> bool:
        """Take ``member`` out of ``room``; False if it was not in it."""
        members = self._members.get(room)
        if members is None or member not in members:
            return False
        members.remove(member)
        if not members:
            del self._members[room]
        rooms = self._rooms[member]
        rooms.remove(room)
        if not rooms:
            del self._rooms[member]
        return True

    def leave_all(self, member: M) -> list[str]:
        """Take ``member`` out of every room; the rooms it left, sorted."""
        left = sorted(self._rooms.get(member, ()))
        for room in left:
            self.leave(member, room)
        return left

    def members(self, room: str) -> frozenset[M]:
        """Who is in ``room`` (empty if nobody, or no such room)."""
        return frozenset(self._members.get(room, ()))

    def rooms_of(self, member: M) -> frozenset[str]:
        return frozenset(self._rooms.get(member, ()))

    def is_member(self, member: M, room: str) -> bool:
        return member in self._members.get(room, ())

    def __contains__(self, room: object) -> bool:
        return room in self._members

    def __iter__(self) -> Iterator[str]:
        """The rooms that have members, sorted."""
        return iter(sorted(self._members))

    def __len__(self) -> int:
        return len(self._members)

    def __repr__(self) -> str:
        inside = ", ".join(f"{room!r}: {len(self._members[room])}" for room in self)
        return f"Rooms({{{inside}}})"
