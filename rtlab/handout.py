"""``rtlab learner``: write learner copies of the course's notebooks, solutions taken out.

Every notebook is read and transformed before anything is written, so a notebook
with unbalanced markers stops the command with nothing written; each copy is
written to a temporary file first and then renamed into place.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from rtlab.course import notebooks_folder
from rtlab.learner import LearnerNotebook, SolutionError, learner_notebook

DEFAULT_OUT = "learner"


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Register ``rtlab learner`` on the ``rtlab`` command's subparsers."""
    learner = commands.add_parser(
        "learner",
        help="write learner copies of the notebooks, solutions replaced by "
        "'raise NotImplementedError'",
    )
    learner.add_argument(
        "source",
        nargs="?",
        help="a folder of notebooks, or one notebook (default: the course's notebooks)",
    )
    learner.add_argument(
        "--out",
        default=DEFAULT_OUT,
        help=f"folder to write the copies to (default ./{DEFAULT_OUT}; made if missing)",
    )
    learner.add_argument(
        "--force",
        action="store_true",
        help="replace copies already in --out (never the source notebooks)",
    )


def sources(source: Path) -> list[Path]:
    """The notebooks ``source`` names: itself, or the folder's ``*.ipynb``, sorted."""
    if source.is_file():
        return [source]
    return sorted(path for path in source.glob("*.ipynb") if path.is_file())


def _write(path: Path, notebook: dict) -> None:
    text = json.dumps(notebook, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def run(args: argparse.Namespace) -> int:
    """The command: 0 when every copy was written, 1 on an error (nothing written)."""

    def fail(message: str) -> int:
        print(f"rtlab learner: {message}", file=sys.stderr)
        return 1

    source = Path(args.source) if args.source else notebooks_folder()
    if not source.exists():
        return fail(f"no such folder or notebook: {source}")
    notebooks = sources(source)
    if not notebooks:
        return fail(f"no notebooks (*.ipynb) in {source}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        return fail(f"--out {out} is a file, not a folder")

    copies: list[tuple[Path, LearnerNotebook]] = []
    originals = {path.resolve() for path in notebooks}
    for path in notebooks:
        target = out / path.name
        if target.resolve() in originals:
            return fail(f"--out {out} would overwrite the source notebook {path}")
        if target.exists() and not args.force:
            return fail(f"{target} exists already (add --force to replace learner copies)")
        try:
            notebook = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            return fail(f"cannot read {path}: {error}")
        try:
            copies.append((target, learner_notebook(notebook, str(path))))
        except SolutionError as error:
            return fail(f"{error}; nothing written")

    out.mkdir(parents=True, exist_ok=True)
    exercises = solutions = 0
    for target, copy in copies:
        _write(target, copy.notebook)
        n = len(copy.exercises)
        exercises += n
        solutions += copy.solutions
        plural = "" if n == 1 else "s"
        print(f"wrote {target}: {n} exercise{plural}, {copy.solutions} solution(s) removed")
    print(
        f"{len(copies)} learner notebook(s) in {out}: {exercises} exercises, "
        f"{solutions} solutions removed"
    )
    return 0
