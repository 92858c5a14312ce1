"""The learner's own copies of the course's notebooks, solutions taken out (``rtlab learner``).

Every notebook is read and transformed before anything is written, so a notebook
with unbalanced markers stops the command with nothing written; each copy is
written to a temporary file first and then renamed into place.

A learner's copies are never overwritten. Their folder keeps a manifest,
``.rtlab-learner.json``, with two hashes per copy as written: of its cell sources
(types and text) and of the whole copy. ``--update`` (and ``rtlab lab``, on every
start) adds lessons that are new, replaces a copy whose cell sources still match
(outputs do not count: running a notebook is not editing it) when the course
changed it, and leaves every other copy alone, saying which and why.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from rtlab.learner import LearnerNotebook, SolutionError, learner_notebook

REPO_NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
FOLDER_VARIABLE = "RTLAB_LEARNER_DIR"
MANIFEST = ".rtlab-learner.json"


class HandoutError(Exception):
    """Why no copy was written: a bad source, a bad ``--out``, markers that do not pair."""


def notebooks_folder() -> Path:
    """The course's notebooks: the checkout's ``notebooks/``, else the current folder's."""
    for folder in (REPO_NOTEBOOKS, Path.cwd() / "notebooks"):
        if folder.is_dir():
            return folder
    return Path.cwd()


def learner_folder() -> Path:
    """Where a learner's copies live: ``$RTLAB_LEARNER_DIR``; else ``learner/`` beside a
    checkout's ``notebooks/`` (git ignores it); else ``~/rtlab-learner`` (a pip install)."""
    if os.environ.get(FOLDER_VARIABLE):
        return Path(os.environ[FOLDER_VARIABLE]).expanduser()
    if REPO_NOTEBOOKS.is_dir():
        return REPO_NOTEBOOKS.parent / "learner"
    return Path.home() / "rtlab-learner"


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Register ``rtlab learner`` on the ``rtlab`` command's subparsers."""
    learner = commands.add_parser(
        "learner",
        help="write learner copies of the notebooks, solutions taken out",
        description="Write learner copies of the notebooks: every solution replaced by a "
        "placeholder whose check says 'not done yet', the outputs of exercises and "
        "predictions cleared. Existing copies are kept unless --update or --force says.",
    )
    learner.add_argument(
        "source",
        nargs="?",
        help="a folder of notebooks, or one notebook (default: the course's notebooks)",
    )
    learner.add_argument(
        "--out",
        help="folder to write the copies to (default: what rtlab lab opens: learner/ beside "
        f"a checkout's notebooks/, else ~/rtlab-learner, or ${FOLDER_VARIABLE}; made if missing)",
    )
    replace = learner.add_mutually_exclusive_group()
    replace.add_argument(
        "--update",
        action="store_true",
        help="add new lessons and replace copies you never edited that the course changed; "
        "edited copies are kept (and named)",
    )
    replace.add_argument(
        "--force",
        action="store_true",
        help="replace every copy already in --out, edited or not (never the source notebooks)",
    )


def sources(source: Path) -> list[Path]:
    """The notebooks ``source`` names: itself, or the folder's ``*.ipynb``, sorted."""
    if source.is_file():
        return [source]
    return sorted(path for path in source.glob("*.ipynb") if path.is_file())


def _text(notebook: dict[str, Any]) -> str:
    return json.dumps(notebook, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sources_hash(notebook: dict[str, Any]) -> str:
    """A hash of the cells' types and sources: what the learner edits (outputs are not)."""
    cells = [
        [cell.get("cell_type"), "".join(cell.get("source", ""))]
        for cell in notebook.get("cells", [])
    ]
    return _digest(json.dumps(cells, ensure_ascii=False))


def _umask() -> int:
    mask = os.umask(0o22)
    os.umask(mask)
    return mask


def _write_text(path: Path, text: str) -> None:
    """Write ``path`` whole or not at all, readable as any file the user makes (mkstemp's
    own 0600 would keep a course folder's copies from the class)."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class Copy:
    """A learner copy to write: where, the notebook, and the hashes the manifest keeps."""

    target: Path
    learner: LearnerNotebook

    @cached_property
    def text(self) -> str:
        return _text(self.learner.notebook)

    @cached_property
    def record(self) -> dict[str, str]:
        return {"sources": sources_hash(self.learner.notebook), "copy": _digest(self.text)}


def course_copies(source: Path, out: Path) -> list[Copy]:
    """The learner copies of ``source``'s notebooks for the folder ``out``, nothing written.

    Raises :class:`HandoutError` when a notebook is missing or unreadable, when its
    markers do not pair, when ``out`` is a file or would be the source itself."""
    if not source.exists():
        raise HandoutError(f"no such folder or notebook: {source}")
    notebooks = sources(source)
    if not notebooks:
        raise HandoutError(f"no notebooks (*.ipynb) in {source}")
    if out.exists() and not out.is_dir():
        raise HandoutError(f"--out {out} is a file, not a folder")
    originals = {path.resolve() for path in notebooks}
    copies = []
    for path in notebooks:
        target = out / path.name
        if target.resolve() in originals:
            raise HandoutError(f"--out {out} would overwrite the source notebook {path}")
        try:
            notebook = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise HandoutError(f"cannot read {path}: {error}; nothing written") from None
        if not isinstance(notebook, dict):
            raise HandoutError(f"cannot read {path}: not a notebook; nothing written")
        try:
            copies.append(Copy(target, learner_notebook(notebook, str(path))))
        except SolutionError as error:
            raise HandoutError(f"{error}; nothing written") from None
    return copies


def read_manifest(out: Path) -> dict[str, dict[str, str]]:
    """What was written to ``out``, copy by copy (empty when there is no readable manifest)."""
    try:
        copies = json.loads((out / MANIFEST).read_text(encoding="utf-8"))["copies"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    if not isinstance(copies, dict):
        return {}
    return {
        name: record
        for name, record in copies.items()
        if isinstance(record, dict) and {"sources", "copy"} <= record.keys()
    }


def write_copies(out: Path, copies: list[Copy], manifest: dict[str, dict[str, str]]) -> None:
    """Write ``copies`` into ``out`` (made if missing) and record them in its manifest."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        for copy in copies:
            _write_text(copy.target, copy.text)
            manifest[copy.target.name] = copy.record
        about = "rtlab learner: what it wrote here, so that it never overwrites your edits"
        _write_text(out / MANIFEST, _text({"about": about, "copies": manifest}))
    except OSError as error:
        raise HandoutError(f"cannot write to {out}: {error}") from None


@dataclass
class Update:
    """What an update did, by notebook name; ``skipped`` says why for each."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    current: list[str] = field(default_factory=list)  # left as they were: nothing to do

    def line(self, out: Path) -> str:
        """One line for ``rtlab lab``: what was added, updated and skipped."""
        if self.added and not (self.updated or self.skipped or self.current):
            return (
                f"Made your copies of {len(self.added)} lesson(s) in {out} (solutions taken "
                "out): edit them freely, rtlab never overwrites your work."
            )
        parts = [f"added {', '.join(self.added)}"] if self.added else []
        if self.updated:
            parts.append(f"updated {', '.join(self.updated)} (changed in the course, not by you)")
        if self.skipped:
            parts.append(
                f"kept {', '.join(self.skipped)} as they are though the course changed "
                "(rtlab learner --update says why)"
            )
        return f"Your copies in {out}: {'; '.join(parts) or 'up to date'}."


def _skip_reason(copy: Copy, record: dict[str, str] | None) -> str | None:
    """Why ``copy.target``, which exists, must not be replaced; None when it may be."""
    try:
        mine = sources_hash(json.loads(copy.target.read_text(encoding="utf-8")))
    except (OSError, ValueError, AttributeError, TypeError) as error:  # not a notebook
        return f"cannot read it ({error}), so it is left as it is"
    if mine == copy.record["sources"]:
        return None  # the same cells as the course's copy: nothing of the learner's to lose
    if record is None:
        return f"rtlab has no record of writing it (in {MANIFEST}): it may hold your work"
    if mine != record.get("sources"):
        return (
            "you edited it, and the course changed it since: to get the new version, "
            "rename your copy and run rtlab learner --update again"
        )
    return None


def update(out: Path, copies: list[Copy]) -> Update:
    """Bring the copies in ``out`` up to date with the course without losing a learner's edit."""
    manifest = read_manifest(out) if out.is_dir() else {}
    before = dict(manifest)
    done = Update()
    writes = []
    for copy in copies:
        name, record = copy.target.name, manifest.get(copy.target.name)
        if not copy.target.exists():
            done.added.append(name)
            writes.append(copy)
        elif record == copy.record:
            done.current.append(name)  # the course has not changed it
        elif (why := _skip_reason(copy, record)) is not None:
            done.skipped[name] = why
        elif record is None or record["copy"] == copy.record["copy"]:
            done.current.append(name)  # unrecorded but identical cells: adopt it
            manifest[name] = copy.record
        else:
            done.updated.append(name)
            writes.append(copy)
    if writes or manifest != before:
        write_copies(out, writes, manifest)
    return done


def refresh(out: Path) -> str:
    """Make or update the learner's copies in ``out`` from the course (``rtlab lab``); the
    one line saying what was done. Copies with no course beside them are left as they are."""
    course = notebooks_folder()
    if course.resolve() == out.resolve() or not sources(course):
        if out.is_dir() and sources(out):
            return (
                f"Your copies in {out}: no course notebooks found to update them from "
                "(no notebooks/ here); opening them as they are."
            )
        raise HandoutError(
            f"no course notebooks found in {course}: run rtlab lab in a checkout of rtlab "
            "(or where its notebooks/ folder is)"
        )
    return update(out, course_copies(course, out)).line(out)


def _update_report(out: Path, done: Update) -> None:
    for name in done.added:
        print(f"added {out / name}")
    for name in done.updated:
        print(f"updated {out / name}: the course changed it and you had not edited it")
    for name, why in done.skipped.items():
        print(f"skipped {out / name}: {why}")
    print(
        f"{out}: {len(done.added)} added, {len(done.updated)} updated, "
        f"{len(done.skipped)} skipped, {len(done.current)} already up to date"
    )


def run(args: argparse.Namespace) -> int:
    """The command: 0 when done, 1 on an error (nothing written)."""
    source = Path(args.source) if args.source else notebooks_folder()
    out = Path(args.out) if args.out else learner_folder()
    try:
        copies = course_copies(source, out)
        if args.update:
            _update_report(out, update(out, copies))
            return 0
        for copy in copies:
            if copy.target.exists() and not args.force:
                raise HandoutError(
                    f"{copy.target} exists already: --update adds new lessons and keeps "
                    "your edits; --force replaces every copy"
                )
        write_copies(out, copies, read_manifest(out) if out.is_dir() else {})
    except HandoutError as error:
        print(f"rtlab learner: {error}", file=sys.stderr)
        return 1
    exercises = solutions = 0
    for copy in copies:
        n = len(copy.learner.exercises)
        exercises += n
        solutions += copy.learner.solutions
        plural = "" if n == 1 else "s"
        removed = copy.learner.solutions
        print(f"wrote {copy.target}: {n} exercise{plural}, {removed} solution(s) removed")
    print(
        f"{len(copies)} learner notebook(s) in {out}: {exercises} exercise"
        f"{'' if exercises == 1 else 's'}, {solutions} solution{'' if solutions == 1 else 's'}"
        " removed"
    )
    return 0
