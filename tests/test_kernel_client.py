"""The dashboard's kernel client does not sleep through a message whose wake-up was lost (issue 3).

The scene of the Voila stall, reproduced with two real ZeroMQ sockets: a reply arrives while the client
waits, and before the event loop sees the socket's edge-triggered file descriptor, another reader of the
same socket (here a shadow socket asking for its events) consumes the edge. The stock asyncio channel
then waits out its whole timeout for a message that is already there; the sliced channel finds it
within one slice.
"""

from __future__ import annotations

import asyncio
import time
from queue import Empty
from typing import Any

import pytest
import zmq
import zmq.asyncio
from jupyter_client.channels import AsyncZMQSocketChannel
from jupyter_client.session import Session

from scope3lib.hub.dashboard import voila_command
from scope3lib.hub.kernel_client import POLL_SLICE_S, SlicedPollChannel, SlicedPollKernelClient

TIMEOUT_S = 3.0


async def _reply_with_lost_wakeup(channel_class: type[AsyncZMQSocketChannel]) -> tuple[dict[str, Any], float]:
    ctx = zmq.asyncio.Context()
    client = ctx.socket(zmq.DEALER)
    kernel = ctx.socket(zmq.DEALER)
    try:
        port = client.bind_to_random_port("tcp://127.0.0.1")
        kernel.connect(f"tcp://127.0.0.1:{port}")
        session = Session(key=b"")
        channel = channel_class(client, session)
        await asyncio.sleep(0.2)  # connected
        started = time.monotonic()
        waiting = asyncio.ensure_future(channel.get_msg(timeout=TIMEOUT_S))
        await asyncio.sleep(0.05)  # the client is waiting
        session.send(kernel, "execute_reply", {"status": "ok"})
        time.sleep(0.05)  # no turn of the event loop: the reply is queued, the loop has not looked
        zmq.Socket.shadow(client.underlying).getsockopt(zmq.EVENTS)  # another reader takes the edge
        msg = await waiting
        return msg, time.monotonic() - started
    finally:
        client.close(0)
        kernel.close(0)
        ctx.term()


def test_sliced_channel_finds_a_reply_whose_wakeup_was_lost() -> None:
    msg, elapsed = asyncio.run(_reply_with_lost_wakeup(SlicedPollChannel))
    assert msg["msg_type"] == "execute_reply" and msg["content"] == {"status": "ok"}
    assert elapsed < POLL_SLICE_S + 0.5, elapsed


def test_the_stock_channel_waits_out_its_timeout_for_the_same_reply() -> None:
    # Why the sliced channel exists. If this fails, pyzmq or jupyter_client no longer lose the wake-up
    # and scope3lib.hub.kernel_client can go.
    msg, elapsed = asyncio.run(_reply_with_lost_wakeup(AsyncZMQSocketChannel))
    assert msg["msg_type"] == "execute_reply"
    assert elapsed >= TIMEOUT_S - 0.1, elapsed


def test_sliced_channel_still_times_out_when_nothing_comes() -> None:
    async def wait_for_nothing() -> float:
        ctx = zmq.asyncio.Context()
        sock = ctx.socket(zmq.DEALER)
        sock.bind_to_random_port("tcp://127.0.0.1")
        try:
            started = time.monotonic()
            with pytest.raises(Empty):
                await SlicedPollChannel(sock, Session(key=b"")).get_msg(timeout=0.7)
            return time.monotonic() - started
        finally:
            sock.close(0)
            ctx.term()

    elapsed = asyncio.run(wait_for_nothing())
    assert 0.65 <= elapsed < 1.2, elapsed


def test_the_dashboard_voila_uses_the_sliced_client(tmp_path: Any) -> None:
    command = voila_command(tmp_path / "executive.ipynb", 8000, 1)
    factory = "--KernelManager.client_factory=scope3lib.hub.kernel_client.SlicedPollKernelClient"
    assert factory in command
    assert SlicedPollKernelClient.shell_channel_class.default_value is SlicedPollChannel
    assert SlicedPollKernelClient.iopub_channel_class.default_value is SlicedPollChannel
