"""Exercise checks: grade a learner's answer on the spot, ✅ or ❌ with a hint.

Each lesson's checks live in a module named after the lesson's topic. A check returns a
:class:`Verdict`; as the last line of a cell it shows as one deterministic line.

Hints come in two steps. An exercise not done yet (its placeholder raises
``NotImplementedError``) gets a *nudge*: where to start. A wrong answer gets the
*recipe*: the rule, spelled out. ``rtlab.hint()`` shows the recipe of the last exercise
checked (or ``rtlab.hint("accept_key")`` of one by name) for a learner who wants it sooner.
Anything the learner's code raises is a ❌ naming the exception, never a traceback.
With a class server set, each verdict is also reported to it (``progress_report``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass

from rtlab.notebook import progress_report

Problem = str | tuple[str, str]  # a failure message, or a message and a hint of its own

DEFAULT_NUDGE = "replace the placeholder with your code, then run this cell again"
MAX_SHOWN = 300  # characters of a learner's exception message shown in a verdict


@dataclass(frozen=True)
class Verdict:
    """The outcome of one check: true when passed."""

    passed: bool
    message: str
    hint: str = ""
    class_note: str = ""  # why the class server no longer gets the verdicts, if it does not

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        note = f"\n   Not sent to your class: {self.class_note}" if self.class_note else ""
        if self.passed:
            return f"✅ {self.message}{note}"
        return f"❌ {self.message}" + (f"\n   Hint: {self.hint}" if self.hint else "") + note

    def __repr__(self) -> str:
        return str(self)


@dataclass(frozen=True)
class Hint:
    """An exercise's recipe, shown as plain text in a cell."""

    exercise: str
    recipe: str

    def __repr__(self) -> str:
        return f"💡 {self.exercise}: {self.recipe}"


_recipes: dict[str, str] = {}  # exercise name -> recipe, filled as checks run
_last: list[str] = []  # the exercise checked last


def hint(exercise: str | None = None) -> Hint:
    """The recipe of ``exercise`` (by the name its verdict shows), or of the last one checked."""
    if exercise is None:
        if not _last:
            raise LookupError("no exercise checked yet: run an exercise's check cell first")
        exercise = _last[-1]
    if exercise not in _recipes:
        known = ", ".join(sorted(_recipes)) or "none yet"
        raise LookupError(f"no exercise {exercise!r} checked in this kernel (checked: {known})")
    return Hint(exercise, _recipes[exercise])


def describe(error: BaseException) -> str:
    """``TypeError: ...``: an exception named for a verdict, whatever its ``__str__`` does."""
    try:
        text = str(error)
    except Exception:  # a learner's exception class may fail to print
        text = ""
    text = text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 1] + "…"
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def grade(
    name: str, attempt: Callable[[], Problem | None], recipe: str, nudge: str = DEFAULT_NUDGE
) -> Verdict:
    """Run ``attempt``: it returns a failure message (or a message and a hint of its own,
    chosen by the problem found), or ``None`` when the answer is right.

    ``NotImplementedError`` means not done yet, answered with ``nudge``; any other
    exception (``SystemExit`` included) fails with the exception named and ``recipe``.
    """
    _recipes[name] = recipe
    _last[:] = [name]
    try:
        problem = attempt()
    except NotImplementedError:
        return Verdict(False, f"{name}: not done yet", f"{nudge} (rtlab.hint() shows the recipe)")
    except (Exception, SystemExit) as error:
        problem = f"raised {describe(error)}"
    # To the class server, if one is set (rtlab/notebook/progress_report.py): the topic
    # of the check module that called, the exercise, the verdict. Never waits or raises.
    topic = sys._getframe(1).f_globals.get("__name__", "").rpartition(".")[2]
    note = progress_report.report(topic, name, problem is None) or ""
    if problem is None:
        return Verdict(True, f"{name}: correct", class_note=note)
    message, specific = problem if isinstance(problem, tuple) else (problem, recipe)
    return Verdict(False, f"{name}: {message}", specific, class_note=note)
