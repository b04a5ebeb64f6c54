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
import sys
import time
from pathlib import Path
from typing import Any

from jupyter_server.services.kernels.connection.channels import ZMQChannelsWebsocketConnection
from jupyterhub.singleuser.extension import JupyterHubIdentityProvider
from jupyterhub.utils import url_path_join
from tornado import web
from voila.app import Voila
from voila.tornado.handler import TornadoVoilaHandler

# What a widgets page legitimately sends to its kernel.
ALLOWED_MSG_TYPES = frozenset({"comm_msg", "comm_open", "comm_close", "comm_info_request", "kernel_info_request"})
V1_PROTOCOL = "v1.kernel.websocket.jupyter.org"


class HubIdentityProvider(JupyterHubIdentityProvider):
    """JupyterHub OAuth for standalone Voila, whose handlers are mounted under the service prefix."""

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

    The dashboard notebook stops at :func:`scope3lib.executive.wait_for_viewer` in a pool kernel, so a
    started pool kernel has done its imports and reads the data for the viewer who takes it.
    """

    @web.authenticated
    async def get(self, path: str | None = None) -> None:
        manager = self.kernel_manager
        if self.voila_configuration.preheat_kernel and hasattr(manager, "_pools"):
            deadline = time.monotonic() + POOL_WAIT_S
            while not _first_ready(manager._pools.get(self.notebook_path, [])) and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
        # No await between the check above and Voila taking the kernel: the pop cannot race.
        await super().get(path)


def _first_ready(pool: list[Any]) -> bool:
    """The kernel Voila takes next (the pool's first) has started and its notebook has not failed."""
    if not pool or not pool[0].done() or pool[0].exception() is not None:
        return False
    task = pool[0].result().get("task")
    return task is None or not task.done() or (not task.cancelled() and task.exception() is None)


POOL_WAIT_S = 120


# A cell that never answers ends the page with an error instead of holding it open for ever.
CELL_TIMEOUT_S = 90
# The dashboard notebook's cell that waits for a viewer in a preheated kernel carries this tag: it may
# wait for hours, so the cell timeout does not apply to it (it would end every pool kernel idle longer
# than the timeout with a timed-out page).
WAIT_TAG = "wait-for-viewer"


def cell_timeout(cell: Any, limit: int = CELL_TIMEOUT_S) -> int | None:
    """``VoilaExecutor.timeout_func``: no limit for the cell waiting for a viewer, ``limit`` otherwise."""
    return None if WAIT_TAG in cell.get("metadata", {}).get("tags", []) else limit


class DashboardVoila(Voila):
    """Standalone Voila that answers 403 on server APIs before its catch-all notebook handler, and
    does not time out a preheated kernel's wait for its viewer."""

    def initialize(self, argv: Any = None) -> None:
        super().initialize(argv)
        # Every VoilaExecutor is made with this application's config; a callable cannot come from the
        # command line.
        limit = int(self.config.VoilaExecutor.get("timeout", CELL_TIMEOUT_S))
        self.config.VoilaExecutor.timeout_func = functools.partial(cell_timeout, limit=limit)

    def init_handlers(self) -> list[Any]:
        forbidden = (url_path_join(self.server_url, FORBIDDEN_PATHS), ForbiddenHandler)
        handlers = [
            (h[0], PooledVoilaHandler, *h[2:]) if len(h) > 1 and h[1] is TornadoVoilaHandler else h
            for h in super().init_handlers()
        ]
        return [forbidden, *handlers]


def main() -> None:
    DashboardVoila.launch_instance()


def voila_command(notebook: Path, port: int, pool_size: int, cell_timeout_s: int = CELL_TIMEOUT_S) -> list[str]:
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
        f"--VoilaExecutor.timeout={cell_timeout_s}",  # see cell_timeout
        # Without it one page in ten waited out that timeout (scope3lib.hub.kernel_client says why).
        "--KernelManager.client_factory=scope3lib.hub.kernel_client.SlicedPollKernelClient",
    ]


if __name__ == "__main__":
    main()
