"""The check for lesson 00's exercise: idle_polling_cost(latency_ms, header_bytes)."""

from __future__ import annotations

import pytest

from rtlab.checks import Verdict
from rtlab.checks.welcome import CASES, HINT, check_idle_polling_cost


def correct(latency_ms: float, header_bytes: float) -> float:
    polls_per_second = 1000 / (2 * latency_ms)
    return header_bytes * polls_per_second


def test_a_correct_answer_passes() -> None:
    verdict = check_idle_polling_cost(correct)
    assert isinstance(verdict, Verdict)
    assert verdict.passed
    assert bool(verdict)
    assert str(verdict) == "✅ idle_polling_cost: correct"
    assert "Hint" not in str(verdict)


def test_other_correct_forms_pass() -> None:
    assert check_idle_polling_cost(lambda latency, header: header * 500 / latency)
    assert check_idle_polling_cost(lambda latency, header: header / (2 * latency / 1000))


def test_the_cases_include_edge_cases() -> None:
    assert any(header == 0 for _, header in CASES)
    assert any(latency < 1 for latency, _ in CASES)
    assert any(correct(*case) != int(correct(*case)) for case in CASES)


def test_not_done_yet() -> None:
    def learner_copy(latency_ms: float, header_bytes: float) -> float:
        raise NotImplementedError  # your code here

    verdict = check_idle_polling_cost(learner_copy)
    assert not verdict.passed
    assert verdict.message == "idle_polling_cost: not done yet"
    assert verdict.hint == HINT
    assert str(verdict).startswith("❌ idle_polling_cost: not done yet\n   Hint: ")


@pytest.mark.parametrize(
    ("answer", "diagnosis"),
    [
        # polled every latency_ms: forgot that updates wait half an interval
        (lambda latency, header: header / (latency / 1000), "half an interval"),
        # polled every latency_ms / 2
        (lambda latency, header: header / (latency / 2 / 1000), "not latency_ms / 2"),
        # treated milliseconds as seconds
        (lambda latency, header: header / (2 * latency), "mind the units"),
        # both slips at once
        (lambda latency, header: header / latency, "mind the units"),
    ],
)
def test_common_slips_fail_with_a_diagnosis_and_the_hint(answer, diagnosis) -> None:
    verdict = check_idle_polling_cost(answer)
    assert not verdict.passed
    assert diagnosis in verdict.message
    assert verdict.message.startswith("idle_polling_cost: (latency_ms=100, header_bytes=300)")
    assert verdict.hint == HINT
    assert "Hint: " in str(verdict)


def test_floor_division_fails_on_a_fraction() -> None:
    verdict = check_idle_polling_cost(lambda latency, header: header * 500 // latency)
    assert not verdict.passed
    assert "latency_ms=300, header_bytes=100" in verdict.message
    assert "expected 166.667" in verdict.message


def test_a_missing_return_is_named() -> None:
    def forgot_return(latency_ms: float, header_bytes: float) -> None:
        _ = header_bytes * 500 / latency_ms

    verdict = check_idle_polling_cost(forgot_return)  # type: ignore[arg-type]
    assert not verdict.passed
    assert "returned None" in verdict.message
    assert verdict.hint == HINT


def test_a_non_number_fails() -> None:
    verdict = check_idle_polling_cost(lambda latency, header: f"{header * 500 / latency} B/s")
    assert not verdict.passed
    assert "expected a number" in verdict.message


def test_an_exception_fails_with_its_name() -> None:
    verdict = check_idle_polling_cost(lambda latency, header: 1 / 0)
    assert not verdict.passed
    assert "raised ZeroDivisionError" in verdict.message
    assert verdict.hint == HINT


def test_something_not_callable_fails() -> None:
    verdict = check_idle_polling_cost(1500)  # type: ignore[arg-type]
    assert not verdict.passed
    assert "expected a function, got int" in verdict.message
