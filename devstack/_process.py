"""Start a server process, wait for it to be ready, stop it by its own PID."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

from devstack.wait import wait_until

CACHE_DIR = Path(os.environ.get("KAFKASCOPE_CACHE", Path.home() / ".cache" / "kafkascope"))


class ServerError(RuntimeError):
    """A server did not start, or stopped while it was needed."""


_LOWEST_PORT = 10_000
_handed_out: set[int] = set()
_handed_out_lock = threading.Lock()


def _ephemeral_start() -> int:
    """The first port the kernel hands out on its own (bind to 0, outgoing connections)."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768
    return low if low > _LOWEST_PORT + 1_000 else 65_536


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now and not handed out before.

    Chosen below the kernel's ephemeral range: a port from ``bind(("127.0.0.1", 0))`` is free
    only until the kernel hands it out again, and while a server is starting every outgoing
    connection on the machine takes one from that range (a broker once failed to bind its
    controller port that way). Ports this process handed out are never handed out again.
    """
    top = _ephemeral_start()
    while True:
        port = random.randrange(_LOWEST_PORT, top) if top <= 65_535 else _kernel_port()
        with _handed_out_lock:
            if port in _handed_out:
                continue
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                    sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            _handed_out.add(port)
            return port


def _kernel_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class ManagedProcess:
    """One server process, its log file, and a stop that targets only its own PID."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = log_path.open("ab")
        full_env = dict(os.environ)
        if env:
            full_env.update(env)
        self.proc = subprocess.Popen(
            self.argv,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=full_env,
            cwd=cwd,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def running(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def wait_until(self, ready: Callable[[], bool], *, timeout: float, what: str) -> None:
        """Poll ``ready`` until it returns True; raise with the log tail on timeout or exit."""

        def ready_while_running() -> bool:
            if not self.running():
                raise ServerError(
                    f"{self.name} exited with code {self.proc.returncode} before {what}; "
                    f"log {self.log_path}:\n{self.log_tail()}"
                )
            try:
                return ready()
            except Exception:  # readiness probes fail in many ways while a server boots
                return False

        try:
            wait_until(ready_while_running, timeout, what, interval=0.2)
        except TimeoutError:
            self.stop()
            raise ServerError(
                f"{self.name} was not {what} within {timeout:.0f}s; "
                f"log {self.log_path}:\n{self.log_tail()}"
            ) from None

    def kill(self, timeout: float = 15.0) -> None:
        """SIGKILL this PID at once (a crash, no clean shutdown) and reap it."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=timeout)
        self._log.close()

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM this PID, then SIGKILL it if it has not exited within ``timeout``."""
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=timeout)
            except ProcessLookupError:
                pass
        self._log.close()


class Server:
    """What every devstack server shares: :meth:`stop` (by its own PID), and use as a context
    manager that stops it on the way out. Subclasses with one process set ``process``."""

    process: ManagedProcess

    def stop(self) -> None:
        """Stop the server's process (SIGTERM to its own PID, SIGKILL after 15 s)."""
        self.process.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def run_script(script: Path, *, what: str, timeout: float | None = None) -> Path:
    """Run one of the project's set-up scripts (cached and idempotent) and return the path it
    prints last on stdout. Its progress lines (stderr) go to our stderr; it sees our
    ``KAFKASCOPE_CACHE``."""
    env = dict(os.environ, KAFKASCOPE_CACHE=str(CACHE_DIR))
    try:
        done = subprocess.run(
            ["bash", str(script)],
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env=env,
            timeout=timeout,
            check=False,
            text=True,
        )
    except subprocess.TimeoutExpired as exc:
        raise ServerError(f"{what}: {script.name} took over {timeout}s") from exc
    sys.stderr.flush()
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise ServerError(
            f"{what}: {script.name} failed with code {done.returncode}; its [..] lines say why"
        )
    return Path(lines[-1])
