"""A two-node MQTT 5 broker cluster on 127.0.0.1: ejabberd (``mod_mqtt``), for tests and benchmarks.

Each node has its own ``ejabberdctl`` config (Erlang node name, ``ejabberd.yml``, spool,
logs, pid file, a distribution port), passed as ``--ctl-config``; Debian's own config is
never read. ``ejabberdctl`` run as root switches to the ``ejabberd`` user, so the
folders belong to it, and both nodes share its Erlang cookie. They listen on 127.0.0.1
only; node B joins node A's cluster. Stopping uses ``ejabberdctl stop`` per node (never
``stopped``, which also ends the shared epmd); :meth:`EjabberdNode.kill` sends SIGKILL to
the pid in the node's pid file, and :meth:`EjabberdNode.revive` starts a killed node
again, back in the cluster (its spool remembers it).

ejabberd 23.01 refuses MQTT clients without a password even when anonymous: every
client of it gets :data:`USERNAME` and :data:`PASSWORD`.
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
from typing import Self

from mqttpush.errors import BrokerUnavailableError, ConfigurationError
from mqttpush.tools.devbroker import free_port, wait_for_port

__all__ = ["INSTALL", "PASSWORD", "USERNAME", "EjabberdCluster", "EjabberdNode", "ctl_binary"]

USERNAME = "mqttpush"
PASSWORD = "cluster"  # noqa: S105 - login_anon takes any password: not a secret
#: How to get ejabberd.
INSTALL = "apt-get install -y ejabberd (Debian/Ubuntu)"
_USER = "ejabberd"
_LAST_PORT = 65_535

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


def _free_window(size: int = 8) -> int:
    """The first of ``size`` consecutive free ports (the node and its ejabberdctl calls)."""
    for _ in range(50):
        base = free_port()
        if base + size > _LAST_PORT:
            continue
        with contextlib.ExitStack() as held:
            try:
                for port in range(base, base + size):
                    sock = held.enter_context(socket.socket())
                    sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return base
    raise BrokerUnavailableError("no window of free ports for Erlang distribution")


def ctl_binary() -> str:
    """The path of ``ejabberdctl``.

    Raises:
        ConfigurationError: ejabberd is not installed, or this process is not root
            (``ejabberdctl`` switches to the ``ejabberd`` user).
    """
    found = shutil.which("ejabberdctl") or (
        "/usr/sbin/ejabberdctl" if Path("/usr/sbin/ejabberdctl").exists() else None
    )
    if found is None:
        raise ConfigurationError(f"ejabberd is not installed (no ejabberdctl): {INSTALL}")
    if os.geteuid() != 0:
        raise ConfigurationError(
            "an ejabberd cluster is started as root (ejabberdctl switches users)"
        )
    return found


class EjabberdNode:
    """One ejabberd node in a folder of its own.

    Attributes:
        name: The Erlang node name, ``NAME@localhost``.
        port: Its MQTT listener on 127.0.0.1.
        killed: Whether it was killed and not revived.
    """

    def __init__(self, root: Path, label: str) -> None:
        self.name = f"mqttpush-{label}-{uuid.uuid4().hex[:6]}@localhost"
        self.label = label
        self.port = free_port()
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
        """Run ``ejabberdctl`` for this node; return its output.

        Raises:
            BrokerUnavailableError: With ``check``, the command failed.
        """
        done = subprocess.run(  # noqa: S603 - the package's own program
            [ctl_binary(), "--ctl-config", str(self.ctl_config), *command],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            raise BrokerUnavailableError(
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
        """Start the node and wait until it serves MQTT."""
        self.ctl("start")
        self.ctl("started", timeout=120)
        try:
            wait_for_port("127.0.0.1", self.port, 30)
        except BrokerUnavailableError:
            raise BrokerUnavailableError(
                f"ejabberd {self.name} never listened on {self.port}{self.log_tail()}"
            ) from None
        self.killed = False

    def pid(self) -> int:
        """The node's Erlang VM process id (from its pid file)."""
        return int((self.root / "ejabberd.pid").read_text().strip())

    def kill(self) -> None:
        """SIGKILL the node's VM: a crash, with no goodbye to its clients or its peer."""
        os.kill(self.pid(), signal.SIGKILL)
        self.killed = True

    def revive(self, peer: EjabberdNode) -> None:
        """Start a killed node again and wait until ``peer`` counts it in the cluster."""
        with contextlib.suppress(OSError):
            (self.root / "ejabberd.pid").unlink()
        self.start()
        deadline = time.monotonic() + 60
        while self.name not in peer.ctl("list_cluster"):
            if time.monotonic() > deadline:
                raise BrokerUnavailableError(f"{self.name} did not rejoin {peer.name}")
            time.sleep(0.2)

    def stop(self) -> None:
        """Stop the node if it still runs; by its pid if ``ejabberdctl stop`` fails."""
        if self.killed:
            return
        try:
            pid = self.pid()
        except (OSError, ValueError):
            return
        with contextlib.suppress(BrokerUnavailableError, subprocess.TimeoutExpired):
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
        ctl_binary()  # fail early, and say why, when it cannot run here
        self._root = Path(tempfile.mkdtemp(prefix="mqttpush-ejabberd-"))
        shutil.chown(self._root, _USER, _USER)
        self.a = EjabberdNode(self._root, "a")
        self.b = EjabberdNode(self._root, "b")

    @property
    def nodes(self) -> tuple[EjabberdNode, EjabberdNode]:
        """Both nodes, A first."""
        return self.a, self.b

    @property
    def servers(self) -> list[str]:
        """Both nodes, A first, as ``broker.servers`` takes them."""
        return [self.a.address, self.b.address]

    def other(self, node: EjabberdNode) -> EjabberdNode:
        """The node that is not ``node``."""
        return self.b if node is self.a else self.a

    def node_on(self, port: int) -> EjabberdNode:
        """The node listening on ``port``."""
        return next(node for node in self.nodes if node.port == port)

    def revive(self) -> None:
        """Start every killed node again, back in the cluster."""
        for node in self.nodes:
            if node.killed:
                node.revive(self.other(node))

    def __enter__(self) -> Self:
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
            raise BrokerUnavailableError(f"node B did not join the cluster: {members}")

    def __exit__(self, *exc_info: object) -> None:
        self.b.stop()
        self.a.stop()
        shutil.rmtree(self._root, ignore_errors=True)
