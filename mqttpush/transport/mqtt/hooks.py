"""Hooks into the paho client under aiomqtt, for what aiomqtt does not expose."""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Any, Protocol

from paho.mqtt.enums import MQTTErrorCode

from mqttpush.transport.mqtt.convert import code_of

if TYPE_CHECKING:
    from collections.abc import Callable

    import aiomqtt

    from mqttpush.transport.gate import ReadGate

__all__ = ["PahoEvents", "inflight_limit", "install_hooks"]

_BURST = 64  # packets read in one readable event at most, so other work is not starved


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

    read = _reader(client, gate)

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
    paho.on_socket_register_write, paho.on_socket_unregister_write = _writer(client, loop)


def _reader(client: aiomqtt.Client, gate: ReadGate) -> Callable[[], None]:
    """The socket reader that replaces aiomqtt's, behind ``gate``."""
    paho = client._client

    def read() -> None:
        """Read what the socket holds, behind the gate: up to a burst of packets at once.

        aiomqtt's own reader takes one packet per readable event (paho reads one at a
        time), so each message cost a loop iteration and went on alone: its handler's
        receipt and PUBACK too. Read in bursts, a burst's receipts go in one message.
        """
        try:
            for _ in range(_BURST):
                if gate.paused or paho._sock is None:
                    break
                rc = paho._packet_read()
                if rc == MQTTErrorCode.MQTT_ERR_AGAIN:
                    sock: Any = paho._sock
                    if not (hasattr(sock, "pending") and sock.pending() > 0):
                        break  # all read (a TLS socket may hold decrypted bytes still)
                elif rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    paho._loop_rc_handle(rc)  # what loop_read does on an error
                    break
        except Exception as exc:  # noqa: BLE001 - the connection broke; aiomqtt says how
            if not client._disconnected.done():
                client._disconnected.set_exception(exc)

    return read


def _writer(
    client: aiomqtt.Client, loop: asyncio.AbstractEventLoop
) -> tuple[Callable[..., None], Callable[..., None]]:
    """Paho's "register write" callbacks: write what it queued at the end of the iteration.

    aiomqtt adds a socket writer for each packet paho queues and removes it once written
    (two ``epoll_ctl`` calls and a loop iteration per packet). Writing the packets queued
    in one iteration at its end needs none of that; only a socket that cannot take them
    all gets aiomqtt's writer, which finishes the writing.
    """
    paho = client._client
    aiomqtt_register, aiomqtt_unregister = (
        paho.on_socket_register_write,
        paho.on_socket_unregister_write,
    )
    thread = threading.get_ident()
    waiting = [False]  # aiomqtt's writer is on: the socket was full

    def flush() -> None:
        try:
            paho.loop_write()
        except Exception as exc:  # noqa: BLE001 - the connection broke; aiomqtt says how
            if not client._disconnected.done():
                client._disconnected.set_exception(exc)
            return
        if paho.want_write() and paho._sock is not None and aiomqtt_register is not None:
            waiting[0] = True
            aiomqtt_register(paho, None, paho._sock)  # the socket is full: wait for it

    def register(*_: Any) -> None:  # noqa: ANN401 - paho's callback arguments
        if threading.get_ident() == thread:
            loop.call_soon(flush)
        else:  # paho connects from an executor thread
            loop.call_soon_threadsafe(flush)

    def unregister(*args: Any) -> None:  # noqa: ANN401 - paho's callback arguments
        if waiting[0] and aiomqtt_unregister is not None:
            waiting[0] = False
            aiomqtt_unregister(*args)

    return register, unregister


def inflight_limit(client: aiomqtt.Client) -> int:
    """QoS 1 publishes paho keeps in flight at once; it queues the rest, in order."""
    return int(getattr(client._client, "_max_inflight_messages", 20)) or 65_535
