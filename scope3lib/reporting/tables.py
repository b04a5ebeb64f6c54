"""Tables as people read them: labelled columns, numbers right-aligned with thousands separators and the
precision their unit deserves, words instead of codes, a dash for what is missing; one look everywhere."""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping

import pandas as pd

#: The look of every table of the dashboard and the reports (given once per page by :func:`style`).
#: The doubled class outranks JupyterLab's rules for rendered HTML (``:not(.jp-RenderedMarkdown).jp-RenderedHTMLCommon
#: th``, which right-align every cell and stripe rows) and the widgets' 28 px line height, so a table reads the same in
#: a plain output (the dashboard's first view, a report) and in a widget (the dashboard after a redraw).
CSS = """
table.s3 { border-collapse: collapse; margin: 6px 0 12px; font-size: 13px; }
table.s3.s3 th, table.s3.s3 td { text-align: left; vertical-align: top; line-height: 1.4; white-space: normal; }
table.s3 th { padding: 4px 12px 4px 0; border-bottom: 1px solid #bbb; font-weight: 600; }
table.s3 td { padding: 3px 12px 3px 0; border-bottom: 1px solid #eee; }
table.s3.s3 th.num, table.s3.s3 td.num { text-align: right; }
table.s3.s3 tbody tr:nth-child(odd) { background: transparent; }
table.s3.s3 tbody tr:nth-child(even) { background: #f5f5f5; }
"""

Format = str | Callable[[object], str]

# Common formats: tonnes to one decimal, money without decimals, shares as whole percentages.
TONNES = "{:,.1f}"
KG = "{:,.0f}"
MONEY = "{:,.0f}"
SHARE = "{:.0%}"
QUALITY = "{:.1f}"


def style() -> str:
    return f"<style>{CSS}</style>"


def _cell(value: object, fmt: Format | None) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NA:
        return "-"
    if fmt is None:
        return str(value)
    return fmt(value) if callable(fmt) else fmt.format(value)


def html_table(frame: pd.DataFrame, columns: Mapping[str, str], formats: Mapping[str, Format] | None = None,
               css_class: str = "") -> str:
    """``frame``'s ``columns`` (name -> heading, in that order) as an HTML table; columns with a format are
    numbers (right-aligned). Cells are escaped."""
    formats = formats or {}
    head = "".join(f"<th class='{'num' if c in formats else ''}'>{html.escape(h)}</th>" for c, h in columns.items())
    rows = []
    for record in frame[list(columns)].itertuples(index=False, name=None):
        cells = "".join(f"<td class='{'num' if c in formats else ''}'>{html.escape(_cell(v, formats.get(c)))}</td>"
                        for c, v in zip(columns, record, strict=True))
        rows.append(f"<tr>{cells}</tr>")
    return f"<table class='s3 {css_class}'><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
