"""The dashboard service's Voila: a preheated kernel may wait for its viewer longer than the cell timeout."""

from __future__ import annotations

import nbformat
import pytest

from scope3lib import paths
from scope3lib.hub import dashboard


def test_only_the_wait_for_viewer_cell_is_exempt_from_the_cell_timeout() -> None:
    nb = nbformat.read(str(paths.notebooks() / "dashboards" / "executive.ipynb"), as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    waiting = [c for c in code if dashboard.cell_timeout(c) is None]
    assert len(waiting) == 1 and "wait_for_viewer()" in waiting[0].source
    # The data is read after the wait (for the viewer, not at preheat time) and under the timeout.
    assert "connect(" not in waiting[0].source
    assert code.index(waiting[0]) == 0
    assert all(dashboard.cell_timeout(c) == dashboard.CELL_TIMEOUT_S for c in code[1:])
    assert any("connect(" in c.source for c in code[1:])


def test_dashboard_voila_gives_every_executor_the_timeout_function() -> None:
    nb = paths.notebooks() / "dashboards" / "executive.ipynb"
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


def test_the_service_voila_makes_sliced_poll_kernel_clients_of_forked_kernels() -> None:
    from scope3lib.hub.kernel_client import SlicedPollKernelClient

    nb = paths.notebooks() / "dashboards" / "executive.ipynb"
    argv = [a for a in dashboard.voila_command(nb, 0, 0)[3:] if not a.startswith(("--Voila.identity_provider",
                                                                                   "--Voila.authorizer"))]
    app = dashboard.DashboardVoila()
    try:
        app.initialize(argv)
        app.init_settings()
        km = app.kernel_manager
        assert isinstance(km.kernel_manager_factory(parent=km).client(), SlicedPollKernelClient)
        # and whose page kernels are forked from the zygote (tests/test_forkserver.py, tests/test_hub.py)
        from scope3lib.hub.fork_provisioner import ForkingKernelManager

        assert isinstance(km.kernel_manager_factory(parent=km), ForkingKernelManager)
    finally:
        dashboard.DashboardVoila.clear_instance()


def test_request_info_socket_is_the_waiting_kernels_alone() -> None:
    """Voila's voila/query socket: not through the proxy, one waiter per kernel, a socket removes only itself."""
    import asyncio

    from tornado.httpclient import HTTPClientError, HTTPRequest
    from tornado.web import Application
    from tornado.websocket import websocket_connect
    from voila.request_info_handler import RequestInfoSocketHandler

    from scope3lib.meters.broker import free_port

    async def scenario() -> None:
        port = free_port()
        server = Application([(r"/voila/query/(.+)", dashboard.KernelRequestInfoHandler)]).listen(port, "127.0.0.1")
        url = f"ws://127.0.0.1:{port}/voila/query/"
        try:
            kernel = await websocket_connect(url + "kernel-k")  # the pool kernel, waiting
            with pytest.raises(HTTPClientError) as refused:  # a browser, through the hub's proxy
                await websocket_connect(HTTPRequest(url + "kernel-k", headers={"X-Forwarded-For": "10.0.0.9"}))
            assert refused.value.code == 403
            second = await websocket_connect(url + "kernel-k")  # a second socket for the same kernel
            assert await second.read_message() is None  # closed at once
            a = await websocket_connect(url + "made-up")
            b = await websocket_connect(url + "made-up")
            b.close()
            a.close()
            await asyncio.sleep(0.3)
            # The waiting kernel still hears of its viewer.
            RequestInfoSocketHandler.send_updates({"kernel_id": "kernel-k", "payload": '{"X": "1"}'})
            assert await asyncio.wait_for(kernel.read_message(), 5) == '{"X": "1"}'
            kernel.close()
        finally:
            server.stop()

    asyncio.run(scenario())


def test_a_pages_cull_window_starts_when_its_html_is_sent_not_when_its_kernel_is_handed_out() -> None:
    """A page slower to render than the cull window (no browser can connect before its HTML arrives) is not shut
    down while rendering; once sent, it is culled after the window without a browser, and a browser that
    connects restarts the window."""
    now = [0.0]
    pages = dashboard.DisconnectedPages(10, clock=lambda: now[0])
    for now[0] in (0.0, 5.0, 11.0, 24.0):  # handed out at 0, rendering for 25 s
        assert pages.expired({"slow": 0}) == [], now
    now[0] = 25.0
    pages.sent({"slow"})
    for now[0] in (25.0, 30.0, 34.9):
        assert pages.expired({"slow": 0}) == [], now
    now[0] = 35.0
    assert pages.expired({"slow": 0}) == ["slow"]

    pages.sent({"open"})  # at 35; its browser connects at 36 and leaves at 50
    now[0] = 36.0
    assert pages.expired({"open": 1}) == []
    for now[0] in (50.0, 59.0):
        assert pages.expired({"open": 0}) == [], now
    now[0] = 60.0
    assert pages.expired({"open": 0}) == ["open"]
    assert pages.expired({}) == [] and pages.sent_at == {}  # a kernel gone is forgotten

