"""Who may connect to the secure broker, and what each identity may do.

An :class:`Identity` is one MQTT user name with its grants, stated in agent
addresses rather than topics; :mod:`mqttpush.tools.security.acl` turns them into topics.
"""

from __future__ import annotations

from dataclasses import dataclass

from mqttpush.address import Address, check_level
from mqttpush.errors import ConfigurationError

__all__ = ["Identity", "demo_identities", "unique_names"]


@dataclass(frozen=True)
class Identity:
    """One MQTT user name and what it is allowed to do.

    Attributes:
        name: The MQTT user name (and client certificate CN); a valid topic level.
        address: The agent address this identity serves (takes requests and
            notifications for), if any.
        calls: Agent addresses whose ``rpc`` topic it may publish requests to.
        pushes_to: Agent addresses it may publish notifications to.
        receipts_to: Agent addresses it may publish delivery receipts to.
        read_all: A read-only observer of everything under the topic prefix
            (``mosquitto_sub``, ``mqttpush watch``).
    """

    name: str
    address: str | None = None
    calls: tuple[str, ...] = ()
    pushes_to: tuple[str, ...] = ()
    receipts_to: tuple[str, ...] = ()
    read_all: bool = False

    def __post_init__(self) -> None:
        check_level(self.name, "identity name")
        if ":" in self.name:  # the password file separates user and hash with ':'
            raise ConfigurationError(f"identity name {self.name!r} must not contain ':'")
        # Parsing here makes a bad address fail when the identity is declared,
        # not halfway through writing the ACL.
        for value in (self.address, *self.calls, *self.pushes_to, *self.receipts_to):
            if value is not None:
                Address.parse(value)


def unique_names(identities: list[Identity]) -> list[str]:
    """Return the identities' names in order.

    Raises:
        ConfigurationError: Two identities share a name.
    """
    names = [identity.name for identity in identities]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ConfigurationError(f"identity names must be unique; repeated: {duplicates}")
    return names


def demo_identities(sender: str, receiver: str) -> list[Identity]:
    """The identities of the seed scenario.

    ``sender`` serves the sender and pushes to the receiver; ``receiver`` serves the
    receiver, calls the sender and sends it receipts; ``client`` only calls the
    receiver; ``watch`` only reads.

    Args:
        sender: The sender agent's address (``sender@fame.fabric``).
        receiver: The receiver agent's address.
    """
    return [
        Identity("sender", address=sender, pushes_to=(receiver,)),
        Identity("receiver", address=receiver, calls=(sender,), receipts_to=(sender,)),
        Identity("client", calls=(receiver,)),
        Identity("watch", read_all=True),
    ]
