"""``mqttpush secure init|rotate``: the secure profile's material for the configured agents."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mqttpush.address import Topics
from mqttpush.errors import ConfigurationError
from mqttpush.tools.security.identities import Identity, demo_identities
from mqttpush.tools.security.material import Material, create_material, rotate_password

if TYPE_CHECKING:
    from pathlib import Path

    from mqttpush.settings import Settings

__all__ = ["configured_identities", "secure_command", "write_env_files"]


def configured_identities(settings: Settings) -> list[Identity]:
    """The identities of the configured agents (the seed's sender and receiver).

    The ``client`` identity is the operator's: ``mqttpush run`` and ``mqttpush call``
    may call either agent.
    """
    demo = settings.demo
    identities = demo_identities(demo.sender_address, demo.receiver_address)
    return [
        Identity("client", calls=(demo.receiver_address, demo.sender_address))
        if identity.name == "client"
        else identity
        for identity in identities
    ]


def write_env_files(material: Material, identities: list[Identity]) -> None:
    """Write ``NAME.env``: the ``MQTTPUSH_BROKER__*`` variables that make a process NAME.

    Paths are written as the directory was given (relative paths stay relative), so the
    same files serve local processes and containers that mount the directory alike.
    """
    for identity in identities:
        name = identity.name
        lines = [
            f"MQTTPUSH_BROKER__USERNAME={name}",
            f"MQTTPUSH_BROKER__PASSWORD_FILE={material.password_path(name)}",
            f"MQTTPUSH_BROKER__CA_FILE={material.ca_cert}",
            f"MQTTPUSH_BROKER__CERT_FILE={material.cert(name)}",
            f"MQTTPUSH_BROKER__KEY_FILE={material.key(name)}",
        ]
        path = material.directory / f"{name}.env"
        path.write_text("\n".join(lines) + "\n")
        path.chmod(0o600)


def secure_command(
    settings: Settings, action: str, identity: str | None, directory: Path, *, force: bool
) -> int:
    """Run ``secure init`` or ``secure rotate IDENTITY``; return the exit code.

    Raises:
        ConfigurationError: ``rotate`` without an identity, or the material cannot be made.
    """
    identities = configured_identities(settings)
    topics = Topics(settings.topic_prefix)
    if action == "init":
        material = create_material(directory, identities, topics, force=force)
        write_env_files(material, identities)
        names = ", ".join(i.name for i in identities)
        print(
            f"secure material in {directory}: CA, server certificate, and for {names}: "
            "a certificate, a password and NAME.env; passwords file and ACL rewritten"
        )
        return 0
    if identity is None:
        raise ConfigurationError("secure rotate needs the identity whose password to replace")
    rotate_password(directory, identity, identities, topics)
    print(
        f"new password for {identity} in {directory / (identity + '.password')}; "
        "restart the broker (or send it SIGHUP) and the processes of that identity"
    )
    return 0
