"""Supplier engagement: the data requests by status, what waits for a second user's approval, and what approvals
have brought (:mod:`scope3lib.engagement`)."""

from __future__ import annotations

import pandas as pd

from ... import db
from ..tables import html_table
from . import Panel, PanelContext, code, empty_panel, note, register

TITLE = "Supplier engagement"
_STATUSES = ("sent", "overdue", "answered", "rejected")


def _counts(ctx: PanelContext) -> pd.DataFrame:
    # The stored status, with requests past due shown overdue (the dashboard's read-only role does not write).
    return db.read_frame(ctx.engine, """
        SELECT s.status, count(*) AS requests FROM (
            SELECT CASE WHEN status = 'sent' AND due_date < current_date THEN 'overdue' ELSE status END AS status
              FROM data_requests) s GROUP BY s.status""")


@register("engagement", TITLE, scope="tenant", order=87)
def engagement_panel(ctx: PanelContext) -> Panel:
    counts = _counts(ctx)
    if counts.empty:
        command = f"scope3 engage request {ctx.slug or 'SLUG'} SUPPLIER --product ID --due DATE"
        return empty_panel("engagement", "No data request sent to a supplier yet: the engagement lead asks for "
                                         f"product footprints with {code(command)}.")
    by = counts.set_index("status")["requests"].reindex(list(_STATUSES), fill_value=0)
    subs = db.read_frame(ctx.engine, "SELECT status, count(*) AS n FROM supplier_submissions GROUP BY status")
    n = dict(zip(subs["status"], subs["n"], strict=True))
    table = by.rename_axis("status").reset_index()
    text = (f"{int(by.sum())} data requests: {int(by['sent'])} sent, {int(by['overdue'])} overdue, "
            f"{int(by['answered'])} answered, {int(by['rejected'])} rejected. Submissions: {n.get('pending', 0)} "
            f"waiting for a second user's approval, {n.get('approved', 0)} approved (priced as supplier-specific "
            f"data), {n.get('rejected', 0)} rejected.")
    return Panel("engagement", TITLE, (note(text, "color:#222"),
                                       html_table(table, {"status": "Status", "requests": "Requests"},
                                                  {"requests": "{:,}"}, "engagement")), "ok",
                 table.assign(pending=n.get("pending", 0), approved=n.get("approved", 0)))
