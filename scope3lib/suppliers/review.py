"""The analyst's review of an ERP extract in a notebook (``notebooks/analyst/onboarding.ipynb``), with widgets.

Two lists, largest spend first: lines no rule classifies, each with its ranked sector suggestions, and
vendors no supplier matched, each with its candidate suppliers. The analyst picks, and presses
*Confirm*: a sector becomes a classification rule (for the vendor, its GL account or a keyword of its
description) and a supplier an alias, through :func:`.spend.confirm_sector` and
:func:`.spend.confirm_match`; the open months they change are re-priced at once.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from sqlalchemy.engine import Engine

from ..categories import CATEGORIES, Method
from ..errors import Scope3Error
from . import spend
from .classification import default_category
from .coverage import coverage

#: The categories a spend line may go into (those with a spend-based method).
SPEND_CATEGORIES = [(f"{n} {c.name}", n) for n, c in CATEGORIES.items() if Method.SPEND_BASED in c.methods]


def rule_for(row: pd.Series, kind: str) -> str:
    """The pattern a confirmation of ``row`` (of :func:`.spend.unclassified`) makes a rule of, by ``kind``."""
    if kind == "vendor":
        return str(row["vendor_key"])
    if kind == "gl_account":
        if not row["gl_account"]:
            raise Scope3Error("this line has no GL account; confirm it for the vendor or a keyword instead")
        return str(row["gl_account"])
    words = [w for w in str(row["description"]).lower().split() if len(w) > 3]
    if not words:
        raise Scope3Error("the line's description has no word to make a keyword rule of")
    return max(words, key=len)


class OnboardingReview:
    """Widgets over a tenant's unclassified lines and unmatched vendors; ``show()`` displays them."""

    def __init__(self, engine: Engine, limit: int = 20) -> None:
        self.engine = engine
        self.limit = limit

    def _row_widget(self, row: pd.Series, out: Any) -> Any:
        import ipywidgets as w

        options = [(f"{code} {title} ({score:.2f})", code) for code, title, score in row["suggestions"]]
        sector = w.Dropdown(options=options or [("no suggestion: type a NAICS code", "")], layout={"width": "34em"})
        typed = w.Text(placeholder="or a NAICS code", layout={"width": "9em"})
        first = options[0][1] if options else ""
        category = w.Dropdown(options=SPEND_CATEGORIES, value=default_category(first) if first else 1,
                              layout={"width": "20em"})
        kind = w.Dropdown(options=[("for this vendor", "vendor"), ("for its GL account", "gl_account"),
                                   ("for a keyword", "keyword")], layout={"width": "12em"})
        button = w.Button(description="Confirm", button_style="primary")

        def confirm(_: object) -> None:
            with out:
                try:
                    naics = typed.value.strip() or sector.value
                    rule = spend.confirm_sector(self.engine, kind.value, rule_for(row, kind.value), category.value,
                                                naics)
                    print(f"rule {rule}: {row['vendor_name']} -> {naics}, category {category.value}")
                    button.disabled = True
                except Scope3Error as exc:
                    print(f"not confirmed: {exc}")

        button.on_click(confirm)
        label = w.HTML(f"<b>{row['vendor_name'] or row['vendor_key']}</b> {row['description']} "
                       f"({row['lines']} lines, {row['spend_usd']:,.0f} USD)")
        return w.VBox([label, w.HBox([sector, typed, category, kind, button])])

    def _vendor_widget(self, row: pd.Series, out: Any) -> Any:
        import ipywidgets as w

        options = [(f"{name} ({score:.2f})", sid) for sid, name, score in row["candidates"]]
        pick = w.Dropdown(options=options or [("no candidate", None)], layout={"width": "30em"})
        button = w.Button(description="Match", button_style="primary", disabled=not options)

        def confirm(_: object) -> None:
            with out:
                try:
                    sid = spend.confirm_match(self.engine, str(row["vendor_key"]), int(pick.value))
                    print(f"{row['vendor_name']} matched to supplier {sid}")
                    button.disabled = True
                except Scope3Error as exc:
                    print(f"not matched: {exc}")

        button.on_click(confirm)
        label = w.HTML(f"<b>{row['vendor_name'] or row['vendor_key']}</b> ({row['lines']} lines, "
                       f"{row['spend_usd']:,.0f} USD)")
        return w.HBox([label, pick, button])

    def widget(self) -> Any:
        import ipywidgets as w

        out = w.Output()
        todo = spend.unclassified(self.engine, self.limit)
        vendors = spend.unmatched(self.engine, self.limit)
        parts: list[Any] = [w.HTML(f"<p>{coverage(self.engine).sentence()}</p>"),
                            w.HTML(f"<h3>Unclassified ({len(todo)} shown, largest spend first)</h3>")]
        parts += [self._row_widget(r, out) for _, r in todo.iterrows()] or [w.HTML("Every line is classified.")]
        parts.append(w.HTML(f"<h3>Unmatched vendors ({len(vendors)} shown)</h3>"))
        parts += [self._vendor_widget(r, out) for _, r in vendors.iterrows()] or [w.HTML("Every vendor is matched.")]
        return w.VBox([*parts, out])

    def show(self) -> None:
        from IPython.display import display

        display(self.widget())
