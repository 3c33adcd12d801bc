"""The transport seam: neutral message type and the interface every transport implements.

Nothing above this seam sees the MQTT client library; nothing below it sees JSON-RPC.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import asyncio
    from collections.abc import AsyncIterator

    from mqttpush.servers import Server

__all__ = ["Message", "Transport"]


@dataclass(frozen=True, slots=True)
class Message:
    """One MQTT 5 message with the properties mqttpush uses.

    Attributes:
        topic: The topic published to.
        payload: The raw payload bytes.
        qos: Quality of service, 0, 1 or 2.
        retain: The retain flag.
        content_type: MQTT 5 Content Type.
        correlation_data: MQTT 5 Correlation Data.
        response_topic: MQTT 5 Response Topic.
        message_expiry: MQTT 5 Message Expiry Interval in seconds (remaining, on receipt).
        user_properties: MQTT 5 User Properties, in order.
        received_at: ``time.monotonic()`` when the transport took the message in.
        mid: The packet id of a received QoS 1/2 message, needed to acknowledge it.
        generation: Which connection of the transport it arrived on; an acknowledgement
            only makes sense on that same connection.
        bulk: Notification traffic, sent behind control traffic (requests, replies,
            receipts): a transport publishes it after the control messages waiting with it,
            within a share of the broker's Receive Maximum that leaves room for them.
    """

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False
    content_type: str | None = None
    correlation_data: bytes | None = None
    response_topic: str | None = None
    message_expiry: int | None = None
    user_properties: tuple[tuple[str, str], ...] = ()
    received_at: float = field(default_factory=time.monotonic, compare=False)
    mid: int = field(default=0, compare=False)
    generation: int = field(default=0, compare=False)
    bulk: bool = field(default=False, compare=False)

    def user_property(self, key: str) -> str | None:
        """Return the first user property named ``key``, if any."""
        for name, value in self.user_properties:
            if name == key:
                return value
        return None

    def __repr__(self) -> str:
        return f"Message(topic={self.topic!r}, qos={self.qos}, payload={len(self.payload)} bytes)"


class Transport(ABC):
    """A connection to a broker that can be opened again after it drops.

    Implementations translate their library's errors, in one place each, into
    :class:`~mqttpush.errors.BrokerUnavailableError` (on ``connect``),
    :class:`~mqttpush.errors.ConnectionLostError` (anywhere after, with the broker's
    reason code when it gave one), :class:`~mqttpush.errors.PacketRefusedError` (a
    packet not sent) and :class:`~mqttpush.errors.BrokerRefusedError` (a refusal by
    reason code, :func:`mqttpush.transport.reasons.check_refusal`).

    Attributes:
        will: The Will message sent with every CONNECT (set it before connecting); the
            broker publishes it if the connection ends without a DISCONNECT.
    """

    will: Message | None = None

    @property
    @abstractmethod
    def client_id(self) -> str:
        """The MQTT client identifier of this connection."""

    @property
    @abstractmethod
    def is_connected(self) -> bool:
        """Whether the connection is up now."""

    @property
    def where(self) -> str:
        """Where the broker is (``host:port``), for messages."""
        return "the broker"

    @property
    def persistent(self) -> bool:
        """Whether the broker keeps this client's session while it is away."""
        return False

    @property
    def session_present(self) -> bool:
        """Whether the broker resumed a stored session on the last connect."""
        return False

    def use(self, server: Server) -> None:  # noqa: B027 - only brokers with addresses need it
        """Connect to ``server`` from the next :meth:`connect` on (failover between nodes).

        Transports with no broker address (in memory) ignore it.
        """

    @abstractmethod
    async def connect(self) -> None:
        """Open the connection (again)."""

    @abstractmethod
    async def disconnect(self) -> None:
        """Close the connection; safe to call when already closed."""

    @abstractmethod
    async def subscribe(self, topic_filter: str, qos: int = 1) -> None:
        """Subscribe to ``topic_filter``."""

    @abstractmethod
    async def publish(self, message: Message) -> bool:
        """Publish ``message``; for QoS 1 and 2, return once the broker has acknowledged it.

        Returns:
            False when the broker said no subscriber (nor stored session) matched.
        """

    def start_publish(self, message: Message) -> asyncio.Future[bool] | None:
        """Start publishing ``message`` without a task awaiting it, if this transport can.

        The message is sent in its turn (behind the publishes waiting before it); the
        future gets what :meth:`publish` would have returned, or its exception. A sender
        of many notifications thus needs no task per publish.

        Returns:
            None when this transport cannot, or not now (not connected, or it would
            first have to wait for its socket): await :meth:`publish` instead.
        """
        return None

    async def ack(self, message: Message) -> None:  # noqa: B027 - acknowledging is optional
        """Acknowledge a received QoS 1/2 message (PUBACK) once it has been handled.

        Transports that acknowledge on receipt need not override this. A message from
        an earlier connection is not acknowledged: the broker redelivers it.
        """

    def buffered(self) -> int:
        """Messages received and not yet taken from :meth:`messages`.

        The message loop serves requests among them before receipts and notifications;
        a transport that cannot tell says 0 (each message is then handled as it comes).
        """
        return 0

    @abstractmethod
    def messages(self) -> AsyncIterator[Message]:
        """Yield inbound messages until the connection drops (then raise ConnectionLostError)."""
