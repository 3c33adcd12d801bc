"""Transports: the one seam between mqttpush and an MQTT client library."""

from mqttpush.transport.base import Message, Transport
from mqttpush.transport.memory import MemoryBroker, MemoryTransport

__all__ = ["MemoryBroker", "MemoryTransport", "Message", "Transport"]
