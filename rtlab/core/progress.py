"""A class's progress through the exercises: students by exercises, bounded.

Every check a student runs with a class server set reports ``{lesson, exercise, passed,
attempt, run}`` (rtlab/notebook/progress_report.py); the server keeps them here. A cell
(one student, one exercise) is *not tried*, *failing* with the attempts so far, or
*passed*. Passed stays passed: a later wrong try counts as an attempt but does not undo
that the student got there.

``run`` names the kernel that reported and ``attempt`` counts its tries of that exercise,
so a cell's attempts are the sum, over runs, of the highest attempt each reported. A
report delivered twice, or read again from disk, changes nothing; one lost in between
is made up by the next (attempt 3 says there were 3); a restarted kernel counts on.

Bounds, so that nobody can fill the server's memory by reporting:

- ``max_students``: a report from one student more evicts the student whose grid changed
  longest ago (counted in ``evicted``);
- ``max_exercises``: a report of one exercise more takes the place of an exercise that
  one student alone has tried, and that student's cell goes with it (counted in
  ``replaced``): of the student who has the most such exercises (of those, the one whose
  grid changed longest ago), the first by name. When every exercise has two students or
  more, the report is ignored (counted in ``ignored``). The course has a few dozen: a
  student who makes up names holds the most exercises of their own, so theirs are the
  ones replaced, and a name stays for good once two students report it. An exercise
  whose students were all evicted goes too;
- per cell, the last ``MAX_RUNS`` runs; older ones are folded into a base count.
"""

from __future__ import annotations

import collections
import heapq
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

NOT_TRIED = "not tried"
FAILING = "failing"
PASSED = "passed"
MAX_STUDENTS = 500
MAX_EXERCISES = 200
MAX_RUNS = 8  # runs (kernels) remembered per cell
MAX_ATTEMPT = 1_000_000
MAX_ROOMS_SHOWN = 200  # rooms listed in an instructor's view of the class
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_. -]{0,63}")  # a lesson or an exercise
RUN = re.compile(r"[A-Za-z0-9_-]{1,32}")
BASE_RUN = "_base"  # the runs a cell no longer remembers one by one, in reports()


@dataclass(frozen=True)
class Report:
    """One verdict a student's check reported."""

    user: str
    lesson: str
    exercise: str
    passed: bool
    attempt: int
    run: str

    @property
    def key(self) -> str:
        """The grid's column: ``lesson/exercise``."""
        return f"{self.lesson}/{self.exercise}"

    def to_json(self) -> dict[str, Any]:
        return {
            "user": self.user,
            "lesson": self.lesson,
            "exercise": self.exercise,
            "passed": self.passed,
            "attempt": self.attempt,
            "run": self.run,
        }


def parse_report(user: str, data: Any) -> Report:
    """The report ``user`` sent as ``data``; ``ValueError`` saying what is wrong."""
    if not isinstance(data, dict):
        raise ValueError("a report is an object: {lesson, exercise, passed, attempt, run}")
    unknown = sorted(set(data) - {"lesson", "exercise", "passed", "attempt", "run"})
    if unknown:
        raise ValueError(f"unexpected field {unknown[0]!r}")
    lesson, exercise = data.get("lesson"), data.get("exercise")
    for what, value in (("lesson", lesson), ("exercise", exercise)):
        if not isinstance(value, str) or not NAME.fullmatch(value):
            raise ValueError(f"{what} must be 1 to 64 letters, digits or _. - , got {value!r}")
    passed, attempt, run = data.get("passed"), data.get("attempt"), data.get("run")
    if not isinstance(passed, bool):
        raise ValueError(f"passed must be true or false, got {passed!r}")
    if type(attempt) is not int or not 1 <= attempt <= MAX_ATTEMPT:
        raise ValueError(f"attempt must be a whole number from 1 to {MAX_ATTEMPT}, got {attempt!r}")
    if not isinstance(run, str) or not RUN.fullmatch(run):
        raise ValueError(f"run must be 1 to 32 letters, digits, _ or -, got {run!r}")
    return Report(user, lesson, exercise, passed, attempt, run)


@dataclass
class Cell:
    """One student's record of one exercise."""

    passed: bool = False
    base: int = 0  # attempts of runs no longer remembered one by one
    runs: dict[str, int] = field(default_factory=dict)  # run -> its highest attempt

    @property
    def attempts(self) -> int:
        return self.base + sum(self.runs.values())

    @property
    def state(self) -> str:
        return PASSED if self.passed else FAILING if self.attempts else NOT_TRIED

    def add(self, report: Report) -> bool:
        """Count ``report``; False when it says nothing new (a duplicate, an older attempt)."""
        before = (self.passed, self.attempts)
        if report.run in self.runs:
            self.runs[report.run] = max(self.runs[report.run], report.attempt)
        else:
            self.runs[report.run] = report.attempt
            if len(self.runs) > MAX_RUNS:
                oldest = next(iter(self.runs))
                self.base += self.runs.pop(oldest)
        self.passed = self.passed or report.passed
        return (self.passed, self.attempts) != before

    def to_json(self) -> dict[str, Any]:
        return {"state": self.state, "attempts": self.attempts}


class ClassProgress:
    """The grid: students by exercises; :meth:`record` a report, :meth:`grid` to show."""

    def __init__(self, max_students: int = MAX_STUDENTS, max_exercises: int = MAX_EXERCISES):
        self.max_students = max_students
        self.max_exercises = max_exercises
        # user -> exercise key -> cell; the student whose grid changed longest ago first
        self._students: collections.OrderedDict[str, dict[str, Cell]] = collections.OrderedDict()
        self._exercises: dict[str, set[str]] = {}  # exercise key -> the students who tried it
        self.evicted = 0  # students forgotten to make room
        self.replaced = 0  # exercises of one student given up for a new one
        self.ignored = 0  # reports of exercises past max_exercises

    def record(self, report: Report) -> Cell | None:
        """Count ``report``; its cell when that changed, None when nothing did.

        Only a change counts as the student's last report, so that a journal, which keeps
        the reports that change a cell, gives the same grid when it is read again."""
        user, key = report.user, report.key
        full = len(self._exercises) >= self.max_exercises
        if key not in self._exercises and full and not self._replace_one():
            self.ignored += 1
            return None
        cells = self._students.get(user)
        if cells is None:
            while len(self._students) >= self.max_students:
                self._forget(*self._students.popitem(last=False))
                self.evicted += 1
            cells = self._students[user] = {}
        self._exercises.setdefault(key, set()).add(user)
        cell = cells.setdefault(key, Cell())
        if not cell.add(report):
            return None
        self._students.move_to_end(user)
        return cell

    def _replace_one(self) -> bool:
        """Give up an exercise one student alone has tried (see the module's docstring)."""
        alone: dict[str, list[str]] = {}
        for key, tried in self._exercises.items():
            if len(tried) == 1:
                alone.setdefault(next(iter(tried)), []).append(key)
        if not alone:
            return False
        since = {name: i for i, name in enumerate(self._students)}  # longest ago first
        user = max(alone, key=lambda name: (len(alone[name]), -since[name]))
        key = min(alone[user])
        del self._students[user][key]
        del self._exercises[key]
        self.replaced += 1
        return True

    def _forget(self, user: str, cells: dict[str, Cell]) -> None:
        """An evicted student's cells go, and the exercises nobody else has tried."""
        for key in cells:
            tried = self._exercises[key]
            tried.discard(user)
            if not tried:
                del self._exercises[key]

    def cell(self, user: str, key: str) -> Cell:
        """The cell of ``user`` and ``key`` (an empty one, not tried, when there is none)."""
        return self._students.get(user, {}).get(key) or Cell()

    @property
    def students(self) -> list[str]:
        return sorted(self._students)

    @property
    def exercises(self) -> list[str]:
        return sorted(self._exercises)

    def grid(self) -> dict[str, Any]:
        """``{"exercises": [...], "students": {user: {key: {"state", "attempts"}}}}``,
        with only the cells tried (the others are not tried)."""
        return {
            "exercises": self.exercises,
            "students": {
                user: {key: cell.to_json() for key, cell in sorted(self._students[user].items())}
                for user in self.students
            },
        }

    def reports(self) -> list[Report]:
        """Reports that, recorded into an empty model, give this one's grid: each run's
        highest attempt, and the folded runs as one run ``BASE_RUN`` (a journal compacted)."""
        made = []
        for user, cells in self._students.items():  # oldest first, so eviction order holds
            for key, cell in cells.items():
                lesson, _, exercise = key.partition("/")
                runs = ([(BASE_RUN, cell.base)] if cell.base else []) + list(cell.runs.items())
                made += [Report(user, lesson, exercise, cell.passed, n, r) for r, n in runs]
        return made

    def __len__(self) -> int:
        return len(self._students)


def rooms_shown(sizes: Iterable[tuple[int, str, str]]) -> list[tuple[int, str, str]]:
    """Of ``(members, ns, room)``, the MAX_ROOMS_SHOWN with the most members, most first
    (then by namespace and name): a class's tables, however many rooms of one someone made."""
    return heapq.nsmallest(MAX_ROOMS_SHOWN, sizes, key=lambda s: (-s[0], s[1], s[2]))
