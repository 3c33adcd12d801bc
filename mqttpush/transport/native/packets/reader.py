"""Framing: cutting the received byte stream into packets.

Received packets come out of :class:`PacketReader` as (first byte, body) pairs; a body
is a ``memoryview`` into the received chunk, so a packet is never copied to be framed.
"""

from __future__ import annotations

from mqttpush.errors import ProtocolError
from mqttpush.transport.native.packets.wire import CONTINUATION, MAX_REMAINING_LENGTH, PacketError

_PACKET_TOO_LARGE = 0x95

__all__ = ["PacketReader"]


class PacketReader:
    """Frames a byte stream into packets: feed it chunks, get back every complete packet.

    A packet split across chunks waits in a buffer until its last byte arrives; the
    buffer is not re-scanned before then, so a large payload costs one copy. A packet
    larger than ``limit`` is refused as soon as its length is read, before any of it
    is buffered.

    Args:
        limit: The largest packet accepted, fixed header included (the client's
            Maximum Packet Size).
    """

    __slots__ = ("_buffer", "_need", "limit")

    def __init__(self, limit: int = MAX_REMAINING_LENGTH + 5) -> None:
        self._buffer = bytearray()
        self._need = 0  # bytes the buffered partial packet needs before it can be framed
        self.limit = limit

    @property
    def buffered(self) -> int:
        """Bytes held back, waiting for the rest of their packet."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[tuple[int, memoryview]]:
        """Add ``data`` and return the packets it completes, in order.

        Returns:
            (first byte, body) per packet; the body is a read-only view.

        Raises:
            ProtocolError: A remaining length longer than four bytes, or a packet over
                the limit (a :class:`PacketError` with reason 0x95).
        """
        buffer = self._buffer
        if buffer:
            buffer += data
            if len(buffer) < self._need:
                return []
            data = bytes(buffer)
            buffer.clear()
        elif type(data) is not bytes:
            data = bytes(data)  # a view must not see its source change
        view = memoryview(data)
        size = len(data)
        pos = 0
        packets: list[tuple[int, memoryview]] = []
        append = packets.append
        while size - pos >= 2:  # noqa: PLR2004 - the smallest fixed header
            first = data[pos]
            length = data[pos + 1]
            start = pos + 2
            if length >= CONTINUATION:  # a remaining length of two to four bytes
                length &= 0x7F
                shift = 7
                while True:
                    if shift > 21:  # noqa: PLR2004 - four bytes of seven bits
                        raise ProtocolError("remaining length longer than four bytes")
                    if start >= size:
                        self._keep(view, pos, size - pos + 1)
                        return packets
                    byte = data[start]
                    start += 1
                    length |= (byte & 0x7F) << shift
                    if byte < CONTINUATION:
                        break
                    shift += 7
            end = start + length
            if end - pos > self.limit:
                raise PacketError(
                    f"a packet of {end - pos} bytes exceeds this client's maximum packet "
                    f"size of {self.limit}",
                    _PACKET_TOO_LARGE,
                )
            if end > size:
                self._keep(view, pos, end - pos)
                return packets
            append((first, view[start:end]))
            pos = end
        if pos < size:
            self._keep(view, pos, 2)
        return packets

    def _keep(self, view: memoryview, pos: int, need: int) -> None:
        self._buffer += view[pos:]
        self._need = need
