"""DataFrames as plain Python values, the one way every part turns rows into JSON or into query parameters.

pandas marks a missing value as NaN, NaT or NA and holds numbers as numpy scalars; JSON knows none of them and
the database driver wants Python's own. Missing values and infinities (JSON has no such number, and none of
the platform's quantities is infinite) become None; numpy scalars become Python's; timestamps become
``datetime`` (to the microsecond, as PostgreSQL keeps them).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd


def values(column: pd.Series) -> list[Any]:
    """A column as plain Python values (a list, in order)."""
    if isinstance(column.dtype, np.dtype) and column.dtype.kind in "iub":  # no missing values possible
        return column.tolist()
    if isinstance(column.dtype, np.dtype) and column.dtype.kind == "f":
        return [v if math.isfinite(v) else None for v in column.tolist()]
    return [_plain(v) for v in column.astype(object).where(column.notna(), None).tolist()]


def rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """A frame's rows as dicts of plain Python values, keyed by the column names as text."""
    if frame.shape[1] == 0:
        return [{} for _ in range(len(frame))]
    names = [str(c) for c in frame.columns]
    columns = [values(frame.iloc[:, i]) for i in range(len(names))]
    return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime(warn=False)  # nanoseconds: PostgreSQL and JSON stop at microseconds
    return value
