"""A kernel client that cannot sleep through a message: the fix for dashboard pages that hung.

What happened: one Voila page in five to ten (more under concurrent renders) stayed open until
``VoilaExecutor.timeout`` and then completed normally, with every output in place. The kernel had
answered at once; the executor had not noticed. nbclient waits for the ``execute_reply`` with
``await shell_channel.get_msg(timeout)``, which is a pyzmq asyncio ``poll`` on the shell socket. That
poll wakes on the socket's file descriptor, which ZeroMQ signals edge-triggered; when the edge is
consumed elsewhere (the same socket sent the next request, or a second reader polled it), the reply
sits in the socket and nothing wakes the waiter. pyzmq re-checks with a synchronous ``zmq_poll`` only
when the timeout fires, which is why every stalled page ended exactly at the executor's timeout (90 s
in the hub, 30 s in a run with ``--VoilaExecutor.timeout=30``) and was then complete. The same can
happen on the IOPub socket, where nbclient waits with no timeout at all and, once the reply is in,
gives the outputs 4 s before dropping the rest with a warning. Upstream: voila-dashboards/voila#1428
and jupyter/jupyter_client#1010 (open).

The fix: wait in short slices. Each slice ends with pyzmq's synchronous re-check, so a lost wake-up
costs at most :data:`POLL_SLICE_S` instead of the whole timeout, and a message that is there is never
waited on for longer. Installed for every kernel the dashboard's Voila starts through
``--KernelManager.client_factory`` (see :func:`scope3lib.hub.dashboard.voila_command`).
"""

from __future__ import annotations

import time
from queue import Empty
from typing import Any

from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.channels import AsyncZMQSocketChannel
from traitlets import Type

# A lost wake-up costs at most this; an idle wait costs one timer per slice.
POLL_SLICE_S = 0.2


class SlicedPollChannel(AsyncZMQSocketChannel):
    """An asyncio ZMQ channel whose ``get_msg`` polls in slices of :data:`POLL_SLICE_S`."""

    async def get_msg(self, timeout: float | None = None) -> dict[str, Any]:  # type: ignore[override]
        """The next message; waits up to ``timeout`` seconds (None: for ever), raises ``queue.Empty``."""
        assert self.socket is not None
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            wait = POLL_SLICE_S if deadline is None else min(POLL_SLICE_S, deadline - time.monotonic())
            # pyzmq answers a poll that times out with a synchronous zmq_poll(0): the re-check that
            # finds a message whose wake-up was lost.
            if await self.socket.poll(max(int(wait * 1000), 1)):
                return await self._recv()
            if deadline is not None and time.monotonic() >= deadline:
                raise Empty


class SlicedPollKernelClient(AsyncKernelClient):
    """``AsyncKernelClient`` with :class:`SlicedPollChannel` for the shell, IOPub, stdin and control."""

    shell_channel_class = Type(SlicedPollChannel)
    iopub_channel_class = Type(SlicedPollChannel)
    stdin_channel_class = Type(SlicedPollChannel)
    control_channel_class = Type(SlicedPollChannel)
