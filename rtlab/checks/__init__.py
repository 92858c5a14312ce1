"""Exercise checks: grade a learner's answer on the spot, ✅ or ❌ with a hint.

Each lesson's checks live in a module named after the lesson. A check returns a
:class:`Verdict`; as the last line of a cell it shows as one deterministic line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Verdict:
    """The outcome of one check: true when passed."""

    passed: bool
    message: str
    hint: str = ""

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        if self.passed:
            return f"✅ {self.message}"
        return f"❌ {self.message}" + (f"\n   Hint: {self.hint}" if self.hint else "")

    def __repr__(self) -> str:
        return str(self)


def grade(name: str, attempt: Callable[[], str | tuple[str, str] | None], hint: str) -> Verdict:
    """Run ``attempt``: it returns a failure message (or a message and a hint of its own,
    chosen by the problem found), or ``None``; exceptions fail too."""
    try:
        problem = attempt()
    except NotImplementedError:
        return Verdict(False, f"{name}: not done yet", hint)
    except Exception as error:
        problem = f"raised {type(error).__name__}: {error}"
    if problem is None:
        return Verdict(True, f"{name}: correct")
    message, specific = problem if isinstance(problem, tuple) else (problem, hint)
    return Verdict(False, f"{name}: {message}", specific)
