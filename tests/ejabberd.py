"""A real two-node MQTT 5 broker cluster for the tests: ejabberd (``mod_mqtt``), started here.

Each node has its own ``ejabberdctl`` config (Erlang node name, ``ejabberd.yml``, spool,
logs, pid file, a distribution port), passed as ``--ctl-config``; Debian's own config is
never read. ``ejabberdctl`` run as root switches to the ``ejabberd`` user, so the
folders belong to it, and both nodes share its Erlang cookie. They listen on 127.0.0.1
only; node B joins node A's cluster. Stopping uses ``ejabberdctl stop`` per node (never
``stopped``, which also ends the shared epmd); a node killed with SIGKILL is the one
whose pid the test read from its pid file.

ejabberd 23.01 refuses MQTT clients without a password even when anonymous: every
client of it gets :data:`USERNAME` and :data:`PASSWORD`. Without ejabberd the tests fail
and say how to install it; they are never skipped.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

__all__ = ["PASSWORD", "USERNAME", "EjabberdCluster", "EjabberdNode"]

USERNAME = "mqttpush"
PASSWORD = "cluster"
_INSTALL = "apt-get install -y ejabberd (Debian/Ubuntu)"
_USER = "ejabberd"

_CONFIG = """\
hosts: [localhost]
loglevel: warning
hide_sensitive_log_data: true
listen:
  - port: {port}
    ip: "127.0.0.1"
    module: mod_mqtt
auth_method: [anonymous]
anonymous_protocol: login_anon
modules:
  mod_mqtt:
    session_expiry: 3600
    max_topic_depth: 16
    max_queue: 100000
"""

_CTL = """\
ERLANG_NODE={node}
EJABBERD_CONFIG_PATH={root}/ejabberd.yml
SPOOL_DIR={root}/spool
LOGS_DIR={root}/logs
EJABBERD_PID_PATH={root}/ejabberd.pid
INET_DIST_INTERFACE=127.0.0.1
FIREWALL_WINDOW={dist}-{dist_end}
EJABBERD_BYPASS_WARNINGS=true
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _free_window(size: int = 8) -> int:
    """The first of ``size`` consecutive free ports (the node and its ejabberdctl calls)."""
    for _ in range(50):
        base = _free_port()
        if base + size > 65_535:
            continue
        with contextlib.ExitStack() as held:
            try:
                for port in range(base, base + size):
                    sock = held.enter_context(socket.socket())
                    sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return base
    raise RuntimeError("no window of free ports for Erlang distribution")


def _ctl_binary() -> str:
    found = shutil.which("ejabberdctl") or (
        "/usr/sbin/ejabberdctl" if Path("/usr/sbin/ejabberdctl").exists() else None
    )
    if found is None:
        pytest.fail(f"ejabberd is not installed (no ejabberdctl): {_INSTALL}")
    if os.geteuid() != 0:
        pytest.fail("the ejabberd cluster tests run as root (ejabberdctl switches users)")
    return found


class EjabberdNode:
    """One ejabberd node in a folder of its own.

    Attributes:
        name: The Erlang node name, ``NAME@localhost``.
        port: Its MQTT listener on 127.0.0.1.
    """

    def __init__(self, root: Path, label: str) -> None:
        self.name = f"mqttpush-{label}-{uuid.uuid4().hex[:6]}@localhost"
        self.port = _free_port()
        self.root = root / label
        for folder in (self.root, self.root / "spool", self.root / "logs"):
            folder.mkdir(parents=True, exist_ok=True)
        (self.root / "ejabberd.yml").write_text(_CONFIG.format(port=self.port))
        self.ctl_config = self.root / "ejabberdctl.cfg"
        dist = _free_window()
        self.ctl_config.write_text(
            _CTL.format(node=self.name, root=self.root, dist=dist, dist_end=dist + 7)
        )
        for path in (self.root, *self.root.rglob("*")):
            shutil.chown(path, _USER, _USER)
        self.killed = False

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT``, as ``broker.servers`` takes it."""
        return f"127.0.0.1:{self.port}"

    def ctl(self, *command: str, timeout: float = 60, check: bool = True) -> str:
        """Run ``ejabberdctl`` for this node; return its output."""
        done = subprocess.run(
            [_ctl_binary(), "--ctl-config", str(self.ctl_config), *command],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            raise RuntimeError(
                f"ejabberdctl {' '.join(command)} on {self.name} failed ({done.returncode}): "
                f"{done.stdout}{done.stderr}{self.log_tail()}"
            )
        return done.stdout

    def log_tail(self, lines: int = 20) -> str:
        """The end of the node's error log, for failure messages."""
        log = self.root / "logs" / "error.log"
        if not log.exists():
            return ""
        return "\n" + "\n".join(log.read_text(errors="replace").splitlines()[-lines:])

    def start(self) -> None:
        """Start the node and wait until it serves."""
        self.ctl("start")
        self.ctl("started", timeout=120)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port)):
                return
            time.sleep(0.1)
        raise RuntimeError(f"ejabberd {self.name} never listened on {self.port}{self.log_tail()}")

    def pid(self) -> int:
        """The node's Erlang VM process id (from its pid file)."""
        return int((self.root / "ejabberd.pid").read_text().strip())

    def kill(self) -> None:
        """SIGKILL the node's VM: a crash, with no goodbye to its clients or its peer."""
        os.kill(self.pid(), signal.SIGKILL)
        self.killed = True

    def stop(self) -> None:
        """Stop the node if it still runs; by its pid if ``ejabberdctl stop`` fails."""
        if self.killed:
            return
        try:
            pid = self.pid()
        except (OSError, ValueError):
            return
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self.ctl("stop", timeout=30, check=False)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


class EjabberdCluster:
    """Two ejabberd nodes, ``a`` and ``b``, joined in one cluster; a context manager."""

    def __init__(self) -> None:
        self._root = Path(tempfile.mkdtemp(prefix="mqttpush-ejabberd-"))
        shutil.chown(self._root, _USER, _USER)
        self.a = EjabberdNode(self._root, "a")
        self.b = EjabberdNode(self._root, "b")

    @property
    def servers(self) -> list[str]:
        """Both nodes, A first, as ``broker.servers`` takes them."""
        return [self.a.address, self.b.address]

    def __enter__(self) -> EjabberdCluster:
        try:
            self._start()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _start(self) -> None:
        self.a.start()
        self.b.start()
        self.b.ctl("join_cluster", self.a.name, timeout=120)
        members = self.a.ctl("list_cluster")
        if self.b.name not in members:
            raise RuntimeError(f"node B did not join the cluster: {members}")

    def __exit__(self, *exc_info: object) -> None:
        self.b.stop()
        self.a.stop()
        shutil.rmtree(self._root, ignore_errors=True)
