"""The dashboard service's Voila: a preheated kernel may wait for its viewer longer than the cell timeout."""

from __future__ import annotations

import nbformat

from scope3lib.hub import dashboard
from scope3lib.hub.config import NOTEBOOKS


def test_only_the_wait_for_viewer_cell_is_exempt_from_the_cell_timeout() -> None:
    nb = nbformat.read(str(NOTEBOOKS / "dashboards" / "executive.ipynb"), as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    waiting = [c for c in code if dashboard.cell_timeout(c) is None]
    assert len(waiting) == 1 and "wait_for_viewer()" in waiting[0].source
    # The data is read after the wait (for the viewer, not at preheat time) and under the timeout.
    assert "connect(" not in waiting[0].source
    assert code.index(waiting[0]) == 0
    assert all(dashboard.cell_timeout(c) == dashboard.CELL_TIMEOUT_S for c in code[1:])
    assert any("connect(" in c.source for c in code[1:])


def test_dashboard_voila_gives_every_executor_the_timeout_function() -> None:
    nb = NOTEBOOKS / "dashboards" / "executive.ipynb"
    app = dashboard.DashboardVoila()
    try:
        app.initialize([str(nb), "--no-browser", "--port=0", "--VoilaExecutor.timeout=42"])
        from voila.execute import VoilaExecutor

        executor = VoilaExecutor(nbformat.v4.new_notebook(), config=app.config)
        assert executor.timeout_func is not None
        cells = nbformat.read(str(nb), as_version=4).cells
        assert [executor.timeout_func(c) for c in cells if c.cell_type == "code"] == [None, 42]
    finally:
        dashboard.DashboardVoila.clear_instance()
