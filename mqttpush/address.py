"""Agent addresses and the MQTT topics they map to.

An address ``name@domain`` (``sender@fame.fabric``) owns the topic base
``{prefix}/{domain}/{name}``; under it live ``rpc`` (requests to the agent),
``push/{task_id}`` (notifications for the agent) and ``ack`` (receipts for the
notifications the agent sent). Callers receive replies on
``{prefix}/_reply/{client_id}/{correlation_id}``.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from mqttpush.errors import InvalidAddressError

__all__ = ["DEFAULT_PREFIX", "Address", "Topics", "check_level", "check_prefix", "is_mqtt_text"]

DEFAULT_PREFIX = "mqttpush/v1"
_FORBIDDEN = frozenset("/+#\x00")
_NOT_IN_LEVEL = re.compile(r"[/+#\x00\s]")  # _FORBIDDEN or whitespace (as str.isspace)
_MAX_LEVEL = 256  # far below MQTT's 65,535-byte topic limit, and enough for any name


def is_mqtt_text(value: str) -> bool:
    """Whether ``value`` is fit for an MQTT string that brokers accept.

    MQTT forbids U+0000 and discourages control characters and non-characters;
    Mosquitto disconnects a client that sends them in a topic or a property.
    """
    if value.isascii():  # the common case, checked in C: no control characters
        return value.isprintable()
    return not any(
        unicodedata.category(c) in ("Cc", "Cs") or _is_noncharacter(ord(c)) for c in value
    )


def _is_noncharacter(code: int) -> bool:
    return code in _NONCHARACTERS or (code & _PLANE_END_MASK) == _PLANE_END_MASK


_NONCHARACTERS = frozenset(range(0xFDD0, 0xFDF0))
_PLANE_END_MASK = 0xFFFE  # U+xxFFFE and U+xxFFFF in every plane


def check_level(value: str, what: str) -> str:
    """Return ``value`` if it can stand as one MQTT topic level, else raise.

    Args:
        value: The candidate level, such as an agent name or a task id.
        what: What the value is, for the error message.

    Raises:
        InvalidAddressError: Empty, too long, containing ``/``, ``+``, ``#``, NUL or
            whitespace, or starting with ``$`` (reserved by brokers).
    """
    if type(value) is str and value in _valid_levels:
        return value
    if not value:
        raise InvalidAddressError(f"{what} must not be empty")
    if len(value) > _MAX_LEVEL:
        raise InvalidAddressError(f"{what} is longer than {_MAX_LEVEL} characters")
    if _NOT_IN_LEVEL.search(value):
        bad = sorted({c for c in value if c in _FORBIDDEN or c.isspace()})
        raise InvalidAddressError(
            f"{what} {value!r} contains characters not allowed in a topic level: {bad!r}"
        )
    if not is_mqtt_text(value):
        raise InvalidAddressError(f"{what} {value!r} contains control characters or non-characters")
    if value.startswith("$"):
        raise InvalidAddressError(
            f"{what} {value!r} must not start with '$' (reserved by MQTT brokers)"
        )
    if len(_valid_levels) >= _LEVELS_KEPT:
        _valid_levels.clear()
    _valid_levels.add(value)
    return value


# Levels checked lately: the same names and task ids come in every message of a task.
_LEVELS_KEPT = 4096
_valid_levels: set[str] = set()


def check_prefix(prefix: str) -> str:
    """Return ``prefix`` if every level of it is a valid topic level, else raise."""
    for level in prefix.split("/"):
        check_level(level, f"topic prefix level in {prefix!r}")
    return prefix


@dataclass(frozen=True, slots=True)
class Address:
    """An agent's logical address, ``name@domain``.

    Attributes:
        name: The agent's name, e.g. ``sender``.
        domain: The agent's domain, e.g. ``fame.fabric``.
    """

    name: str
    domain: str

    def __post_init__(self) -> None:
        check_level(self.name, "agent name")
        check_level(self.domain, "agent domain")
        if "@" in self.name or "@" in self.domain:
            raise InvalidAddressError(f"{self.name}@{self.domain}: '@' may appear only once")

    @classmethod
    def parse(cls, value: str | Address) -> Address:
        """Parse ``name@domain``.

        Raises:
            InvalidAddressError: The text is not exactly one ``@`` between two valid levels.
        """
        if isinstance(value, Address):
            return value
        if not isinstance(value, str):
            raise InvalidAddressError(f"an address must be a string, not {type(value).__name__}")
        name, sep, domain = value.partition("@")
        if not sep:
            raise InvalidAddressError(f"address {value!r} must have the form name@domain")
        return cls(name, domain)

    def __str__(self) -> str:
        return f"{self.name}@{self.domain}"


@dataclass(frozen=True, slots=True)
class Topics:
    """Topic naming under one prefix; the only place topic strings are built."""

    prefix: str = DEFAULT_PREFIX

    def __post_init__(self) -> None:
        check_prefix(self.prefix)

    def base(self, address: Address) -> str:
        """Return ``{prefix}/{domain}/{name}``."""
        return f"{self.prefix}/{address.domain}/{address.name}"

    def rpc(self, address: Address) -> str:
        """Return the topic the agent at ``address`` takes requests on."""
        return f"{self.base(address)}/rpc"

    def push_base(self, address: Address) -> str:
        """Return the topic under which ``address`` receives notifications (without task id)."""
        return f"{self.base(address)}/push"

    def push(self, address: Address, task_id: str) -> str:
        """Return the topic for notifications of ``task_id`` sent to ``address``."""
        return f"{self.push_base(address)}/{check_level(task_id, 'task id')}"

    def receipts(self, address: Address) -> str:
        """Return the topic on which ``address`` receives delivery receipts."""
        return f"{self.base(address)}/ack"

    def card(self, address: Address) -> str:
        """Return the topic of the retained presence card of the agent at ``address``."""
        return f"{self.base(address)}/card"

    @property
    def cards(self) -> str:
        """Return the filter matching every agent's presence card under the prefix."""
        return f"{self.prefix}/+/+/card"

    @property
    def reply_root(self) -> str:
        """Return ``{prefix}/_reply``: every caller's reply topics live under it."""
        return f"{self.prefix}/_reply"

    def reply_base(self, client_id: str, username: str | None = None) -> str:
        """Return the reply-topic base of one caller (subscribe to ``base + '/+'``).

        A caller with a user name gets ``{prefix}/_reply/{username}/{client_id}``, so a
        broker ACL can let each identity read its own replies only (``_reply/{user}/#``).
        """
        client = check_level(client_id, "client id")
        if username is None:
            return f"{self.reply_root}/{client}"
        return f"{self.reply_root}/{check_level(username, 'user name')}/{client}"
