"""What a learner's function calls, read from its source: whether it uses the answer of a
library function (``hmac.compare_digest``, where a check wants it; the reference answer,
where a check wants the learner's own)."""

from __future__ import annotations

import ast
import inspect
import sys
import textwrap
import types
from collections.abc import Callable, Collection
from typing import Any


def _resolve(node: ast.expr, names: dict[str, Any]) -> Any:
    """The object a name or a ``module.attribute`` chain stands for, or None."""
    if isinstance(node, ast.Name):
        return names.get(node.id)
    if isinstance(node, ast.Attribute):
        base = _resolve(node.value, names)
        if isinstance(base, types.ModuleType):
            return getattr(base, node.attr, None)
    return None


def _imported(tree: ast.AST) -> dict[str, Any]:
    """Names bound by the imports inside the function (``import hmac`` in its body)."""
    names: dict[str, Any] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.partition(".")[0]
                module = sys.modules.get(alias.name if alias.asname else top)
                names[alias.asname or top] = module
        elif isinstance(node, ast.ImportFrom) and node.module in sys.modules:
            for alias in node.names:
                names[alias.asname or alias.name] = getattr(
                    sys.modules[node.module], alias.name, None
                )
    return names


def _discarded(tree: ast.AST) -> set[int]:
    """The ids of the calls whose answer nothing reads: a bare expression, or an assignment
    to names that are never read (``same = compare_digest(...)`` and then ``==``)."""
    read = {
        node.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)
    }
    discarded = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Expr):
            discarded.add(id(node.value))
        elif isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            stored = [
                name.id
                for target in targets
                for name in ast.walk(target)
                if isinstance(name, ast.Name)
            ]
            if stored and not read.intersection(stored):
                discarded.add(id(node.value))
    return discarded


def uses_answer_of(
    function: Callable[..., Any], targets: Collection[Callable[..., Any]], depth: int = 2
) -> bool | None:
    """Whether ``function`` calls one of ``targets`` (under any name it was imported as)
    and uses the answer, or calls a function of its own module that does; None when its
    source cannot be read."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    except (OSError, TypeError, SyntaxError):
        return None
    names = {**getattr(function, "__globals__", {}), **_imported(tree)}
    discarded = _discarded(tree)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or id(node) in discarded:
            continue
        called = _resolve(node.func, names)
        if any(called is target for target in targets):
            return True
        own = inspect.isfunction(called) and called.__module__ == function.__module__
        if (
            own
            and called is not function
            and depth > 0
            and uses_answer_of(called, targets, depth - 1)
        ):
            return True
    return False
