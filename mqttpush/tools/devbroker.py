"""A Mosquitto process for development and tests, started from the OS package.

The repository's ``mosquitto.conf`` is the single source of broker settings; this
module only rewrites its listener (port and bind address) for the process it starts.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Self

from mqttpush.errors import BrokerUnavailableError

__all__ = [
    "LocalMosquitto",
    "find_mosquitto",
    "free_port",
    "mosquitto_command",
    "prepare_data_dir",
    "render_config",
    "wait_for_port",
]

_LISTENER = re.compile(r"^\s*listener\s+\d+.*$", re.MULTILINE)
_PERSISTENCE = re.compile(r"^\s*persistence_location\s+.*$", re.MULTILINE)
# A websockets listener: its listener line, then "protocol websockets" and the lines up to
# the next blank or comment line (its own TLS settings, in the secure profile).
_WEBSOCKETS = re.compile(
    r"^listener\s+\d+[^\n]*\n(protocol[ \t]+websockets[ \t]*\n(?:[^\n#][^\n]*\n)*)", re.M
)


def render_config(
    template: str,
    *,
    port: int,
    bind: str = "127.0.0.1",
    data_dir: Path | None = None,
    ws_port: int | None = None,
) -> str:
    """Return ``template`` with its (first) listener moved to ``bind:port``.

    Its websockets listener moves to ``bind:ws_port``, or is left out without
    ``ws_port`` (so that parallel local brokers never compete for one fixed port).
    With ``data_dir``, the persistence database is kept there instead.
    """
    template = _WEBSOCKETS.sub(
        "" if ws_port is None else (lambda m: f"listener {ws_port} {bind}\n{m[1]}"), template
    )
    line = f"listener {port} {bind}"
    text = (
        _LISTENER.sub(line, template, count=1)
        if _LISTENER.search(template)
        else f"{line}\n{template}"
    )
    if data_dir is not None:
        location = f"persistence_location {data_dir.resolve()}/"
        text = (
            _PERSISTENCE.sub(location, text)
            if _PERSISTENCE.search(text)
            else f"{text}\n{location}\n"
        )
    return text


def prepare_data_dir(path: Path) -> Path:
    """Create the persistence folder so the broker can write it.

    Started as root, mosquitto drops to the ``mosquitto`` user: the folder is handed to
    that user and its parent made traversable, instead of running the broker as root.
    """
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("mosquitto")
        except KeyError:
            return path
        os.chown(path, owner.pw_uid, owner.pw_gid)
        parent = path.parent
        parent.chmod(parent.stat().st_mode | 0o711)
    return path


def find_mosquitto() -> str:
    """Return the path of the ``mosquitto`` binary.

    Raises:
        BrokerUnavailableError: It is not installed (the message says how to install it).
    """
    for candidate in (
        shutil.which("mosquitto"),
        "/usr/sbin/mosquitto",
        "/usr/local/sbin/mosquitto",
    ):
        if candidate and Path(candidate).exists():
            return candidate
    raise BrokerUnavailableError(
        "mosquitto is not installed: on Debian/Ubuntu run "
        "'apt-get install mosquitto mosquitto-clients'"
    )


def mosquitto_command(config: Path) -> list[str]:
    """The command line that runs mosquitto with ``config``, its log flushed line by line.

    Mosquitto block-buffers stdout when it is a file; ``stdbuf -oL`` (coreutils) makes
    logs appear as they happen. stdbuf execs mosquitto, so the pid stays the broker's.
    """
    binary = find_mosquitto()
    stdbuf = shutil.which("stdbuf")
    prefix = [stdbuf, "-oL"] if stdbuf else []
    return [*prefix, binary, "-c", str(config)]


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(host: str, port: int, timeout: float) -> None:
    """Wait until ``host:port`` accepts TCP connections.

    Raises:
        BrokerUnavailableError: Not within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        time.sleep(0.05)
    raise BrokerUnavailableError(
        f"nothing accepts connections on {host}:{port} after {timeout:g} s"
    )


class LocalMosquitto:
    """A mosquitto process on 127.0.0.1, configured from the repository's ``mosquitto.conf``.

    Args:
        config: Path of the configuration template.
        port: The port to listen on; a free one when omitted.
        ws_port: The port of the websockets listener; none when omitted.
    """

    def __init__(
        self, config: Path, *, port: int | None = None, ws_port: int | None = None
    ) -> None:
        self.config = config
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.ws_port = ws_port
        self._dir = tempfile.TemporaryDirectory(prefix="mqttpush-broker-")
        self.log_path = Path(self._dir.name) / "mosquitto.log"
        self.data_dir = Path(self._dir.name) / "data"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> Self:
        """Start mosquitto and wait until it accepts connections."""
        conf = Path(self._dir.name) / "mosquitto.conf"
        data = prepare_data_dir(self.data_dir)
        conf.write_text(
            render_config(
                self.config.read_text(),
                port=self.port,
                bind=self.host,
                data_dir=data,
                ws_port=self.ws_port,
            )
        )
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(  # noqa: S603 - fixed binary, our own config
                mosquitto_command(conf), stdout=log, stderr=subprocess.STDOUT
            )
        try:
            wait_for_port(self.host, self.port, timeout)
            if self.ws_port is not None:
                wait_for_port(self.host, self.ws_port, timeout)
        except BrokerUnavailableError:
            self.stop()
            tail = self.log_path.read_text(errors="replace")[-2000:]
            raise BrokerUnavailableError(
                f"mosquitto did not start on port {self.port}: {tail}"
            ) from None
        return self

    def wait_for_save(self, timeout: float) -> None:
        """Wait until the broker writes its database again (autosave), then return.

        Raises:
            BrokerUnavailableError: No save within ``timeout`` seconds.
        """
        marker = "Saving in-memory database"
        before = self.log_path.read_text(errors="replace").count(marker)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.log_path.read_text(errors="replace").count(marker) > before:
                return
            time.sleep(0.05)
        raise BrokerUnavailableError(f"mosquitto saved no database within {timeout:g} s")

    def kill(self) -> None:
        """Kill the process at once (SIGKILL), as a crash would."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def stop(self) -> None:
        """Stop the process this object started (SIGTERM, then SIGKILL after 5 s)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()

    def close(self) -> None:
        """Stop the process and remove its files."""
        self.stop()
        self._dir.cleanup()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
