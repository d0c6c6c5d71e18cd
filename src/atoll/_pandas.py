"""pandas where the install has it: the lean serving install (``atoll[serve-lite]``) has none.

The prediction path (validation and the built-in steps' ``apply``) runs on
numpy arrays alone. pandas enters only where the input already is a pandas
object, where a model learns (training needs ``atoll[full]``), where a user
step is promised a Series, and in a few large-array shortcuts whose answers
equal the plain code's. ``tests/core/test_lean_paths.py`` runs the plain code with
:data:`module` set to ``None`` and checks every answer against pandas'.

pandas is imported by name here, never with an ``import`` statement, so the
import contracts can forbid the statement everywhere on the serving path.
"""

from __future__ import annotations

import importlib
import math
from decimal import Decimal
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt

from atoll.errors import MissingDependencyError


def _find() -> ModuleType | None:
    try:
        return importlib.import_module("pandas")
    except ModuleNotFoundError:
        return None


module: ModuleType | None = _find()
"""pandas, or ``None`` on the lean install."""


def required() -> Any:
    """pandas, for work the lean install does not do.

    Raises:
        MissingDependencyError: naming ``atoll[full]``.
    """
    if module is None:
        raise MissingDependencyError("pandas", "full")
    return module


def is_frame(value: Any) -> bool:
    return module is not None and isinstance(value, module.DataFrame)


def is_series(value: Any) -> bool:
    return module is not None and isinstance(value, module.Series)


def isna(values: npt.NDArray[Any]) -> npt.NDArray[np.bool_]:
    """``pandas.isna`` of a numpy array (object arrays included), with or without pandas."""
    if module is not None:
        return np.asarray(module.isna(values), dtype=bool)
    if values.dtype.kind in "fc":
        return np.asarray(np.isnan(values), dtype=bool)
    if values.dtype.kind in "mM":
        return np.asarray(np.isnat(values), dtype=bool)
    if values.dtype.kind == "O":
        return np.fromiter(map(is_null, values.tolist()), dtype=bool, count=len(values))
    return np.zeros(len(values), dtype=bool)


def is_null(value: Any) -> bool:
    """``pandas.isna`` of one scalar: ``None``, NaN of any float or Decimal, NaT, ``pd.NA``."""
    if value is None:
        return True
    kind = type(value)
    if kind is float:
        return math.isnan(value)
    if kind in (int, bool, str):
        return False
    if isinstance(value, float | np.floating | complex | np.complexfloating):
        return bool(np.isnan(value))
    if isinstance(value, np.datetime64 | np.timedelta64):
        return bool(np.isnat(value))
    if isinstance(value, Decimal):
        return value.is_nan()
    # pandas' own missing values (pd.NA, pd.NaT) exist only where pandas does
    return module is not None and bool(module.api.types.is_scalar(value) and module.isna(value))
