"""Voila's side of forked page kernels (:mod:`scope3lib.hub.forkserver`): the provisioner and kernel manager.

Kept apart from the zygote's module so that the zygote, which runs that module, never imports Jupyter server.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from typing import Any, cast

from jupyter_client.connect import KernelConnectionInfo
from jupyter_client.provisioning import LocalProvisioner
from jupyter_server.services.kernels.kernelmanager import ServerKernelManager

from . import forkserver


class ForkProvisioner(LocalProvisioner):
    """The local provisioner, with kernels forked by the zygote when it runs (plain processes otherwise)."""

    forked = False

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> KernelConnectionInfo:
        plain_stdio = all(kwargs.get(k) is None for k in ("stdin", "stdout", "stderr"))
        env = kwargs.get("env") or dict(os.environ)
        cwd = str(kwargs.get("cwd") or os.getcwd())
        zygote = forkserver.Zygote.current
        while zygote is not None and zygote.starting():  # Voila's first kernels: the zygote is importing
            await asyncio.sleep(0.1)
        # In a thread: a zygote slow to answer (a loaded machine) must not hold up Voila's event loop.
        process = await asyncio.to_thread(forkserver.fork_kernel, cmd, env, cwd) if plain_stdio else None
        if process is None:
            self.log.info("dashboard: kernel %s starts as a plain process (no zygote)", self.kernel_id)
            self.forked = False
            return await super().launch_kernel(cmd, **kwargs)
        self.forked = True
        self.process = cast(Any, process)  # Popen's interface, as far as LocalProvisioner uses it
        self.pid = self.pgid = process.pid  # the kernel leads its own session
        self.cwd = cwd
        return self.connection_info


class ForkingKernelManager(ServerKernelManager):
    """Jupyter server's kernel manager with :class:`ForkProvisioner` (unless a kernelspec names its own)."""

    async def _async_pre_start_kernel(self, **kw: Any) -> tuple[list[str], dict[str, Any]]:
        spec = self.kernel_spec
        if self.provisioner is None and spec is not None and not spec.metadata.get("kernel_provisioner"):
            self.kernel_id = self.kernel_id or kw.get("kernel_id") or str(uuid.uuid4())  # as the base class does
            self.provisioner = ForkProvisioner(kernel_id=self.kernel_id, kernel_spec=spec, parent=self)
        return await super()._async_pre_start_kernel(**kw)
