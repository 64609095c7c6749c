"""Warnings that point at the user's line, however deep in a Pipeline they arise."""

from __future__ import annotations

import os
import sys
import sysconfig
import warnings

# Frames in these packages are skipped: a warning raised in AudioReader.transform, called
# by sklearn's set_output wrapper, a Pipeline, cross_val_score or skorch, is reported at
# the line of the user's code that called them.
_PACKAGES = ("sklaudio", "sklearn", "skorch", "joblib", "torch")


def _internal_prefixes() -> tuple[str, ...]:
    modules = (sys.modules.get(name) for name in _PACKAGES)
    return tuple(
        os.path.dirname(module.__file__) + os.sep
        for module in modules
        if getattr(module, "__file__", None)
    )


def warn_user(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn`` attributed to the first caller outside sklaudio and the
    libraries it runs in (``skip_file_prefixes`` of Python 3.12, on every version).

    Examples
    --------
    >>> import warnings
    >>> from sklaudio._warnings import warn_user
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warn_user("careful")
    >>> str(caught[0].message)
    'careful'
    """
    internal = _internal_prefixes()
    frame, level = sys._getframe(1), 2
    while frame is not None and (
        frame.f_code.co_filename.startswith(internal) or _in_stdlib(frame)
    ):
        frame, level = frame.f_back, level + 1
    if frame is None:
        # no user code on the stack (a joblib worker, a thread): the standard library's
        # process or thread start would be named; the sklaudio line says more
        level = 2
    warnings.warn(message, category, stacklevel=level)


_STDLIB = os.path.join(sysconfig.get_paths()["stdlib"], "")


def _in_stdlib(frame) -> bool:
    """A frame of the standard library (contextlib, threading, multiprocessing, ...)."""
    filename = frame.f_code.co_filename
    if filename.startswith("<frozen"):
        return True
    name = frame.f_globals.get("__name__") or ""
    # a user's own queue.py or code.py shares a standard module's name, not its folder
    return name.split(".")[0] in sys.stdlib_module_names and filename.startswith(_STDLIB)
