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
