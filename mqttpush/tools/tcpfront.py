"""A TCP front (haproxy) on a free 127.0.0.1 port, in front of the nodes of a broker cluster.

:class:`TcpFront` writes its own haproxy config in a temporary folder and runs
``haproxy`` in the foreground as a child process (stopped by its pid). TCP mode, one
backend server per node, each health-checked every 200 ms (a TCP connect: a node is
down after one failed check, up again after two good ones); a connection that cannot
reach its node is dispatched to another one. ``balance first``: every client goes to
the first node that is up, so which node a client is on is known and the same for all.
A stats socket answers :meth:`TcpFront.sessions`, the connections open per node.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Self

from mqttpush.errors import BrokerUnavailableError, ConfigurationError
from mqttpush.tools.devbroker import free_port, wait_for_port

__all__ = ["INSTALL", "TcpFront", "haproxy_binary"]

#: How to get haproxy.
INSTALL = "apt-get install -y haproxy (Debian/Ubuntu)"

_CONFIG = """\
global
    stats socket {root}/stats.sock mode 600 level admin
    maxconn 4000

defaults
    mode tcp
    timeout connect 2s
    timeout client 1h
    timeout server 1h
    retries 2
    option redispatch

frontend mqtt
    bind 127.0.0.1:{port}
    default_backend nodes

backend nodes
    balance first
{servers}
"""
_SERVER = "    server {name} {address} check inter 200ms fall 1 rise 2"


def haproxy_binary() -> str:
    """The path of ``haproxy``.

    Raises:
        ConfigurationError: It is not installed (the message says how to).
    """
    for candidate in (shutil.which("haproxy"), "/usr/sbin/haproxy"):
        if candidate and Path(candidate).exists():
            return candidate
    raise ConfigurationError(f"haproxy is not installed: {INSTALL}")


class TcpFront:
    """haproxy in TCP mode in front of ``nodes``; a context manager.

    Args:
        nodes: Backend name to ``host:port``, in the order ``balance first`` tries them.

    Attributes:
        port: Where the front listens, on 127.0.0.1.
    """

    def __init__(self, nodes: dict[str, str]) -> None:
        self.nodes = dict(nodes)
        self.port = free_port()
        self._root = Path(tempfile.mkdtemp(prefix="mqttpush-haproxy-"))
        self.config = self._root / "haproxy.cfg"
        self.log_path = self._root / "haproxy.log"
        servers = "\n".join(
            _SERVER.format(name=name, address=address) for name, address in self.nodes.items()
        )
        self.config.write_text(_CONFIG.format(root=self._root, port=self.port, servers=servers))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT``, as ``broker.servers`` takes it."""
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        """Check the config, start haproxy and wait until the front accepts connections.

        Raises:
            ConfigurationError: haproxy is not installed.
            BrokerUnavailableError: The config was refused or haproxy did not start.
        """
        binary = haproxy_binary()
        checked = subprocess.run(  # noqa: S603 - the package's program, our own config
            [binary, "-c", "-q", "-f", str(self.config)],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        if checked.returncode != 0:
            raise BrokerUnavailableError(f"haproxy refused {self.config}: {checked.stderr}")
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(  # noqa: S603 - the same
                [binary, "-db", "-f", str(self.config)], stdout=log, stderr=subprocess.STDOUT
            )
        try:
            wait_for_port("127.0.0.1", self.port, timeout)
        except BrokerUnavailableError:
            self.stop()
            raise BrokerUnavailableError(
                f"haproxy did not start: {self.log_path.read_text(errors='replace')[-2000:]}"
            ) from None

    def stats(self) -> list[dict[str, str]]:
        """The stats socket's ``show stat``: one row per frontend, backend and server."""
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(5)
            sock.connect(str(self._root / "stats.sock"))
            sock.sendall(b"show stat\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        lines = b"".join(chunks).decode().strip().splitlines()
        header = lines[0].lstrip("# ").split(",")
        return [dict(zip(header, line.split(","), strict=False)) for line in lines[1:] if line]

    def sessions(self) -> dict[str, int]:
        """The connections open through the front now, per backend node."""
        return {
            row["svname"]: int(row["scur"] or 0)
            for row in self.stats()
            if row["pxname"] == "nodes" and row["svname"] in self.nodes
        }

    def status(self) -> dict[str, str]:
        """Each node's health as the front sees it (``UP``, ``DOWN``, ...)."""
        return {
            row["svname"]: row["status"]
            for row in self.stats()
            if row["pxname"] == "nodes" and row["svname"] in self.nodes
        }

    def stop(self) -> None:
        """Stop haproxy (by its pid) if it runs."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            self.stop()
        finally:
            with contextlib.suppress(OSError):
                shutil.rmtree(self._root)
