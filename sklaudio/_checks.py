"""Parameter predicates shared by the estimators and the pure-torch layer."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np


def is_int(value) -> bool:
    """An integer parameter value; True and False are not (``embedding_dim=True`` is a slip)."""
    return isinstance(value, Integral) and not isinstance(value, bool | np.bool_)


def is_real(value) -> bool:
    """A number parameter value; True and False are not."""
    return isinstance(value, Real) and not isinstance(value, bool | np.bool_)


def did_you_mean(name: str, choices) -> str:
    """``" (did you mean 'x'?)"`` for the choice closest to a misspelled ``name``, or ``""``."""
    import difflib

    close = difflib.get_close_matches(name, sorted(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
