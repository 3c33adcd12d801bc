"""The client's half of an MQTT session: QoS 1 publishes the broker has not acknowledged.

A persistent client (fixed client id, Clean Start 0) keeps them across connections and,
when the broker resumes the session, sends them again first, with the DUP flag and their
original packet ids, as MQTT 5 requires [MQTT-4.4.0-1]. The caller of a publish that was
in flight when the connection dropped still gets :class:`~mqttpush.errors.ConnectionLostError`
(mqttpush publishes again above the transport); the resend only makes the transport
conformant on its own. A copy may therefore arrive twice: QoS 1 is at least once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import asyncio

    from mqttpush.transport.native.link import Link

__all__ = ["Session"]

_DUP = 0x08  # the DUP flag in a PUBLISH's first byte


def _retrieved(future: asyncio.Future[int]) -> None:
    """Nobody waits for a resent publish: mark its outcome seen."""
    if not future.cancelled():
        future.exception()


class Session:
    """Unacknowledged QoS 1 publishes of one client id, by packet id, in send order.

    Bounded by what may be in flight: the broker's Receive Maximum, and publishes whose
    acknowledgement timed out (their packet ids stay taken until the broker answers).
    """

    __slots__ = ("unacked",)

    def __init__(self) -> None:
        self.unacked: dict[int, bytes] = {}

    def resume(self, link: Link, *, session_present: bool) -> None:
        """Attach to a new connection; resend everything if the broker kept the session."""
        if not session_present:
            self.unacked.clear()  # the broker forgot them: mqttpush publishes again above
        link.session = self.unacked
        deadline = link.loop.time() + link.ack_timeout
        for packet_id, packet in self.unacked.items():
            future: asyncio.Future[int] = link.loop.create_future()
            future.add_done_callback(_retrieved)
            link.pending[packet_id] = (future, deadline)
            link.send(bytes((packet[0] | _DUP,)) + packet[1:])
