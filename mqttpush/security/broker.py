"""A Mosquitto process for the secure profile, for tests and local mode.

``mosquitto-secure.conf`` names its material under ``/mosquitto/secure/``, where
compose mounts it; a local process gets the same file with those paths pointed at
the generated directory, and the listener rewritten as :mod:`mqttpush.devbroker` does.
"""

from __future__ import annotations

import os
import pwd
import signal
import stat
from typing import TYPE_CHECKING, Self

from mqttpush.devbroker import LocalMosquitto, render_config
from mqttpush.settings import BrokerSettings

if TYPE_CHECKING:
    from pathlib import Path

    from mqttpush.security.material import Material

__all__ = ["SECURE_MOUNT", "SecureMosquitto", "client_settings", "render_secure_config"]

SECURE_MOUNT = "/mosquitto/secure/"
"""Where the configuration expects the material (the compose mount point)."""


def render_secure_config(
    template: str, *, port: int, bind: str, secure_dir: Path, data_dir: Path | None
) -> str:
    """Return ``template`` for a local process: listener, persistence and material paths.

    Args:
        template: The text of ``mosquitto-secure.conf``.
        port: The port of the (TLS) listener.
        bind: The address to bind.
        secure_dir: The directory of the generated material.
        data_dir: Where to keep the persistence database, if not where the template says.
    """
    text = render_config(template, port=port, bind=bind, data_dir=data_dir)
    return text.replace(SECURE_MOUNT, f"{secure_dir.resolve()}/")


class SecureMosquitto(LocalMosquitto):
    """A mosquitto on 127.0.0.1 with TLS, passwords and the ACL from ``secure_dir``.

    Args:
        config: Path of the secure configuration template (``mosquitto-secure.conf``).
        secure_dir: The material written by :func:`~mqttpush.security.create_material`.
        port: The port to listen on; a free one when omitted.
    """

    def __init__(self, config: Path, secure_dir: Path, *, port: int | None = None) -> None:
        super().__init__(config, port=port)
        self.template = config
        self.secure_dir = secure_dir

    def start(self, timeout: float = 10.0) -> Self:
        """Start mosquitto and wait until it accepts (TCP) connections.

        Started as root, mosquitto drops to the ``mosquitto`` user before it reads its
        certificates, password file and ACL, so the folders above ``secure_dir`` are
        made searchable (``o+x``, no listing) for it, as pytest's 0700 ones are not.
        """
        _let_broker_reach(self.secure_dir)
        rendered = self.log_path.with_name("secure-template.conf")
        rendered.write_text(
            render_secure_config(
                self.template.read_text(),
                port=self.port,
                bind=self.host,
                secure_dir=self.secure_dir,
                data_dir=self.data_dir,
            )
        )
        # The base class renders its config again; listener and persistence are already
        # what it would write, so only the paths above differ from a plain broker.
        self.config = rendered
        return super().start(timeout)

    def reload(self) -> None:
        """Send SIGHUP: mosquitto rereads its password file and ACL."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGHUP)


def _let_broker_reach(directory: Path) -> None:
    if os.geteuid() != 0:
        return
    try:
        pwd.getpwnam("mosquitto")
    except KeyError:
        return  # no such user: mosquitto keeps running as root and reads everything
    for parent in directory.resolve().parents:
        mode = stat.S_IMODE(parent.stat().st_mode)
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)


def client_settings(
    material: Material, name: str, *, host: str = "127.0.0.1", port: int = 8883
) -> BrokerSettings:
    """Return broker settings that connect as identity ``name`` with its certificate.

    Args:
        material: The generated material.
        name: The identity (user name).
        host: The broker's host; it must be one of the server certificate's names.
        port: The broker's TLS port.
    """
    return BrokerSettings(
        host=host,
        port=port,
        tls=True,
        ca_file=material.ca_cert,
        cert_file=material.cert(name),
        key_file=material.key(name),
        username=name,
        password=material.password(name),
    )
