"""The two-step hints every check shares: a nudge first, the recipe after a wrong try."""

from __future__ import annotations

import sys

import pytest

from rtlab.checks import grade, hint


def not_done() -> None:
    raise NotImplementedError


def test_not_done_yet_gets_the_nudge_and_hint_gives_the_recipe():
    verdict = grade("shout", not_done, "the recipe: upper-case it", "start with str.upper")
    assert not verdict.passed
    assert str(verdict) == (
        "❌ shout: not done yet\n   Hint: start with str.upper (rtlab.hint() shows the recipe)"
    )
    assert "recipe" not in verdict.hint.replace("rtlab.hint() shows the recipe", "")
    assert repr(hint()) == "💡 shout: the recipe: upper-case it"
    assert hint("shout").recipe == "the recipe: upper-case it"


def test_a_wrong_answer_gets_the_recipe_or_the_problems_own_hint():
    assert grade("a", lambda: "returned 3", "the recipe").hint == "the recipe"
    specific = grade("a", lambda: ("returned 3", "count from 1"), "the recipe")
    assert str(specific) == "❌ a: returned 3\n   Hint: count from 1"
    assert str(grade("a", lambda: None, "the recipe")) == "✅ a: correct"


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no")


@pytest.mark.parametrize(
    ("error", "shown"),
    [
        (AttributeError("'NoneType' object has no attribute 'code'"), "raised AttributeError: "),
        (Unprintable(), "raised Unprintable"),
        (SystemExit(3), "raised SystemExit: 3"),
        (ValueError("x" * 10_000), "raised ValueError: xxx"),
    ],
)
def test_any_exception_from_the_learners_code_is_a_cross_naming_it(error, shown):
    def attempt() -> None:
        raise error

    verdict = grade("b", attempt, "the recipe")
    assert not verdict.passed
    assert verdict.message.startswith(f"b: {shown}")
    assert len(verdict.message) < 400
    assert verdict.hint == "the recipe"


def test_hint_before_any_check_or_for_an_unknown_exercise_says_what_to_do():
    module = sys.modules["rtlab.checks"]
    saved = dict(module._recipes), list(module._last)
    module._recipes.clear()
    module._last.clear()
    try:
        with pytest.raises(LookupError, match="run an exercise's check cell first"):
            hint()
        with pytest.raises(LookupError, match="no exercise 'nope'"):
            hint("nope")
    finally:
        module._recipes.update(saved[0])
        module._last[:] = saved[1]
