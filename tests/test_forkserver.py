"""Page kernels forked from the dashboard's zygote: real kernels, over ZeroMQ, as the dashboard's Voila runs them."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import psutil
import pytest

from scope3lib.hub import forkserver
from scope3lib.hub.fork_provisioner import ForkingKernelManager


@pytest.fixture(scope="module")
def zygote() -> Iterator[forkserver.Zygote]:
    z = forkserver.Zygote()  # at this process's socket path, where the provisioner looks
    z.start()
    assert z.wait_ready(), "the zygote did not get ready"
    yield z
    z.stop()


async def _start(**env: str) -> tuple[ForkingKernelManager, Any]:
    km = ForkingKernelManager(transport="ipc")
    await km.start_kernel(env={**os.environ, **env})
    kc = km.client()
    kc.start_channels()
    await kc.wait_for_ready(timeout=60)
    return km, kc


async def _run(kc: Any, code: str) -> Any:
    """The value of the expression ``code`` in the kernel, through JSON."""
    reply = await kc.execute_interactive(f"import json as _j; print(_j.dumps({code}))", timeout=60,
                                         output_hook=lambda msg: _out.append(msg))
    assert reply["content"]["status"] == "ok", reply["content"]
    text = "".join(m["content"].get("text", "") for m in _out if m["msg_type"] == "stream")
    _out.clear()
    return json.loads(text)


_out: list[dict[str, Any]] = []


async def _gone(pid: int) -> None:
    deadline = time.monotonic() + 10
    while psutil.pid_exists(pid) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert not psutil.pid_exists(pid), psutil.Process(pid)


async def _stop(km: ForkingKernelManager, kc: Any, now: bool = True) -> None:
    kc.stop_channels()
    await km.shutdown_kernel(now=now)


def test_two_forked_kernels_share_imports_but_no_state(zygote: forkserver.Zygote) -> None:
    async def go() -> None:
        (a, ca), (b, cb) = await _start(SCOPE3_PROBE="a"), await _start(SCOPE3_PROBE="b")
        try:
            pids = [a.provisioner.pid, b.provisioner.pid]
            for km in (a, b):
                assert km.provisioner.forked
                proc = psutil.Process(km.provisioner.pid)
                assert proc.ppid() == zygote.proc.pid and proc.name() == forkserver.KERNEL_NAME
            # Imported before the kernel started (in the zygote), yet each kernel its own process with its own
            # connection (sockets, session key), environment, variables and random state.
            assert await _run(ca, "'pandas' in __import__('sys').modules and "
                                  "'scope3lib.reporting.executive' in __import__('sys').modules")
            await _run(ca, "[globals().__setitem__('secret', 42), 0][1]")
            assert await _run(ca, "globals().get('secret')") == 42
            assert await _run(cb, "globals().get('secret')") is None
            assert [await _run(c, "__import__('os').environ['SCOPE3_PROBE']") for c in (ca, cb)] == ["a", "b"]
            assert await _run(ca, "__import__('os').getpid()") == a.provisioner.pid
            assert a.connection_file != b.connection_file and a.session.key != b.session.key
            draws = [await _run(c, "__import__('numpy').random.rand()") for c in (ca, cb)]
            assert draws[0] != draws[1]
            # What a kernel holds of its own is a fraction of what it uses: the rest is the zygote's, shared.
            mem = psutil.Process(a.provisioner.pid).memory_full_info()
            assert mem.uss < 0.5 * mem.rss, mem
        finally:
            await _stop(a, ca)
            await _stop(b, cb, now=False)  # the polite way: a shutdown request, then the kernel exits
        for km, pid in ((a, pids[0]), (b, pids[1])):
            assert not await km.is_alive()
            await _gone(pid)  # reaped by the zygote, not left a zombie

    asyncio.run(go())


def test_a_forked_kernel_is_killed_like_a_plain_one(zygote: forkserver.Zygote) -> None:
    """What the dashboard's culler does (shutdown now): the kernel is gone, its exit reported by the zygote."""
    async def go() -> None:
        km, kc = await _start()
        pid = km.provisioner.pid
        kc.stop_channels()
        os.kill(pid, signal.SIGSTOP)  # a kernel that does not answer: only the kill ends it
        await km.shutdown_kernel(now=True)
        assert not await km.is_alive()
        assert km.provisioner.process is None  # waited for, as LocalProvisioner.wait does
        await _gone(pid)

    asyncio.run(go())


def test_without_the_zygote_kernels_start_plainly_and_forked_ones_live_on(zygote: forkserver.Zygote) -> None:
    z = zygote

    async def go() -> None:
        km, kc = await _start()
        assert km.provisioner.forked
        os.kill(z.proc.pid, signal.SIGKILL)
        z.proc.wait(10)
        try:
            plain, cp = await _start()
            try:
                assert not plain.provisioner.forked
                assert "ipykernel_launcher" in " ".join(psutil.Process(plain.provisioner.pid).cmdline())
                assert await _run(cp, "1 + 1") == 2
            finally:
                await _stop(plain, cp)
            # The forked kernel outlived its zygote, still answers, and is still shut down when asked.
            assert await _run(kc, "2 + 2") == 4
            assert await km.is_alive()
        finally:
            await _stop(km, kc)
        assert not await km.is_alive()

    try:
        asyncio.run(go())
    finally:
        z.start()  # back for whatever runs after
        z.wait_ready()


@pytest.mark.db
def test_a_tenants_zygote_reads_the_page_ahead_of_every_kernel(
        zygote: forkserver.Zygote, make_tenant: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """In a tenant's dashboard service the zygote reads the entries and prepares the first view for the data
    version, and closes its connection: a kernel forked after that starts with them (read once for every kernel)
    and holds no connection of the zygote's."""
    from scope3lib import db
    from scope3lib.reporting.executive import ExecutiveDashboard

    tenant = make_tenant(suppliers=30)
    monkeypatch.setenv("SCOPE3_TENANT_DATABASE_URL", tenant.database_url_readonly)
    monkeypatch.setenv("SCOPE3_DASHBOARD_CACHE_DIR", str(tmp_path / "panels"))
    viewer = db.create_engine(tenant.database_url_readonly)
    try:  # the service's refresher keeps the tenant-wide panels; the zygote only loads them
        dashboard = ExecutiveDashboard(viewer)
        dashboard.tenant_panels()
        version = list(dashboard.version or ())
    finally:
        viewer.dispose()
    zygote.stop()
    tenants = forkserver.Zygote()  # this environment: the tenant's URL and the panels' directory
    tenants.start()
    try:
        assert tenants.wait_ready()
        time.sleep(2.5)  # idle for a second: it has started reading ahead (a fork request waits for the end of it)

        async def go() -> None:
            km, kc = await _start()
            try:
                assert km.provisioner.forked
                assert await _run(kc, "[[list(k[0]), len(v.selection) > 0] for k, v in "
                                      "__import__('scope3lib.reporting.executive').reporting.executive._FIRST.items()]"
                                  ) == [[version, True]]
                # Read, and its connection closed before the fork: none left in the zygote.
                assert not psutil.Process(tenants.proc.pid).net_connections(kind="tcp")
            finally:
                await _stop(km, kc)

        asyncio.run(go())
    finally:
        tenants.stop()
        zygote.start()  # back for whatever runs after
        zygote.wait_ready()
