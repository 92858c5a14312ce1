"""Learner copies: a notebook with its exercises' solutions taken out (pure, no files).

A solution sits between two marker lines (docs/authoring.md)::

    def accept_key(key):
        # BEGIN SOLUTION
        ...
        # END SOLUTION

In the learner copy everything from ``# BEGIN SOLUTION`` to ``# END SOLUTION``,
both markers included, becomes ``raise NotImplementedError  # your code here`` at
the markers' indentation, so the exercise's check answers "not done yet". A code
cell that had a solution loses its outputs (its check said ✅). Markdown cells may
hide an answer the same way, between ``<!-- BEGIN SOLUTION -->`` and
``<!-- END SOLUTION -->`` lines (removed) or in a code sample with the code markers.
JavaScript in a cell (the code of a ``rtlab.js_exercise`` box) marks its solution with
``// BEGIN SOLUTION`` and ``// END SOLUTION``; it becomes
``throw new Error("not done yet: your code here");``, which the exercise's check answers
with "not done yet".
A "predict, then run" cell (a code cell tagged ``predict`` in its metadata) loses
its outputs too, so the learner predicts before seeing them; so do the code cells after
it up to the next heading, whose outputs may tell, and the markdown cell after it, the
answer, is folded in a ``<details>`` element the learner opens. The notebook's saved
widget state is dropped (a JavaScript box's code is in it). Everything else is
copied unchanged.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

PLACEHOLDER = "raise NotImplementedError  # your code here"
JS_PLACEHOLDER = 'throw new Error("not done yet: your code here");'
PREDICT = "predict"  # the cell tag of a "predict, then run" cell
ANSWER_SUMMARY = "What happened, and why (open it once you have run the cell above)"
_MARKER = re.compile(
    r"^(?P<indent>[ \t]*)"
    r"(?:# (?P<code>BEGIN|END) SOLUTION|// (?P<js>BEGIN|END) SOLUTION"
    r"|<!-- (?P<html>BEGIN|END) SOLUTION -->)[ \t]*$"
)


class SolutionError(ValueError):
    """Markers that do not pair up: a BEGIN without its END, an END alone, or nested."""


@dataclass(frozen=True)
class LearnerNotebook:
    """A learner copy and what was taken out of it."""

    notebook: dict[str, Any]
    exercises: list[int]  # indexes of the code cells that had a solution
    solutions: int  # solution blocks removed, in code and markdown cells
    predictions: list[int]  # indexes of the "predict, then run" cells, outputs cleared
    answers: list[int]  # indexes of the markdown cells after them, folded


def _text(source: str | list[str]) -> str:
    return source if isinstance(source, str) else "".join(source)


def _lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


def learner_source(source: str, where: str = "this cell") -> tuple[str, int]:
    """``source`` with each solution replaced by the placeholder; and how many there were.

    Raises :class:`SolutionError`, naming ``where`` and the line, when markers do not pair.
    """
    lines = source.splitlines(keepends=True)
    out: list[str] = []
    begun: tuple[int, str, str] | None = None  # line number, indentation, marker kind
    count = 0
    for number, line in enumerate(lines, 1):
        match = _MARKER.match(line.rstrip("\r\n"))
        if match is None:
            if begun is None:
                out.append(line)
            continue
        kind = next(k for k in ("code", "js", "html") if match[k])
        edge = match[kind]
        if edge == "BEGIN":
            if begun is not None:
                raise SolutionError(
                    f"{where}: BEGIN SOLUTION on line {number} comes before the END SOLUTION "
                    f"of the one on line {begun[0]}"
                )
            begun = (number, match["indent"], kind)
            continue
        if begun is None:
            raise SolutionError(f"{where}: END SOLUTION on line {number} has no BEGIN SOLUTION")
        _, indent, begun_kind = begun
        if begun_kind != kind:
            raise SolutionError(
                f"{where}: the END SOLUTION on line {number} does not match its BEGIN SOLUTION"
                f" on line {begun[0]}"
            )
        if begun_kind != "html":
            ending = "\n" if line.endswith("\n") else ""
            placeholder = PLACEHOLDER if begun_kind == "code" else JS_PLACEHOLDER
            out.append(f"{indent}{placeholder}{ending}")
        begun = None
        count += 1
    if begun is not None:
        raise SolutionError(f"{where}: BEGIN SOLUTION on line {begun[0]} has no END SOLUTION")
    return "".join(out), count


def _clear(cell: dict[str, Any]) -> None:
    cell["outputs"] = []
    cell["execution_count"] = None


def folded(answer: str) -> str:
    """A markdown answer inside a ``<details>`` element, shut until the learner opens it."""
    return f"<details><summary>{ANSWER_SUMMARY}</summary>\n\n{answer.strip()}\n\n</details>\n"


def learner_notebook(notebook: dict[str, Any], name: str = "the notebook") -> LearnerNotebook:
    """A learner copy of ``notebook`` (an nbformat 4 dict; the original is not changed).

    Raises :class:`SolutionError` naming ``name`` and the cell (numbered from 1, as
    JupyterLab shows them, with its id) when its markers do not pair.
    """
    copied = copy.deepcopy(notebook)
    # Saved widget state (JupyterLab's "save widget state") holds what the widgets showed,
    # a JavaScript exercise box's solution among it: the copy starts without it.
    copied.get("metadata", {}).pop("widgets", None)
    exercises: list[int] = []
    predictions: list[int] = []
    answers: list[int] = []
    solutions = 0
    predicted = False  # since the last "predict, then run" cell, before the next heading
    for index, cell in enumerate(copied.get("cells", [])):
        code = cell.get("cell_type") == "code"
        text = _text(cell.get("source", ""))
        if code and PREDICT in cell.get("metadata", {}).get("tags", []):
            predictions.append(index)
            predicted = True
        elif not code and text.lstrip().startswith("#"):
            predicted = False
        elif not code and predictions and predictions[-1] == index - 1:
            answers.append(index)
            text = folded(text)
            cell["source"] = text if isinstance(cell["source"], str) else _lines(text)
        if code and predicted:
            _clear(cell)  # the predict cell, or one after it whose output may tell
        where = f"{name}, cell {index + 1}" + (f" (id {cell['id']})" if cell.get("id") else "")
        source, count = learner_source(_text(cell.get("source", "")), where)
        if not count:
            continue
        cell["source"] = source if isinstance(cell["source"], str) else _lines(source)
        solutions += count
        if code:
            exercises.append(index)
            _clear(cell)
    return LearnerNotebook(copied, exercises, solutions, predictions, answers)
