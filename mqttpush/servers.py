"""Broker addresses: the ``broker.servers`` list, and MQTT 5 Server References.

An entry is ``host``, ``host:port``, ``[v6-address]:port``, ``mqtt://host:port`` or
``mqtts://host:port`` (TLS; port 8883 unless given). Every entry must be a node of the
same broker cluster (or a front to it): a client moves between them with its session.
"""

from __future__ import annotations

from typing import NamedTuple
from urllib.parse import urlsplit

__all__ = ["Server", "parse_server", "parse_servers"]

_DEFAULT_PORT = {"mqtt": 1883, "mqtts": 8883}


class Server(NamedTuple):
    """One broker node to connect to.

    Attributes:
        host: Name or IP address.
        port: TCP port.
        tls: Whether ``mqtts://`` asked for TLS (the ``broker.tls`` settings apply too).
    """

    host: str
    port: int
    tls: bool = False

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'mqtts' if self.tls else 'mqtt'}://{host}:{self.port}"


def parse_server(text: str, *, default_port: int = 1883) -> Server:
    """Read one broker address.

    Raises:
        ValueError: Not an address, an unknown scheme, or a port out of range.
    """
    text = text.strip()
    scheme = "mqtt"
    if "://" in text:
        scheme = text.partition("://")[0].lower()
        if scheme not in _DEFAULT_PORT:
            raise ValueError(f"broker {text!r}: scheme {scheme!r} is not mqtt or mqtts")
        default_port = _DEFAULT_PORT[scheme]
    else:
        text = f"mqtt://{text}"
    parts = urlsplit(text)
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"broker {text!r}: {exc}") from None
    if not parts.hostname or parts.path not in ("", "/") or parts.query or parts.username:
        raise ValueError(f"broker {text!r} is not host, host:port or mqtt[s]://host:port")
    return Server(parts.hostname, port or default_port, tls=scheme == "mqtts")


def parse_servers(value: str | list[str]) -> list[Server]:
    """Read a list of broker addresses: a list, or one string separated by commas or spaces.

    Raises:
        ValueError: An entry that :func:`parse_server` refuses.
    """
    items = value.replace(",", " ").split() if isinstance(value, str) else value
    return [parse_server(item) for item in items if item.strip()]
