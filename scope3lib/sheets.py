"""Spreadsheets and CSV files as people export them, read into text columns, or refused in words.

Every file a user hands the platform (activity files, supplier lists, ERP extracts) is read here, so each
gets the same treatment: CSV in UTF-8 (with or without a byte-order mark) or an Excel workbook's first
sheet, every cell as text (empty cells as ``""``), header names stripped and lower-cased. A file that cannot
be read is refused with :class:`~scope3lib.errors.FileFormatError` naming the file, the line where it can
tell, what is wrong and what to do, never with a parser's own message.
"""

from __future__ import annotations

import csv
import re
import warnings
import zipfile
from pathlib import Path

import pandas as pd

from .errors import FileFormatError

EXCEL_SUFFIXES = (".xlsx", ".xlsm")
_ZIP_MAGIC = b"PK\x03\x04"
_FIELDS = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")
_OPEN_QUOTE = re.compile(r"EOF inside string starting at row (\d+)")


def read_sheet(path: str | Path, what: str = "file") -> pd.DataFrame:
    """The rows of a CSV or Excel file as text columns; ``what`` names the file in messages ("activity file")."""
    p = Path(path)
    if not p.is_file():
        raise FileFormatError(f"{p}: no such {what}")
    with p.open("rb") as fh:
        workbook = p.suffix.lower() in EXCEL_SUFFIXES or fh.read(4) == _ZIP_MAGIC  # an .xlsx named .csv too
    df = _read_excel(p, what) if workbook else _read_csv(p, what)
    df.columns = [str(c).strip().lower() for c in df.columns]
    return df


def _read_excel(p: Path, what: str) -> pd.DataFrame:
    try:
        return pd.read_excel(p, dtype=str, keep_default_na=False, engine="openpyxl")
    except (zipfile.BadZipFile, ValueError, KeyError, OSError) as exc:
        raise FileFormatError(
            f"{p}: not an Excel workbook (.xlsx) that can be read ({type(exc).__name__}); save the {what} again "
            "from Excel as .xlsx, or as CSV UTF-8"
        ) from None


def _read_csv(p: Path, what: str) -> pd.DataFrame:
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", pd.errors.ParserWarning)
            # index_col=False: rows with one value more than the header would otherwise turn their first
            # column into the index, silently shifting every value one column to the left.
            df = pd.read_csv(p, dtype=str, keep_default_na=False, encoding="utf-8-sig", index_col=False)
        if any(issubclass(w.category, pd.errors.ParserWarning) for w in caught):
            raise FileFormatError(f"{p}, {_long_row(p)}")
        return df
    except UnicodeDecodeError as exc:
        line = p.read_bytes()[: exc.start].count(b"\n") + 1
        raise FileFormatError(
            f"{p}, line {line}: byte 0x{exc.object[exc.start]:02x} is not UTF-8 text, so this is not a CSV file as "
            f"expected; save the {what} as 'CSV UTF-8' (or as .xlsx)"
        ) from None
    except pd.errors.EmptyDataError:
        raise FileFormatError(f"{p}: the {what} is empty (not even a header line)") from None
    except pd.errors.ParserError as exc:
        raise FileFormatError(f"{p}, {_parser_problem(str(exc))}") from None


def _long_row(p: Path) -> str:
    """Where a row has more values than the header, found by reading the file as CSV again."""
    with p.open(newline="", encoding="utf-8-sig") as fh:
        rows = csv.reader(fh)
        header = next(rows, [])
        for row in rows:
            if len(row) > len(header):
                return (f"line {rows.line_num}: {len(row)} values where the header has {len(header)}; a value that "
                        'contains a comma must be quoted ("like, this")')
    return "a row has more values than the header"


def _parser_problem(message: str) -> str:
    """pandas' C-parser message in the user's terms, with the line of the file."""
    fields = _FIELDS.search(message)
    if fields:
        expected, line, saw = fields.groups()
        return (f"line {line}: {saw} values where the header has {expected}; a value that contains a comma must "
                'be quoted ("like, this")')
    quote = _OPEN_QUOTE.search(message)
    if quote:
        line = int(quote.group(1)) + 1  # pandas counts rows from 0, the header being row 0
        return f'line {line}: a quote (") opens a value that is never closed; close it or remove it'
    return f"not a readable CSV file: {message.splitlines()[-1].strip() if message.strip() else 'parse error'}"
