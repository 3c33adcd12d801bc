"""Hooks into the paho client under aiomqtt, for what aiomqtt does not expose."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Protocol

from mqttpush.transport.mqtt.convert import code_of

if TYPE_CHECKING:
    import aiomqtt

    from mqttpush.transport.gate import ReadGate

__all__ = ["PahoEvents", "inflight_limit", "install_hooks"]


class PahoEvents(Protocol):
    """What the transport hears from paho through the hooks."""

    def connected(self, session_present: bool) -> None:  # noqa: FBT001 - paho's flag
        """The broker's CONNACK accepted the connection."""

    def acknowledged(self, mid: int, reason_code: int) -> None:
        """The broker's PUBACK for publish ``mid`` arrived."""

    def disconnected(self, reason_code: int | None, server_reference: str | None) -> None:
        """The connection ended: the reason code of the broker's DISCONNECT, if it sent one."""


def install_hooks(client: aiomqtt.Client, gate: ReadGate, events: PahoEvents) -> None:
    """Reach the paho client under aiomqtt for what aiomqtt does not expose.

    Manual acknowledgement (PUBACK after handling, so an unhandled message is
    redelivered), the CONNACK's session-present flag, the DISCONNECT's Server
    Reference, and a socket reader that ``gate`` can stop. aiomqtt keeps the paho
    client in ``_client`` and its end in ``_disconnected``; this module is the one
    place that depends on that. ``events`` hears what the hooks learn.
    """
    paho = client._client
    loop = asyncio.get_running_loop()

    def read() -> None:  # what aiomqtt's own reader does, behind the gate
        try:
            while True:
                paho.loop_read()
                sock: Any = paho._sock
                if not (hasattr(sock, "pending") and sock.pending() > 0):
                    break
        except Exception as exc:  # noqa: BLE001 - the connection broke; aiomqtt says how
            if not client._disconnected.done():
                client._disconnected.set_exception(exc)

    aiomqtt_socket_open = paho.on_socket_open

    def on_socket_open(*args: Any) -> None:  # noqa: ANN401 - paho's callback arguments
        if aiomqtt_socket_open is not None:
            aiomqtt_socket_open(*args)  # schedules aiomqtt's reader; the gate replaces it
        loop.call_soon_threadsafe(gate.attach, args[2].fileno(), read)

    paho.on_socket_open = on_socket_open
    aiomqtt_on_message = paho.on_message

    def on_message(*args: Any) -> None:  # noqa: ANN401 - paho's callback arguments
        if aiomqtt_on_message is not None:
            aiomqtt_on_message(*args)
        gate.add(len(args[2].payload))

    paho.on_message = on_message
    aiomqtt_on_disconnect = paho.on_disconnect

    def on_disconnect(*args: Any) -> None:  # noqa: ANN401 - paho's callback arguments
        gate.detach()
        flags, reason, props = args[2], args[3], args[4] if len(args) > 4 else None  # noqa: PLR2004
        # paho gives a drop without DISCONNECT a reason code too (0x80): not the broker's.
        from_broker = getattr(flags, "is_disconnect_packet_from_server", False)
        events.disconnected(
            code_of(reason) if from_broker else None, getattr(props, "ServerReference", None)
        )
        if aiomqtt_on_disconnect is not None:
            aiomqtt_on_disconnect(*args)

    paho.on_disconnect = on_disconnect
    paho.manual_ack_set(True)  # noqa: FBT003 - paho's signature
    aiomqtt_on_connect = paho.on_connect

    def on_connect(*args: Any) -> None:  # noqa: ANN401 - paho's callback arguments
        flags = args[2]
        events.connected(bool(getattr(flags, "session_present", False)))
        if aiomqtt_on_connect is not None:
            aiomqtt_on_connect(*args)

    paho.on_connect = on_connect
    aiomqtt_on_publish = paho.on_publish

    def on_publish(*args: Any) -> None:  # noqa: ANN401 - paho's callback arguments
        mid, reason = args[2], args[3]
        events.acknowledged(mid, code_of(reason) or 0)
        if aiomqtt_on_publish is not None:
            aiomqtt_on_publish(*args)

    paho.on_publish = on_publish


def inflight_limit(client: aiomqtt.Client) -> int:
    """QoS 1 publishes paho keeps in flight at once; it queues the rest, in order."""
    return int(getattr(client._client, "_max_inflight_messages", 20)) or 65_535
