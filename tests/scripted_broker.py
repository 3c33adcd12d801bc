"""A scripted MQTT 5 broker for tests: a small asyncio server speaking raw packets.

It does on demand what Mosquitto will not: hold back acknowledgements, lower Receive
Maximum or Maximum Packet Size, refuse with a chosen reason code, stay silent to
PINGREQ, stop reading its socket, send DISCONNECT with any reason code, resume a
session, or send packets that break MQTT 5. It records every packet it receives, so a
test can check what the client sent (a DISCONNECT's reason code, a DUP flag, ...).
It listens on 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mqttpush.errors import ConnectionLostError
from mqttpush.settings import BrokerSettings
from mqttpush.transport.native import NativeTransport
from mqttpush.transport.native.packets import PacketReader, decode_publish, encode_varint

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from mqttpush.connection import Connection
    from mqttpush.transport.base import Message

CONNECT, PUBLISH, PUBACK, SUBSCRIBE, PINGREQ, DISCONNECT = 1, 3, 4, 8, 12, 14


def connack(reason: int = 0, props: bytes = b"", *, session_present: bool = False) -> bytes:
    """A CONNACK packet."""
    body = bytes([int(session_present), reason]) + encode_varint(len(props)) + props
    return b"\x20" + encode_varint(len(body)) + body


def string(text: str | bytes) -> bytes:
    """An MQTT string: two-byte length, then the bytes."""
    data = text.encode() if isinstance(text, str) else text
    return len(data).to_bytes(2, "big") + data


def publish(
    topic: str | bytes, payload: bytes = b"x", *, qos: int = 0, packet_id: int = 1,
    props: bytes = b"", first: int | None = None,
) -> bytes:  # fmt: skip
    """A PUBLISH packet, built byte by byte so that it can break the rules on purpose."""
    variable = string(topic) + (packet_id.to_bytes(2, "big") if qos else b"")
    body = variable + encode_varint(len(props)) + props + payload
    head = (0x30 | qos << 1) if first is None else first
    return bytes([head]) + encode_varint(len(body)) + body


def disconnect(reason: int, props: bytes = b"") -> bytes:
    """A DISCONNECT packet with a reason code."""
    body = bytes([reason]) + encode_varint(len(props)) + props
    return b"\xe0" + encode_varint(len(body)) + body


@dataclass
class Packet:
    """One packet the scripted broker received."""

    first: int
    body: bytes
    connection: int

    @property
    def kind(self) -> int:
        return self.first >> 4


@dataclass
class ScriptedBroker:
    """Answers CONNECT, SUBSCRIBE, PUBLISH and PINGREQ as told; records what it receives.

    Attributes:
        connacks: The CONNACK for each connection in turn (the last one repeats); an
            empty one sends nothing.
        after_connack: Bytes sent right after the CONNACK (say, a DISCONNECT 0x89).
        ack_publishes: Answer each QoS 1 PUBLISH with a PUBACK.
        answer_pings: Answer PINGREQ with PINGRESP.
        hang_up_after_connack: Close each connection right after its CONNACK.
    """

    connacks: list[bytes] = field(default_factory=lambda: [connack()])
    after_connack: bytes = b""
    ack_publishes: bool = True
    puback_reason: int = 0
    suback_reason: int = 1
    answer_pings: bool = True
    hang_up_after_connack: bool = False
    received: list[Packet] = field(default_factory=list)
    unacked: list[int] = field(default_factory=list)
    most_unacked: int = 0
    reused_ids: int = 0
    publishes: int = 0
    connections: int = 0
    port: int = 0
    writers: list[asyncio.StreamWriter] = field(default_factory=list)
    reading: asyncio.Event = field(default_factory=asyncio.Event)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    _server: asyncio.Server | None = None

    def __post_init__(self) -> None:
        self.reading.set()  # cleared: the broker stops reading its socket

    async def __aenter__(self) -> ScriptedBroker:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.hang_up()
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    def settings(self, **values: object) -> BrokerSettings:
        return BrokerSettings(host="127.0.0.1", port=self.port, **values)

    @property
    def kinds(self) -> list[int]:
        return [packet.kind for packet in self.received]

    def of_kind(self, kind: int) -> list[Packet]:
        return [packet for packet in self.received if packet.kind == kind]

    def send(self, data: bytes) -> None:
        """Write ``data`` to the latest connection."""
        if self.writers:
            self.writers[-1].write(data)

    def hang_up(self) -> None:
        for writer in self.writers:
            writer.close()

    def ack_all(self) -> None:
        for packet_id in self.unacked:
            self.send(b"\x40\x02" + packet_id.to_bytes(2, "big"))
        self.unacked.clear()

    async def until(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        """Wait until ``predicate()`` holds (checked whenever a packet arrives)."""
        async with asyncio.timeout(timeout):
            while not predicate():
                self.changed.clear()
                await self.changed.wait()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        connection = self.connections
        self.writers.append(writer)
        frames = PacketReader()
        with contextlib.suppress(ConnectionError):
            while (await self.reading.wait()) and (data := await reader.read(65_536)):
                for first, body in frames.feed(data):
                    self._answer(first, bytes(body), writer, connection)
                await writer.drain()
        self.changed.set()

    def _answer(self, first: int, body: bytes, writer: asyncio.StreamWriter, number: int) -> None:
        kind = first >> 4
        self.received.append(Packet(first, body, number))
        self.changed.set()
        if kind == CONNECT:
            packet = self.connacks[min(number, len(self.connacks)) - 1]
            if packet:
                writer.write(packet + self.after_connack)
                if self.hang_up_after_connack:
                    writer.close()
        elif kind == PUBLISH:
            self.publishes += 1
            packet_id = decode_publish(first, body, 0.0, 0).mid
            if not packet_id:
                return
            if self.ack_publishes:
                reason = b"" if self.puback_reason == 0 else bytes([self.puback_reason, 0])
                head = b"\x40" + bytes([2 + len(reason)])
                writer.write(head + packet_id.to_bytes(2, "big") + reason)
            else:
                self.reused_ids += packet_id in self.unacked
                self.unacked.append(packet_id)
                self.most_unacked = max(self.most_unacked, len(self.unacked))
        elif kind == SUBSCRIBE:  # SUBACK with the same packet id
            writer.write(b"\x90\x04" + body[:2] + b"\x00" + bytes([self.suback_reason]))
        elif kind == PINGREQ and self.answer_pings:
            writer.write(b"\xd0\x00")


class Reader:
    """Reads a transport's messages in a task, acknowledging each unless told not to."""

    def __init__(self, transport: NativeTransport, *, ack: bool = True) -> None:
        self.transport = transport
        self.ack = ack
        self.messages: list[Message] = []
        self.error: ConnectionLostError | None = None
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Reader:
        self._task = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _read(self) -> None:
        try:
            async for message in self.transport.messages():
                if self.ack:
                    await self.transport.ack(message)
                self.messages.append(message)
                self._changed.set()
        except ConnectionLostError as exc:
            self.error = exc
            self._changed.set()

    async def until(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        """Wait until ``predicate()`` holds, checking after each message (bounded in time)."""
        async with asyncio.timeout(timeout):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

    @property
    def payloads(self) -> list[bytes]:
        """The payloads read so far."""
        return [message.payload for message in self.messages]

    async def until_lost(self, timeout: float = 10.0) -> ConnectionLostError:
        async with asyncio.timeout(timeout):
            while self.error is None:
                await asyncio.sleep(0.02)
        return self.error


@contextlib.asynccontextmanager
async def running(connection: Connection) -> AsyncIterator[Connection]:
    """Open ``connection`` and keep it up in a task (it routes nothing); close it after."""
    await connection.open()
    task = asyncio.create_task(connection.run(_nothing, lambda _exc: None))
    try:
        yield connection
    finally:
        connection.closing = True
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await connection.transport.disconnect()


async def _nothing(_message: Message) -> None:
    return None


@contextlib.asynccontextmanager
async def client(broker: ScriptedBroker, **values) -> AsyncIterator[NativeTransport]:
    transport = NativeTransport(broker.settings(**values))
    await transport.connect()
    try:
        yield transport
    finally:
        await transport.disconnect()


def disconnect_codes(broker: ScriptedBroker) -> list[int]:
    """The reason codes of the DISCONNECTs the client sent (0 for the short form)."""
    return [p.body[0] if p.body else 0 for p in broker.of_kind(DISCONNECT)]


@contextlib.asynccontextmanager
async def connected(settings: BrokerSettings) -> AsyncIterator[NativeTransport]:
    """A native transport connected with ``settings``, disconnected on exit."""
    transport = NativeTransport(settings)
    await transport.connect()
    try:
        yield transport
    finally:
        await transport.disconnect()
