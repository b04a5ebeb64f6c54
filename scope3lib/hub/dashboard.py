"""The executive dashboard: standalone Voila as a hub-managed service, read-only and behind the hub's OAuth.

Two pieces make Voila safe for viewers:

* :class:`HubIdentityProvider` makes standalone Voila log users in through the hub's OAuth and admit
  only those with ``access:services!service=dashboard``.
* :class:`ReadOnlyKernelConnection` lets through only the kernel messages widgets need (comm messages
  and kernel info). Voila itself forwards any message a browser sends on the kernel websocket,
  including ``execute_request``; without this a viewer could run code in the dashboard's kernel.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jupyter_core.paths import jupyter_runtime_dir
from jupyter_server.services.kernels.connection.channels import ZMQChannelsWebsocketConnection
from jupyterhub.singleuser.extension import JupyterHubIdentityProvider
from jupyterhub.utils import url_path_join
from tornado import web
from tornado.ioloop import PeriodicCallback
from traitlets import Bool, Integer
from voila.app import Voila
from voila.request_info_handler import RequestInfoSocketHandler
from voila.tornado.handler import TornadoVoilaHandler

from . import forkserver

# What a widgets page legitimately sends to its kernel.
ALLOWED_MSG_TYPES = frozenset({"comm_msg", "comm_open", "comm_close", "comm_info_request", "kernel_info_request"})
V1_PROTOCOL = "v1.kernel.websocket.jupyter.org"


class HubIdentityProvider(JupyterHubIdentityProvider):
    """JupyterHub OAuth for standalone Voila, whose handlers are mounted under the service prefix."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.pop("token", None)  # standalone Voila passes its own token, which hub OAuth does not use
        super().__init__(**kwargs)

    def get_handlers(self) -> list[tuple[Any, ...]]:
        prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/")
        return [(url_path_join(prefix, path), *rest) for path, *rest in super().get_handlers()]


def _msg_type(connection: ZMQChannelsWebsocketConnection, ws_msg: str | bytes) -> tuple[str | None, str | None]:
    """(channel, msg_type) of a browser message, in either websocket protocol."""
    try:
        if connection.subprotocol == V1_PROTOCOL:
            from jupyter_server.services.kernels.connection.base import deserialize_msg_from_ws_v1

            channel, parts = deserialize_msg_from_ws_v1(ws_msg)
            return channel, json.loads(parts[0]).get("msg_type")
        msg = json.loads(ws_msg)
        return msg.get("channel"), msg.get("header", {}).get("msg_type")
    except Exception:  # a malformed frame is refused like a forbidden one
        return None, None


class ReadOnlyKernelConnection(ZMQChannelsWebsocketConnection):
    """Drops every browser-to-kernel message but those widgets need: no code runs on a viewer's behalf."""

    def handle_incoming_message(self, incoming_msg: str) -> None:
        channel, msg_type = _msg_type(self, incoming_msg)
        if channel not in ("shell", "control") or msg_type not in ALLOWED_MSG_TYPES:
            self.log.warning("dashboard: refused %s message on channel %s from the browser", msg_type, channel)
            return
        super().handle_incoming_message(incoming_msg)


class KernelRequestInfoHandler(RequestInfoSocketHandler):
    """Voila's ``voila/query/<kernel id>`` websocket, on which a preheated kernel waits for its viewer,
    open to that kernel only.

    Voila's handler has no login check and, closing a socket it does not hold, drops whichever kernel's
    entry it last looked at: two sockets for a made-up id, closed in reverse order, left a pool kernel
    waiting for ever for a viewer it would never hear of. Here a connection that came through the
    hub's proxy (which adds ``X-Forwarded-For``) is refused, a second socket for a kernel already
    waiting is refused, and a socket removes only its own entry.
    """

    async def get(self, *args: Any, **kwargs: Any) -> None:
        if self.request.headers.get("X-Forwarded-For"):
            raise web.HTTPError(403, "only the dashboard's kernels wait here")
        await super().get(*args, **kwargs)

    def open(self, kernel_id: str) -> None:
        waiting = RequestInfoSocketHandler._waiters.get(kernel_id)
        if waiting is not None and waiting is not self:
            self.close(1008, "a socket already waits for this kernel")
            return
        super().open(kernel_id)

    def on_close(self) -> None:
        for kernel_id, waiter in list(RequestInfoSocketHandler._waiters.items()):
            if waiter is self:
                del RequestInfoSocketHandler._waiters[kernel_id]


class ForbiddenHandler(web.RequestHandler):
    """403 for every server API a dashboard viewer has no business with."""

    def prepare(self) -> None:
        raise web.HTTPError(403, "the dashboard is read-only")


# Paths under the service prefix that Voila would otherwise route to its catch-all notebook handler
# (or that a Jupyter server would serve): kernels listing and starting, contents, sessions,
# terminals, JupyterLab. The page's own kernel websocket (api/kernels/<id>/channels) stays open.
FORBIDDEN_PATHS = (
    r"/(api/kernels/?|api/(contents|sessions|terminals|kernelspecs|config|nbconvert)(/.*)?"
    r"|(lab|tree|terminals|edit|notebooks)(/.*)?)$"
)


class PooledVoilaHandler(TornadoVoilaHandler):
    """Serves a page from a preheated kernel once it has started, waiting for one rather than starting a
    kernel of its own when the pool is momentarily empty (right after start, or under a burst of views).

    The dashboard notebook stops at :func:`scope3lib.reporting.executive.wait_for_viewer` in a pool kernel, so the
    data is read for the viewer who takes it (the kernel may still be importing when taken). A pool
    kernel that failed to start or to run its first cell is discarded and replaced, never served.
    """

    waiting = 0  # pages of this service waiting for a pool kernel now

    @web.authenticated
    async def get(self, path: str | None = None) -> None:
        manager = self.kernel_manager
        app: DashboardVoila = self.settings["voila"]
        busy = app.page_limits.refusal(manager, self.current_user.username)
        if busy is not None:
            self._busy(*busy)
            return
        if self.voila_configuration.preheat_kernel and hasattr(manager, "_pools"):
            deadline = time.monotonic() + POOL_WAIT_S
            PooledVoilaHandler.waiting += 1
            try:
                while time.monotonic() < deadline:
                    pool = manager._pools.get(self.notebook_path, [])
                    state = _pool_head(pool)
                    if state == "ready":
                        break
                    if state == "failed":
                        await _replace_failed(manager, pool, self.notebook_path, self.log)
                    await asyncio.sleep(0.05)
            finally:
                PooledVoilaHandler.waiting -= 1
            manager.fill_delay = 0 if PooledVoilaHandler.waiting else POOL_REFILL_DELAY_S
        # No await between the check above and Voila taking the kernel: the pop cannot race.
        before = set(manager.list_kernel_ids())
        taken = _pool_kernel_id(manager, self.notebook_path)
        try:
            await super().get(path)
        finally:
            started = set(manager.list_kernel_ids()) - before
            app.page_limits.taken(self.current_user.username, taken, started)
            # The cull window of a page starts now, with its HTML sent (or its rendering failed): not when its
            # kernel was handed out, or a page slower than the window would be shut down while rendering.
            app.disconnected.sent(({taken} if taken else set()) | started)

    def _busy(self, status: int, message: str) -> None:
        """A short page in the viewer's words instead of a kernel (and a Retry-After for scripts)."""
        self.set_status(status)
        self.set_header("Retry-After", "60")
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(f"<!doctype html><title>Dashboard busy</title><body style='font-family:sans-serif;margin:3em'>"
                    f"<h2>The dashboard is busy</h2><p>{message}</p></body>")


def _pool_kernel_id(manager: Any, notebook: str) -> str | None:
    """The kernel the next page takes from the pool (None when it will start one of its own)."""
    pool = getattr(manager, "_pools", {}).get(notebook, [])
    if _pool_head(pool) != "ready":
        return None
    kernel_id = pool[0].result().get("kernel_id")
    return None if kernel_id is None else str(kernel_id)


def _pool_kernel_ids(manager: Any) -> set[str]:
    ids = set()
    for pool in getattr(manager, "_pools", {}).values():
        for item in pool:
            if item.done() and not item.cancelled() and item.exception() is None and item.result().get("kernel_id"):
                ids.add(str(item.result()["kernel_id"]))
    return ids


class PageLimits:
    """How many page kernels (besides the preheated ones) the dashboard holds, in all and per viewer.

    Kernels are counted from the kernel manager each time, so a page whose kernel was culled or shut down
    no longer counts; who opened which page is remembered from the kernel each page took.
    """

    def __init__(self, max_pages: int, per_viewer: int) -> None:
        self.max_pages, self.per_viewer = max_pages, per_viewer
        self.owners: dict[str, str] = {}

    def refusal(self, manager: Any, viewer: str) -> tuple[int, str] | None:
        """(status, message) when ``viewer`` may not open one more page now, else None. A viewer over their own
        limit is told so first: it is theirs to fix, whoever else is looking."""
        pages = set(manager.list_kernel_ids()) - _pool_kernel_ids(manager)
        self.owners = {k: v for k, v in self.owners.items() if k in pages}
        mine = sum(1 for owner in self.owners.values() if owner == viewer)
        if mine >= self.per_viewer:
            return 429, (f"You have {mine} dashboard pages open, the most one person may. Close one of them (or "
                         "wait a few minutes for pages you left to be closed), then reload this page.")
        if len(pages) >= self.max_pages:
            return 503, (f"{len(pages)} dashboard pages are open, the most this hub serves at once. Close dashboard "
                         "tabs you no longer need, or try again in a minute (pages left idle are closed after a "
                         "few minutes).")
        return None

    def taken(self, viewer: str, pooled: str | None, started: set[str]) -> None:
        for kernel_id in ({pooled} if pooled else set()) | started:
            self.owners[kernel_id] = viewer


def _pool_head(pool: list[Any]) -> str:
    """State of the kernel Voila takes next (the pool's first): ``empty``, ``starting``, ``ready`` or ``failed``."""
    if not pool:
        return "empty"
    head = pool[0]
    if not head.done():
        return "starting"
    if head.cancelled() or head.exception() is not None:
        return "failed"
    task = head.result().get("task")
    if task is not None and task.done() and (task.cancelled() or task.exception() is not None):
        return "failed"
    return "ready"


async def _replace_failed(manager: Any, pool: list[Any], notebook: str, log: Any) -> None:
    """Drop the failed head of the pool (shutting its kernel down) and start a replacement."""
    head = pool.pop(0)
    kernel_id = None if head.cancelled() or head.exception() is not None else head.result().get("kernel_id")
    log.warning("dashboard: discarding a pool kernel that failed (%s)", kernel_id or "did not start")
    if kernel_id is not None and kernel_id in manager:
        try:
            await manager.shutdown_kernel(kernel_id, now=True)
        except Exception:  # already gone: nothing to free
            log.debug("dashboard: kernel %s already gone", kernel_id, exc_info=True)
    manager.fill_if_needed(delay=0, notebook_name=notebook)


POOL_WAIT_S = 120
# How long after a page takes the pool's kernel its replacement starts, when no other page waits for one: the page's
# HTML is sent by then (about 0.3 s on the demo tenant), so the new kernel's start does not slow it down. With
# pages waiting, the replacement starts at once: a forked kernel that finds the page's data read ahead by the
# zygote is ready within about half a second, so a burst of viewers is served that often, not every 1.5 s.
POOL_REFILL_DELAY_S = 0.5
FORKING_KERNEL_MANAGER = "scope3lib.hub.fork_provisioner.ForkingKernelManager"
# scope3lib.reporting.tenant_cache.ENV (not imported: pandas and plotly have no business in the server process).
PANEL_CACHE_ENV = "SCOPE3_DASHBOARD_CACHE_DIR"
# How often the refresher compares the data version with the cached panels', and how often Voila checks it runs.
REFRESH_EVERY_S = 10
REFRESHER_CHECK_S = 30


# A cell that never answers ends the page with an error instead of holding it open for ever.
CELL_TIMEOUT_S = 90
# The dashboard notebook's cell that waits for a viewer in a preheated kernel carries this tag: it may
# wait for hours, so the cell timeout does not apply to it (it would end every pool kernel idle longer
# than the timeout with a timed-out page).
WAIT_TAG = "wait-for-viewer"


def cell_timeout(cell: Any, limit: int = CELL_TIMEOUT_S) -> int | None:
    """``VoilaExecutor.timeout_func``: no limit for the cell waiting for a viewer, ``limit`` otherwise."""
    return None if WAIT_TAG in cell.get("metadata", {}).get("tags", []) else limit


class DisconnectedPages:
    """Which page kernels have had no browser connected for ``window_s`` seconds since their page was sent.

    A page's browser connects its websocket once the HTML has arrived, and rendering the HTML may take as long
    as the cell timeout: so a kernel's clock starts when its page has been sent (:meth:`sent`), never when
    the kernel was handed out. A kernel whose page was never sent is not counted (its rendering ends, one way
    or the other, within the cell timeout).
    """

    def __init__(self, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.window_s, self.clock = window_s, clock
        self.since: dict[str, float] = {}
        self.sent_at: dict[str, float] = {}

    def sent(self, kernel_ids: set[str]) -> None:
        """The pages of ``kernel_ids`` have been sent (or failed): their kernels may be culled from now on."""
        now = self.clock()
        for kernel_id in kernel_ids:
            self.sent_at[kernel_id] = now

    def expired(self, connections: dict[str, int]) -> list[str]:
        """Given each page kernel's open websockets now, the kernels disconnected for the whole window."""
        now = self.clock()
        self.sent_at = {k: t for k, t in self.sent_at.items() if k in connections}
        self.since = {k: max(self.since.get(k, now), self.sent_at[k])
                      for k, n in connections.items() if n == 0 and k in self.sent_at}
        return [k for k, t in self.since.items() if now - t >= self.window_s]


class DashboardVoila(Voila):
    """Standalone Voila that answers 403 on server APIs before its catch-all notebook handler, does not time
    out a preheated kernel's wait for its viewer, and bounds the page kernels it holds."""

    max_pages = Integer(8, help="Most page kernels (besides preheated ones) held at once.").tag(config=True)
    max_pages_per_viewer = Integer(3, help="Most page kernels one viewer may hold at once.").tag(config=True)
    fork_kernels = Bool(False, help="Fork page kernels from a preheated process (scope3lib.hub.forkserver).").tag(
        config=True)

    def initialize(self, argv: Any = None) -> None:
        super().initialize(argv)
        self.page_limits = PageLimits(self.max_pages, self.max_pages_per_viewer)
        self.disconnected = DisconnectedPages(int(self.config.MappingKernelManager.get("cull_idle_timeout", 300)))
        # The tenant-wide panels' cache, private to this service's user; kernels inherit the variable.
        os.environ.setdefault(PANEL_CACHE_ENV, str(Path(jupyter_runtime_dir()) / "scope3-dashboard-panels"))
        self.refresher: subprocess.Popen[bytes] | None = None
        # Every VoilaExecutor is made with this application's config; a callable cannot come from the
        # command line.
        limit = int(self.config.VoilaExecutor.get("timeout", CELL_TIMEOUT_S))
        self.config.VoilaExecutor.timeout_func = functools.partial(cell_timeout, limit=limit)
        self.zygote: forkserver.Zygote | None = None
        if self.fork_kernels:
            self.config.MappingKernelManager.kernel_manager_class = FORKING_KERNEL_MANAGER

    def start(self) -> None:
        # The stock culler spares a kernel that is busy sending messages, and an open dashboard sends widget
        # updates every few seconds: so a page whose browser is gone is also shut down here, once it has had no
        # websocket for the cull window, whatever its kernel is doing.
        kernels = self.config.MappingKernelManager
        PeriodicCallback(self._cull_disconnected, 1000 * int(kernels.get("cull_interval", 30))).start()
        self._keep_refresher()
        PeriodicCallback(self._keep_refresher, 1000 * REFRESHER_CHECK_S).start()
        if self.fork_kernels:
            # Before the pool's first kernel starts (in super().start()), which waits for it to have imported.
            self.zygote = forkserver.Zygote()
            self.zygote.start()
            PeriodicCallback(self._keep_zygote, 1000 * REFRESHER_CHECK_S).start()
        super().start()

    def _keep_zygote(self) -> None:
        """Start the zygote again if it ended (meanwhile kernels start as plain processes)."""
        if self.zygote is not None and not self.zygote.running():
            self.log.warning("dashboard: the kernel zygote ended (%s); starting it again",
                             self.zygote.proc and self.zygote.proc.returncode)
            self.zygote.start()

    def _keep_refresher(self) -> None:
        """(Re)start the process that keeps the tenant-wide panels' cache current (a service of a tenant only)."""
        if "SCOPE3_TENANT_DATABASE_URL" not in os.environ or (self.refresher and self.refresher.poll() is None):
            return
        if self.refresher is not None:
            self.log.warning("dashboard: the panel cache refresher ended (%s); starting it again",
                             self.refresher.returncode)
        self.refresher = subprocess.Popen([sys.executable, "-m", "scope3lib.reporting.tenant_cache",
                                           f"--every={REFRESH_EVERY_S}"])

    async def _cull_disconnected(self) -> None:
        manager = self.kernel_manager
        connections = getattr(manager, "_kernel_connections", {})
        pages = set(manager.list_kernel_ids()) - _pool_kernel_ids(manager)
        for kernel_id in self.disconnected.expired({k: connections.get(k, 0) for k in pages}):
            self.log.info("dashboard: shutting down page kernel %s (no browser connected)", kernel_id)
            try:
                await manager.shutdown_kernel(kernel_id, now=True)
            except Exception:  # gone meanwhile (the stock culler, or the page's own shutdown)
                self.log.debug("dashboard: kernel %s already gone", kernel_id, exc_info=True)

    def init_handlers(self) -> list[Any]:
        forbidden = (url_path_join(self.server_url, FORBIDDEN_PATHS), ForbiddenHandler)
        replaced = {TornadoVoilaHandler: PooledVoilaHandler, RequestInfoSocketHandler: KernelRequestInfoHandler}
        handlers = [(h[0], replaced.get(h[1], h[1]), *h[2:]) if len(h) > 1 else h for h in super().init_handlers()]
        return [forbidden, *handlers]


def main() -> None:
    DashboardVoila.launch_instance()


def voila_command(notebook: Path, port: int, pool_size: int, cell_timeout_s: int = CELL_TIMEOUT_S, *,
                  cull_idle_s: int = 300, cull_interval_s: int = 30, max_pages: int = 8,
                  max_pages_per_viewer: int = 3, fork_kernels: bool = True) -> list[str]:
    """Standalone Voila for the hub-managed ``dashboard`` service (preheated kernels need standalone Voila)."""
    prefix = "/services/dashboard/"
    return [
        sys.executable, "-m", "scope3lib.hub.dashboard", str(notebook),
        "--no-browser",
        f"--port={port}",
        "--Voila.ip=127.0.0.1",
        f"--Voila.base_url={prefix}",
        "--Voila.identity_provider_class=scope3lib.hub.dashboard.HubIdentityProvider",
        "--Voila.authorizer_class=jupyterhub.singleuser.extension.JupyterHubAuthorizer",
        "--Voila.kernel_websocket_connection_class=scope3lib.hub.dashboard.ReadOnlyKernelConnection",
        # Viewers see results only: no code cells, no tracebacks.
        "--VoilaConfiguration.strip_sources=True",
        "--VoilaConfiguration.show_tracebacks=False",
        f"--VoilaConfiguration.preheat_kernel={'True' if pool_size > 0 else 'False'}",
        f"--VoilaConfiguration.default_pool_size={max(pool_size, 1)}",
        # When a page has taken the pool's kernel, its replacement starts after POOL_REFILL_DELAY_S (Voila waits 1 s),
        # or at once while other pages wait for one (PooledVoilaHandler).
        f"--VoilaKernelManager.fill_delay={POOL_REFILL_DELAY_S}",
        f"--VoilaExecutor.timeout={cell_timeout_s}",  # see cell_timeout
        # The dashboard draws its charts as SVG (scope3lib.reporting.svg): no page needs plotly's JupyterLab
        # renderer, whose 4.8 MB of plotly.js every page would otherwise fetch (or revalidate) and parse.
        "--VoilaConfiguration.extension_denylist=jupyterlab-plotly",  # a list: the flag once per item
        # Without it one page in ten waited out that timeout (scope3lib.hub.kernel_client says why).
        "--KernelManager.client_factory=scope3lib.hub.kernel_client.SlicedPollKernelClient",
        # Unix sockets in the service user's private runtime directory, not TCP ports any local user can reach.
        "--KernelManager.transport=ipc",
        # A page's kernel lives until its websocket closes: one fetched without it, or a browser closed hard,
        # would keep its memory (over 100 MB) for ever. Kernels with no browser connected are shut down once idle
        # this long (Voila never culls its preheated ones); an open page keeps its kernel.
        f"--MappingKernelManager.cull_idle_timeout={cull_idle_s}",
        f"--MappingKernelManager.cull_interval={cull_interval_s}",
        "--MappingKernelManager.cull_connected=False",
        f"--DashboardVoila.max_pages={max_pages}",
        f"--DashboardVoila.max_pages_per_viewer={max_pages_per_viewer}",
        # Page kernels forked from one process that has imported what a page imports: they start in a fraction
        # of a second and share those imports (hub.md, "Forked page kernels").
        f"--DashboardVoila.fork_kernels={fork_kernels}",
    ]


if __name__ == "__main__":
    main()
