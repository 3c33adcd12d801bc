"""Transports: the one seam between mqttpush and an MQTT client library."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mqttpush.transport.base import Message, Transport
from mqttpush.transport.memory import MemoryBroker, MemoryTransport

if TYPE_CHECKING:
    from mqttpush.settings import BrokerSettings

__all__ = ["MemoryBroker", "MemoryTransport", "Message", "Transport", "create_transport"]


def create_transport(settings: BrokerSettings) -> Transport:
    """The MQTT transport ``settings.client`` names: ``native`` (default) or ``aiomqtt``.

    Each is imported only when chosen, so a process pays for one client only.
    """
    if settings.client == "aiomqtt":
        from mqttpush.transport.mqtt import MqttTransport  # noqa: PLC0415 - chosen at run time

        return MqttTransport(settings)
    from mqttpush.transport.native import NativeTransport  # noqa: PLC0415

    return NativeTransport(settings)
