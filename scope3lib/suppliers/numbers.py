"""Amounts and dates as ERPs and spreadsheets write them, parsed once per distinct value.

Amounts: ``1,234.56`` or, in European exports, ``1.234,56`` (the decimal mark is detected per column, or
given); a minus sign in front or behind (SAP writes ``1.234,56-``), or parentheses for a credit; a
currency symbol or code around it is tolerated. Dates: ISO (``2025-01-31``), German (``31.01.2025``),
SAP's internal ``20250131``, US (``01/31/2025``) and day-first (``31/01/2025``); the format is detected
per column and refused when a column could be read two ways (all days 12 or less).
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

_COMMA_DECIMAL = re.compile(r"^[-(]?[\d .']*,\d{1,3}\)?-?$")
_DOT_DECIMAL = re.compile(r"^[-(]?[\d ,']*\.\d{1,3}\)?-?$")
_DOT_THOUSANDS = re.compile(r"^-?\d{1,3}(\.\d{3}){2,}-?$")  # 2.000.000: dots group thousands, so a decimal comma
_COMMA_THOUSANDS = re.compile(r"^-?\d{1,3}(,\d{3}){2,}-?$")
_STRIP = re.compile(r"[A-Za-z$€£¥\s']")

#: Date formats tried, in this order; a saved column mapping stores the one found.
DATE_FORMATS = ("%Y-%m-%d", "%d.%m.%Y", "%Y%m%d", "%m/%d/%Y", "%d/%m/%Y", "%Y/%m/%d", "%d-%m-%Y")


def detect_decimal(values: pd.Series) -> str:
    """``","`` when the column's amounts are written with a decimal comma (``1.234,56``), else ``"."``."""
    sample = pd.Series(values.dropna().astype(str).str.strip().unique()[:5000])
    comma = int(sample.str.match(_COMMA_DECIMAL).sum() + sample.str.match(_DOT_THOUSANDS).sum())
    dot = int(sample.str.match(_DOT_DECIMAL).sum() + sample.str.match(_COMMA_THOUSANDS).sum())
    return "," if comma > dot else "."


_PLAIN: dict[str, dict[int, Any]] = {",": str.maketrans({".": None, ",": ".", " ": None, "'": None}),
          ".": str.maketrans({",": None, " ": None, "'": None})}


def parse_amounts(values: pd.Series, decimal: str = ".") -> np.ndarray:
    """The amounts as float64 (NaN where empty or not a number), each distinct text parsed once."""
    codes, uniques = pd.factorize(values.to_numpy(dtype=object), use_na_sentinel=True)
    parsed = _plain(uniques, decimal)
    if parsed is None:
        parsed = _careful(uniques, decimal)
    out = parsed[np.clip(codes, 0, None)] if len(parsed) else np.full(len(codes), np.nan)
    out[codes < 0] = np.nan
    return out


def _plain(uniques: np.ndarray, decimal: str) -> np.ndarray | None:
    """The fast path: every value is a plain number once its thousands separators go (None when one is not)."""
    table = _PLAIN[decimal]
    try:
        return np.array([float(str(u).translate(table)) for u in uniques], dtype="float64")
    except ValueError:
        return None


def _careful(uniques: np.ndarray, decimal: str) -> np.ndarray:
    """Signs behind or in parentheses, currency symbols, blanks and text that is no number (NaN)."""
    text = pd.Series(uniques, dtype=object).astype(str).str.replace(_STRIP, "", regex=True)
    negative = text.str.endswith("-") | (text.str.startswith("(") & text.str.endswith(")"))
    text = text.str.strip("()-+").where(~negative, text.str.strip("()-+"))
    lead_minus = pd.Series(uniques, dtype=object).astype(str).str.strip().str.startswith("-")
    if decimal == ",":
        text = text.str.replace(".", "", regex=False).str.replace(",", ".", regex=False)
    else:
        text = text.str.replace(",", "", regex=False)
    parsed = pd.to_numeric(text.where(text != "", None), errors="coerce").to_numpy(dtype="float64")
    return np.asarray(np.where((negative | lead_minus).to_numpy(), -parsed, parsed), dtype="float64")


def _try(uniques: pd.Series, fmt: str) -> pd.Series:
    return pd.to_datetime(uniques, format=fmt, errors="coerce")


def detect_date_format(values: pd.Series) -> str | None:
    """The one format of :data:`DATE_FORMATS` that reads every non-empty value; None when none does.

    Raises ValueError when two formats read them all differently (``03/04/2025``: March or April?).
    """
    uniques = _clean_dates(pd.Series(pd.unique(values.to_numpy(dtype=object)), dtype=object)).drop_duplicates()
    uniques = uniques[uniques != ""]
    if uniques.empty:
        return None
    fitting = [f for f in DATE_FORMATS if _try(uniques, f).notna().all()]
    if len(fitting) > 1 and not _try(uniques, fitting[0]).equals(_try(uniques, fitting[1])):
        raise ValueError(f"dates such as {uniques.iloc[0]!r} could be {fitting[0]} or {fitting[1]}")
    return fitting[0] if fitting else None


def _clean_dates(values: pd.Series) -> pd.Series:
    # Excel date cells read as text come with a time of midnight.
    return values.astype(str).str.strip().str.replace(r"[ T]00:00:00(\.0+)?$", "", regex=True)


def parse_dates(values: pd.Series, fmt: str) -> pd.Series:
    """The dates (NaT where empty or not in ``fmt``), each distinct text parsed once."""
    codes, uniques = pd.factorize(values.to_numpy(dtype=object))
    parsed = pd.to_datetime(_clean_dates(pd.Series(uniques, dtype=object)), format=fmt, errors="coerce").to_numpy()
    out = parsed[np.clip(codes, 0, None)] if len(parsed) else np.full(len(codes), np.datetime64("NaT"))
    return pd.Series(out, index=values.index).where(codes >= 0)
