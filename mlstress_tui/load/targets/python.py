"""The user's own pipeline function, `python:pkg.module:function`, called with a user id."""

from __future__ import annotations

import importlib
import importlib.util
import time
from collections.abc import Callable

from mlstress_tui.errors import UsageError
from mlstress_tui.load.targets import RequestTimeout


class BadResult(Exception):
    """The pipeline function returned something other than a dict."""


def resolve_function(spec: str) -> Callable[[str], dict]:
    """Import `pkg.module:function`; a one-line UsageError when it cannot be found."""
    module_name, _, function_name = spec.rpartition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as error:  # any import-time failure of user code is bad input
        raise UsageError(f"cannot import {module_name!r} for python:{spec} ({type(error).__name__}: {error})") from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise UsageError(f"{module_name!r} has no function {function_name!r}: check the python:{spec} target")
    return function


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


class PythonTarget:
    def __init__(self, spec: str) -> None:
        self.function = resolve_function(spec)

    def connect(self) -> None:
        return None

    def request(self, connection: None, user_id: str, deadline_ns: int) -> None:
        result = self.function(user_id)
        # A plain function cannot be interrupted: one that overran is a timeout after the fact.
        if time.perf_counter_ns() > deadline_ns:
            raise RequestTimeout()
        if not isinstance(result, dict):
            raise BadResult(f"returned {type(result).__name__}, expected dict")

    def close(self, connection: None) -> None:
        pass
