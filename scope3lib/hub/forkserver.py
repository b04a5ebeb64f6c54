"""Dashboard page kernels forked from one preheated process (the zygote) instead of started from scratch.

A page kernel started as a new Python process spends 2-4 s of CPU importing ipykernel, pandas, SQLAlchemy,
plotly, ipywidgets and the dashboard's modules, and holds its own copy of all of them (about 110 MB). The
dashboard service instead starts one zygote (:class:`Zygote`) that imports all that once and then only forks:
a kernel starts in milliseconds and shares the imported code and objects with the zygote and every other
kernel, copy-on-write, so what a page costs (its USS) is what the page itself adds.

The pieces:

* the zygote, ``python -m scope3lib.hub.forkserver SOCKET``: imports, then serves fork requests on a Unix
  socket in the service user's private runtime directory. It never connects to the database, opens no ZeroMQ
  context and starts no thread before forking, so a kernel inherits code and nothing else. Its environment is
  the dashboard service's, which every kernel of the service gets anyway (one tenant's read-only role).
* :class:`~scope3lib.hub.fork_provisioner.ForkProvisioner` (jupyter_client's provisioner interface): asks
  the zygote for a kernel, with the kernel's own command line (its connection file: sockets, session key),
  environment, working directory and Voila's stdout and stderr. When the zygote is not there (not started
  yet, dead) the kernel starts as a plain process, as before.
* :class:`ForkedKernel`: the kernel process as the provisioner sees it (Popen's interface). The kernel is the
  zygote's child, not Voila's: the zygote reaps it and writes its exit status on the connection of the
  request that made it, which tells the provisioner the pid is gone before it could be reused.
* :class:`~scope3lib.hub.fork_provisioner.ForkingKernelManager`: Voila's per-kernel manager with this
  provisioner (configured on the command line, so no entry point has to be installed).

In a tenant's dashboard service the zygote also reads what a page shows ahead of every kernel
(:func:`scope3lib.reporting.executive.read_ahead`: the entries, the kept tenant-wide panels, the first view),
checking the data version every :data:`PREPARE_EVERY_S` seconds while no kernel is asked for. A kernel forked
after that inherits it, shared like the imports; it still checks the version before using it, and reads again
when the data has changed since. The zygote's connection is closed again before it next forks.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from jupyter_core.paths import jupyter_runtime_dir

# What a dashboard page imports (the notebook's first cell and what wait_for_viewer and the page pull in),
# imported once in the zygote. Voila's helper for the wait is imported by the page's first cell.
PRELOAD = ("ipykernel.kernelapp", "ipykernel.ipkernel", "ipykernel.comm", "ipywidgets", "voila.utils",
           "scope3lib.reporting.executive", "scope3lib.meters.status", "plotly.graph_objects", "psycopg")
# The process name (``/proc/PID/comm``, as ps and psutil show it) of a forked kernel, whose command line is
# the zygote's.
KERNEL_NAME = "scope3-kernel"
# How long a kernel waits for the zygote to have imported (at Voila's start), before it starts plainly.
READY_S = 60.0
# How long the provisioner waits for the zygote's answer to a fork request.
REQUEST_S = 10.0
# How often a forked kernel checks that Voila still runs (a plain kernel's ipykernel poller checks its parent,
# which for a forked kernel is the zygote).
WATCH_S = 2.0
UNKNOWN_EXIT = 255  # the zygote died before it could say how its kernel ended
# How often the zygote of a tenant's dashboard checks the data version and reads what changed (see the module doc).
PREPARE_EVERY_S = 10.0


def socket_path(voila_pid: int | None = None) -> Path:
    """Where the zygote of the Voila process ``voila_pid`` (this one by default) listens."""
    return Path(jupyter_runtime_dir()) / f"scope3-zygote-{voila_pid or os.getpid()}.sock"


# ---------------------------------------------------------------------------------------------- the zygote


_ZYGOTE_CWD = os.getcwd()


def serve(path: Path) -> None:
    """The zygote: import what a page imports, then fork a kernel for each request on ``path`` until the
    process that started it (Voila) is gone."""
    gc.disable()  # no collection moves objects between pages before the fork: the pages stay shared
    os.environ.pop("JPY_PARENT_PID", None)  # ipykernel reads it at import; see _watch_voila
    for name in PRELOAD:
        __import__(name)
    from scope3lib.reporting import panels

    panels.specs()  # the panel registry, as wait_for_viewer loads it
    assert threading.active_count() == 1, f"a thread before fork: {threading.enumerate()}"
    parent = os.getppid()
    path.unlink(missing_ok=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)  # the socket is the service user's alone
    try:
        listener.bind(str(path))
    finally:
        os.umask(old_umask)
    listener.listen(64)
    wake_r, wake_w = socket.socketpair()
    wake_w.setblocking(False)
    signal.set_wakeup_fd(wake_w.fileno())
    signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler, so that the wakeup fd is written
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # and the socket is removed on the way out
    gc.freeze()  # everything so far is permanent: a kernel's collections never write to the shared pages
    requests: dict[int, socket.socket] = {}  # kernel pid -> the connection that asked for it
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ, "accept")
    sel.register(wake_r, selectors.EVENT_READ, "child")
    prepared = 0.0
    try:
        while os.getppid() == parent:
            events = sel.select(timeout=1.0)
            for key, _ in events:
                if key.data == "accept":
                    _fork_one(listener, requests, inherited=(listener, wake_r, wake_w, sel))
                else:
                    wake_r.recv(4096)
            _reap(requests)
            if not events and time.monotonic() - prepared >= PREPARE_EVERY_S:
                _read_ahead()
                prepared = time.monotonic()
    finally:
        path.unlink(missing_ok=True)


def _read_ahead() -> None:
    """In a tenant's dashboard service: what a page shows, read for the data as it is now, for the kernels forked
    from now on. Nothing is left open that a kernel would inherit (no connection, no thread)."""
    if not os.environ.get("SCOPE3_TENANT_DATABASE_URL") or not os.environ.get("SCOPE3_DASHBOARD_CACHE_DIR"):
        return
    from scope3lib.reporting import executive

    if executive.read_ahead():
        # What the new data replaced may be held in reference cycles, which nothing collects here (collection is
        # off, and frozen objects are never collected): collected now, once per change of the data. Then what
        # was read is frozen too, shared with the kernels: their collections leave it alone.
        gc.unfreeze()
        gc.collect()
        gc.freeze()
    assert threading.active_count() == 1, f"a thread before fork: {threading.enumerate()}"


def _fork_one(listener: socket.socket, requests: dict[int, socket.socket], inherited: tuple[Any, ...]) -> None:
    """Accept one request and fork its kernel; answer with the kernel's pid (or drop a malformed request)."""
    conn, _ = listener.accept()
    try:
        conn.settimeout(REQUEST_S)
        msg, fds, _, _ = socket.recv_fds(conn, 1 << 20, 3)
        request = json.loads(msg)
        if len(fds) != 3:
            raise ValueError(f"expected 3 file descriptors, got {len(fds)}")
    except (OSError, ValueError) as exc:
        print(f"scope3 zygote: refused a request: {exc}", file=sys.stderr)
        conn.close()
        return
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the kernel: never returns
        for held in (*inherited, conn, *requests.values()):  # the zygote's, not the kernel's
            held.close()
        _run_kernel(request, fds)
    for fd in fds:
        os.close(fd)
    requests[pid] = conn
    conn.sendall(json.dumps({"pid": pid}).encode() + b"\n")


def _reap(requests: dict[int, socket.socket]) -> None:
    """Collect every ended kernel and tell its provisioner how it ended."""
    while requests:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        conn = requests.pop(pid, None)
        if conn is not None:
            with contextlib.suppress(OSError):  # the provisioner is gone: nobody to tell
                conn.sendall(json.dumps({"exit": os.waitstatus_to_exitcode(status)}).encode() + b"\n")
            conn.close()


def _run_kernel(request: dict[str, Any], fds: list[int]) -> None:
    """In the forked child: become the kernel ``request`` describes, as ``python -m ipykernel_launcher`` would."""
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGPIPE):
            signal.signal(signum, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.setsid()  # its own process group: Voila signals the group, as for a plain kernel
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        _set_name(KERNEL_NAME)
        _reseed()
        gc.enable()
        threading.Thread(target=_watch_voila, args=(int(request["voila_pid"]),), daemon=True).start()
        # As `-m ipykernel_launcher` leaves it; parent_handle 1: no poller of the parent (the zygote, whose end
        # need not end the page; _watch_voila watches Voila) and no console banner.
        sys.argv = [request["argv"][0], *request["argv"][3:], "--IPKernelApp.parent_handle=1"]
        if sys.path and Path(sys.path[0] or ".").resolve() == Path(_ZYGOTE_CWD).resolve():
            del sys.path[0]  # the launcher takes the working directory out too (IPython puts '' back)
        from ipykernel import kernelapp

        kernelapp.launch_new_instance()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        traceback.print_exc()
    finally:
        try:
            atexit._run_exitfuncs()  # what a kernel's interpreter would run at exit
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)  # never back into the zygote's loop


def _set_name(name: str) -> None:
    """The process name ps and psutil show (as ``prctl(PR_SET_NAME)`` sets it; Linux only)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/comm").write_text(name)


def _reseed() -> None:
    """Kernels forked from one process would share NumPy's global random state (Python's own ``random`` reseeds
    itself at fork)."""
    import numpy as np

    np.random.seed()


def _watch_voila(voila_pid: int) -> None:
    """End this kernel when Voila has ended, as ipykernel's parent poller does for a plain kernel."""
    while True:
        time.sleep(WATCH_S)
        try:
            os.kill(voila_pid, 0)
        except ProcessLookupError:
            os._exit(1)
        except PermissionError:  # the pid now belongs to another user's process: Voila is gone
            os._exit(1)


# ----------------------------------------------------------------------------------------- Voila's side


class ForkedKernel:
    """A kernel the zygote forked, with the part of :class:`subprocess.Popen`'s interface the provisioner uses.

    Its exit status comes from the zygote, which reaps it; until then the pid cannot be reused and signals reach
    the kernel. If the zygote dies first the kernel is re-parented (and reaped by its new parent): its pid is
    then checked directly.
    """

    stdin = stdout = stderr = None

    def __init__(self, pid: int, conn: socket.socket) -> None:
        self.pid, self.conn = pid, conn
        self.returncode: int | None = None
        self.conn.setblocking(False)
        self._buffer = b""

    def poll(self) -> int | None:
        if self.returncode is not None:
            return self.returncode
        try:
            chunk = self.conn.recv(4096)
        except BlockingIOError:
            return None
        except OSError:
            chunk = b""
        if chunk:
            self._buffer += chunk
            if b"\n" in self._buffer:
                self._ended(int(json.loads(self._buffer.split(b"\n")[0])["exit"]))
            return self.returncode
        # The zygote is gone: the kernel is re-parented, and has ended once its pid is gone or a zombie (the new
        # parent may not reap it at once, or ever: a container's first process may not).
        if not _alive(self.pid):
            self._ended(UNKNOWN_EXIT)
        return self.returncode

    def _ended(self, code: int) -> None:
        self.returncode = code
        self.conn.close()

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(str(self.pid), timeout or 0)
            time.sleep(0.05)
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:  # never signal a pid that may belong to another process by now
            os.kill(self.pid, signum)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # no /proc: a zombie cannot be told from a live process
        return True
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def fork_kernel(cmd: list[str], env: dict[str, str], cwd: str, path: Path | None = None) -> ForkedKernel | None:
    """A kernel forked by the zygote at ``path`` running ``cmd``; None when there is no zygote to ask or ``cmd``
    is not this interpreter's ipykernel (then the kernel starts as a plain process)."""
    if cmd[1:3] != ["-m", "ipykernel_launcher"] or os.path.realpath(cmd[0]) != os.path.realpath(sys.executable):
        return None
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.settimeout(REQUEST_S)
    devnull = os.open(os.devnull, os.O_RDONLY)
    try:
        conn.connect(str(path or socket_path()))
        request = {"argv": cmd, "env": env, "cwd": cwd, "voila_pid": os.getpid()}
        socket.send_fds(conn, [json.dumps(request).encode()], [devnull, sys.stdout.fileno(), sys.stderr.fileno()])
        answer = b""
        while not answer.endswith(b"\n"):
            chunk = conn.recv(4096)
            if not chunk:
                raise ConnectionError("the zygote closed the connection")
            answer += chunk
        return ForkedKernel(int(json.loads(answer)["pid"]), conn)
    except (OSError, ValueError, KeyError):
        conn.close()
        return None
    finally:
        os.close(devnull)


class Zygote:
    """The zygote process of this Voila: started, waited for, restarted when it has died.

    One per Voila process, at :func:`socket_path`: the last one started is :attr:`current`, which kernels
    starting while it imports wait for (:meth:`starting`).
    """

    current: Zygote | None = None

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or socket_path()
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0

    def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path.unlink(missing_ok=True)
        self.proc = subprocess.Popen([sys.executable, "-m", "scope3lib.hub.forkserver", str(self.path)])
        self.started_at = time.monotonic()
        Zygote.current = self

    def starting(self) -> bool:
        """Running, not ready yet, and started less than :data:`READY_S` ago."""
        return self.running() and not self.path.exists() and time.monotonic() - self.started_at < READY_S

    def ready(self) -> bool:
        return self.proc is not None and self.proc.poll() is None and self.path.exists()

    def wait_ready(self, timeout: float = READY_S) -> bool:
        deadline = time.monotonic() + timeout
        while not self.ready():
            if time.monotonic() > deadline or self.proc is None or self.proc.poll() is not None:
                return False
            time.sleep(0.05)
        return True

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.running():
            assert self.proc is not None
            self.proc.terminate()
            self.proc.wait(10)


def main() -> None:
    serve(Path(sys.argv[1]))


if __name__ == "__main__":
    main()
