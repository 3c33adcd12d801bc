"""The secure profile's generated material, kept in one directory (``.run/secure``).

Files: ``ca.crt``/``ca.key`` (development CA), ``server.crt``/``server.key`` (the
broker), per identity ``NAME.crt``, ``NAME.key`` and ``NAME.password`` (the clear
password), and the broker's ``passwords`` and ``acl``. Secrets are created once and
kept; ``passwords`` and ``acl`` are derived from the identities and the clear
passwords each time, so running :func:`create_material` again changes no secret.
"""

from __future__ import annotations

import os
import pwd
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mqttpush.errors import ConfigurationError
from mqttpush.tools.security import certs
from mqttpush.tools.security.acl import render_acl
from mqttpush.tools.security.identities import unique_names
from mqttpush.tools.security.passwords import (
    hash_password,
    new_password,
    parse_password_file,
    password_file,
    verify_password,
)

if TYPE_CHECKING:
    from pathlib import Path

    from mqttpush.address import Topics
    from mqttpush.tools.security.identities import Identity

__all__ = ["Material", "broker_group", "create_material", "rotate_password"]

_RESERVED = frozenset({"ca", "server"})  # their .crt/.key would overwrite the CA's or broker's


@dataclass(frozen=True)
class Material:
    """Paths of the material in one directory.

    Attributes:
        directory: The directory holding everything.
    """

    directory: Path

    @property
    def ca_cert(self) -> Path:
        """The development CA's certificate (clients and broker trust it)."""
        return self.directory / "ca.crt"

    @property
    def ca_key(self) -> Path:
        """The CA's private key (signs the other certificates)."""
        return self.directory / "ca.key"

    @property
    def server_cert(self) -> Path:
        """The broker's certificate."""
        return self.directory / "server.crt"

    @property
    def server_key(self) -> Path:
        """The broker's private key."""
        return self.directory / "server.key"

    @property
    def passwords(self) -> Path:
        """The Mosquitto ``password_file``."""
        return self.directory / "passwords"

    @property
    def acl(self) -> Path:
        """The Mosquitto ``acl_file``."""
        return self.directory / "acl"

    def cert(self, name: str) -> Path:
        """The client certificate of identity ``name``."""
        return self.directory / f"{name}.crt"

    def key(self, name: str) -> Path:
        """The client key of identity ``name``."""
        return self.directory / f"{name}.key"

    def password_path(self, name: str) -> Path:
        """The file holding the clear password of identity ``name``."""
        return self.directory / f"{name}.password"

    def password(self, name: str) -> str:
        """Return the clear password of identity ``name``."""
        return self.password_path(name).read_text().strip()


def create_material(
    directory: Path, identities: list[Identity], topics: Topics, *, force: bool = False
) -> Material:
    """Create what is missing in ``directory``, then rewrite ``passwords`` and ``acl``.

    Args:
        directory: Where the material lives; created 0700 (0750, group ``mosquitto``,
            when run as root on a machine with a ``mosquitto`` user).
        identities: Every identity that may connect.
        topics: The topic layout (prefix) the ACL is written for.
        force: Replace everything: a new CA, new certificates, new passwords.

    Raises:
        ConfigurationError: openssl is missing or failed, names repeat, or a name is
            reserved (``ca``, ``server``).
    """
    material = _prepare(directory, identities)
    m = material
    new_ca = force or not (m.ca_cert.exists() and m.ca_key.exists())
    if new_ca:
        certs.create_ca(m.ca_cert, m.ca_key)
    signer = {"ca_cert": m.ca_cert, "ca_key": m.ca_key}
    # Certificates signed by a replaced CA would no longer verify: renew them with it.
    # One that is missing, about to expire or not from this CA is renewed too.
    if new_ca or not certs.usable(m.server_cert, m.server_key, m.ca_cert):
        certs.create_server_certificate(m.server_cert, m.server_key, **signer)
    for identity in identities:
        name = identity.name
        if new_ca or not certs.usable(m.cert(name), m.key(name), m.ca_cert):
            certs.create_client_certificate(m.cert(name), m.key(name), **signer, common_name=name)
        if force or not m.password_path(name).exists():
            certs.write_private(m.password_path(name), f"{new_password()}\n".encode())
    _write_broker_files(material, identities, topics)
    return material


def rotate_password(
    directory: Path, name: str, identities: list[Identity], topics: Topics
) -> Material:
    """Give identity ``name`` a new password and rewrite ``passwords`` (and ``acl``).

    A running broker picks the change up on SIGHUP or a restart.

    Raises:
        ConfigurationError: ``name`` is not one of ``identities``, or the material of
            another identity is missing.
    """
    material = _prepare(directory, identities)
    if name not in {identity.name for identity in identities}:
        raise ConfigurationError(f"no identity named {name!r} to rotate the password of")
    certs.write_private(material.password_path(name), f"{new_password()}\n".encode())
    _write_broker_files(material, identities, topics)
    return material


def _prepare(directory: Path, identities: list[Identity]) -> Material:
    reserved = sorted(_RESERVED.intersection(unique_names(identities)))
    if reserved:
        raise ConfigurationError(f"identity names {reserved} are reserved for the CA and broker")
    directory.mkdir(parents=True, exist_ok=True)
    group = broker_group()
    if group is None:
        directory.chmod(0o700)
    else:
        os.chown(directory, -1, group)
        directory.chmod(0o750)
    return Material(directory)


def _write_broker_files(material: Material, identities: list[Identity], topics: Topics) -> None:
    m = material
    old = parse_password_file(m.passwords.read_text()) if m.passwords.exists() else {}
    entries = {}
    missing = [i.name for i in identities if not m.password_path(i.name).exists()]
    if missing:
        raise ConfigurationError(
            f"no password for {missing} in {m.directory}: run create_material first"
        )
    for identity in identities:
        clear = m.password(identity.name)
        kept = old.get(identity.name)
        # A fresh salt each run would change the file for nothing; keep a hash that
        # still matches the clear password.
        entries[identity.name] = (
            kept if kept and verify_password(clear, kept) else hash_password(clear)
        )
    certs.write_private(m.passwords, password_file(entries).encode())
    certs.write_private(m.acl, render_acl(identities, topics).encode())
    _share_with_broker(m)


def _share_with_broker(material: Material) -> None:
    """Let a broker started as root read its files after it drops to ``mosquitto``."""
    m = material
    group = broker_group()
    for path in (m.ca_cert, m.server_cert, m.server_key, m.passwords, m.acl):
        if group is None:
            path.chmod(0o600 if path in (m.server_key, m.passwords) else 0o644)
        else:
            os.chown(path, -1, group)
            path.chmod(0o640)


def broker_group() -> int | None:
    """The ``mosquitto`` user's group id when running as root and that user exists."""
    if os.geteuid() != 0:
        return None
    try:
        # Mosquitto started as root switches to this user and its primary group.
        return pwd.getpwnam("mosquitto").pw_gid
    except KeyError:
        return None
