"""DataFrames as plain Python values (scope3lib.frames), for JSON and query parameters: no database needed."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd

from scope3lib import frames


def test_missing_values_and_infinities_become_none_and_scalars_python_s() -> None:
    frame = pd.DataFrame({
        "n": [1, 2, 3],
        "x": [1.5, np.nan, np.inf],
        "nullable": pd.array([1, None, 3], dtype="Int64"),
        "day": pd.to_datetime(["2024-01-01 00:00:00.123456789", None, "2024-03-01 00:00:00.0"]),
        "utc": pd.to_datetime(["2024-01-01", None, "2024-03-01"], utc=True),
        "mixed": [np.int64(4), None, np.float64(-np.inf)],
        "text": pd.array(["a", None, "c"], dtype="string"),
        "doc": [{"a": 1}, None, [1]],
        "any": [pd.Timestamp("2024-01-01"), pd.NaT, pd.NA],
        7: [True, False, True],
    })
    rows = frames.rows(frame)
    assert rows[0] == {"n": 1, "x": 1.5, "nullable": 1, "day": dt.datetime(2024, 1, 1, 0, 0, 0, 123456),
                       "utc": dt.datetime(2024, 1, 1, tzinfo=dt.UTC), "mixed": 4, "text": "a", "doc": {"a": 1},
                       "any": dt.datetime(2024, 1, 1), "7": True}
    assert rows[1] == {"n": 2, "x": None, "nullable": None, "day": None, "utc": None, "mixed": None, "text": None,
                       "doc": None, "any": None, "7": False}
    assert rows[2]["x"] is None and rows[2]["mixed"] is None
    for row in rows:  # Python's own types only: what json and the database driver take
        assert all(type(v) in (int, float, bool, str, dict, list, dt.datetime, type(None)) for v in row.values()), row
    json.dumps(rows, default=str, allow_nan=False)
    assert frames.values(frame["x"]) == [1.5, None, None]
    assert [type(v) for v in frames.values(frame["n"])] == [int, int, int]


def test_a_frame_without_rows_or_columns() -> None:
    assert frames.rows(pd.DataFrame({"a": []})) == []
    assert frames.rows(pd.DataFrame(index=[0, 1])) == [{}, {}]
