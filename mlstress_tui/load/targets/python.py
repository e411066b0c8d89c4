"""The user's own pipeline function, `python:pkg.module:function`, called with a user id.

The contract: return the user's features as a dict; for a user id that does
not exist, return None or raise a `LookupError` (KeyError and IndexError are
LookupErrors too): "no such user", counted as `missing_user`, the right answer
for an unknown id and an error for a known one. Anything else returned is
`BadResult`; anything else raised is an error of its exception's name.
"""

from __future__ import annotations

import importlib
import importlib.util
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from mlstress_tui.errors import UsageError
from mlstress_tui.load.targets import LiveTarget, RequestTimeout, Target


class BadResult(Exception):
    """The pipeline function returned something other than a dict (or None for no such user)."""


class NoSuchUser(Exception):
    """The pipeline function said "no such user" (returned None, or raised a LookupError)."""

    error_kind = "missing_user"


def resolve_function(spec: str) -> Callable[[str], Any]:
    """Import `pkg.module:function`; a one-line UsageError when it cannot be found."""
    module_name, _, function_name = spec.rpartition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as error:  # any import-time failure of user code is bad input
        raise UsageError(f"cannot import {module_name!r} for python:{spec} ({type(error).__name__}: {error})") from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise UsageError(f"{module_name!r} has no function {function_name!r}: check the python:{spec} target")
    return function  # type: ignore[no-any-return]  # user code: checked as callable, typed by its result


def check_module(spec: str) -> None:
    """That `pkg.module` of `pkg.module:function` can be found, without running the module.

    The controller never imports the target: a model that allocates 300 MB or loads
    for a minute at import does so in the worker processes only (which report a
    missing function or an import error as one line). Finding `pkg.module` imports
    its parent package `pkg`, as Python's import system must.
    """
    module_name, _, _ = spec.rpartition(":")
    try:
        found = importlib.util.find_spec(module_name)
    except Exception as error:  # a parent package that fails to import is bad input too
        raise UsageError(f"cannot import {module_name!r} for python:{spec} ({type(error).__name__}: {error})") from None
    if found is None:
        raise UsageError(f"no module named {module_name!r} for python:{spec}: check the name, the current directory "
                         "and PYTHONPATH")


@dataclass(frozen=True)
class PythonTarget(Target):
    """`python:pkg.module:function`: the user's own pipeline, called with a user id, returning a dict."""

    kind: ClassVar[str] = "python"
    function: str = ""

    @property
    def label(self) -> str:
        return f"python:{self.function}"

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "function": self.function}

    def check(self) -> None:
        check_module(self.function)

    def open(self, timeout_s: float) -> LiveTarget:
        return _LivePython(resolve_function(self.function))


class _LivePython(LiveTarget):
    def __init__(self, function: Callable[[str], Any]) -> None:
        self.function = function

    def connect(self) -> None:
        return None

    def request(self, connection: None, user_id: str, deadline_ns: int) -> None:
        try:
            result = self.function(user_id)
        except LookupError as error:
            raise NoSuchUser(f"{type(error).__name__}: {error}"[:200]) from None
        # A plain function cannot be interrupted: one that overran is a timeout after the fact.
        if time.perf_counter_ns() > deadline_ns:
            raise RequestTimeout()
        if result is None:
            raise NoSuchUser(f"returned None for {user_id}")
        if not isinstance(result, dict):
            raise BadResult(f"returned {type(result).__name__}, expected dict (or None for no such user)")
