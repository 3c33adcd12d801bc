"""A Mosquitto process for the secure profile, for tests and local mode.

``mosquitto-secure.conf`` names its material under ``/mosquitto/secure/``, where
compose mounts it; a local process gets the same file with those paths pointed at
the generated directory, and the listener rewritten as :mod:`mqttpush.tools.devbroker` does.
"""

from __future__ import annotations

import os
import pwd
import signal
import stat
from typing import TYPE_CHECKING, Self

from mqttpush.errors import ConfigurationError
from mqttpush.settings import BrokerSettings
from mqttpush.tools.devbroker import LocalMosquitto, render_config

if TYPE_CHECKING:
    from pathlib import Path

    from mqttpush.tools.security.material import Material

__all__ = [
    "SECURE_MOUNT",
    "SecureMosquitto",
    "check_reachable",
    "client_settings",
    "closed_folder",
    "render_secure_config",
]

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
        secure_dir: The material written by :func:`~mqttpush.tools.security.create_material`.
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
        check_reachable(self.secure_dir)
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


def closed_folder(directory: Path) -> Path | None:
    """The first folder above ``directory`` the ``mosquitto`` user cannot enter, if any.

    Started as root, Mosquitto drops to that user before it reads its files, so every
    folder on the way must let it through. Nothing is changed: the caller says what to do.
    """
    if os.geteuid() != 0:
        return None
    try:
        user = pwd.getpwnam("mosquitto")
    except KeyError:
        return None  # no such user: mosquitto keeps running as root and reads everything
    for folder in reversed(directory.resolve().parents):
        info = folder.stat()
        if info.st_uid == user.pw_uid:
            allowed = info.st_mode & stat.S_IXUSR
        elif info.st_gid == user.pw_gid:
            allowed = info.st_mode & stat.S_IXGRP
        else:
            allowed = info.st_mode & stat.S_IXOTH
        if not allowed:
            return folder
    return None


def check_reachable(directory: Path) -> None:
    """Refuse, naming the folder, material that a broker started as root could not read.

    Raises:
        ConfigurationError: A folder above ``directory`` is closed to the mosquitto user.
    """
    folder = closed_folder(directory)
    if folder is not None:
        raise ConfigurationError(
            f"the broker cannot read {directory}: it runs as the mosquitto user, which "
            f"cannot enter {folder}. Keep the run folder somewhere it can reach "
            f"(e.g. make start RUN_DIR=/var/tmp/mqttpush), or allow it: chmod o+x {folder}"
        )


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
