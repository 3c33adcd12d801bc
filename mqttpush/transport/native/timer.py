"""The timer of one connection: keep alive driven by what is received, and PUBACK deadlines.

Choices that are not obvious:

- A PINGREQ goes out when nothing was *received* for the keep alive (or nothing sent,
  as MQTT requires), so a client that keeps publishing to a broker that went silent
  still asks it; no answer within half the keep alive ends the connection. A dead
  broker is noticed about 1.5 keep alives after it last spoke.
- While the socket is not read (the inbox is full), silence means nothing: the PINGRESP
  may be waiting, unread, in the socket.
- PUBACK deadlines are checked by this one timer, not an ``asyncio.timeout`` per
  publish; a timed-out publish keeps its packet id until the broker answers, so an id
  is never reused while the broker may still hold it. Three publishes in a row without
  an acknowledgement in time end the connection: the broker stopped answering.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mqttpush.transport.native.flow import Flow
from mqttpush.transport.native.packets import encode_pingreq

if TYPE_CHECKING:
    import asyncio

__all__ = ["NO_ACK", "TIMEOUTS_IN_A_ROW", "Timer"]

NO_ACK = -1  # the result a timed-out PUBACK future gets
TIMEOUTS_IN_A_ROW = 3  # publishes without an acknowledgement in time that end a connection


class Timer(Flow):
    """Keep alive and PUBACK deadlines of one connection, on one periodic timer."""

    __slots__ = ("_timer", "ack_timeout", "keepalive", "ping_sent_at", "timeouts")

    def __init__(self, loop: asyncio.AbstractEventLoop, where: str) -> None:
        super().__init__(loop, where)
        self.keepalive = 0.0
        self.ack_timeout = 10.0
        self.ping_sent_at: float | None = None
        self.timeouts = 0  # publishes in a row not acknowledged in time
        self._timer: asyncio.TimerHandle | None = None

    def start_timer(self, keepalive: float, ack_timeout: float) -> None:
        """Start the timer: ``keepalive`` seconds (0: none), PUBACKs due in ``ack_timeout``."""
        self.keepalive = keepalive
        self.ack_timeout = ack_timeout
        self._timer = self.loop.call_later(self._interval(), self._tick)

    def stop_timer(self) -> None:
        """Stop the timer (the connection ended)."""
        if self._timer is not None:
            self._timer.cancel()

    def _interval(self) -> float:
        """Timer period: a quarter of the keep alive, and a tenth of the PUBACK timeout."""
        period = self.ack_timeout / 10
        if self.keepalive:
            period = min(period, self.keepalive / 4)
        return max(period, 0.01)

    def note_timeout(self) -> bool:
        """Count a publish not acknowledged (or not even written) in time.

        Returns:
            Whether that ended the connection.
        """
        self.timeouts += 1
        if self.timeouts >= TIMEOUTS_IN_A_ROW and self.lost is None:
            self.drop(f"no acknowledgement for {self.timeouts} publishes in a row")
            return True
        return False

    def drop(self, cause: str) -> None:
        """End the connection at once because of ``cause``."""
        raise NotImplementedError

    def _tick(self) -> None:
        if self.lost is not None:
            return
        now = self.loop.time()
        period = self._interval()
        keepalive = self.keepalive
        if keepalive:
            sent_at = self.ping_sent_at
            if sent_at is not None:
                silent = now - max(sent_at, self.last_received)
                if not self.reading_paused and silent >= keepalive / 2:
                    self.drop(f"no PINGRESP within {keepalive / 2:g} s")
                    return
            elif (
                now - self.last_received >= keepalive - period
                or now - self.last_sent >= keepalive - period
            ):
                self.send(encode_pingreq())  # the next tick may come up to a period late
                self.ping_sent_at = now
        for future, deadline in self.pending.values():  # in send order: oldest first
            if deadline > now:
                break
            if not future.done():
                future.set_result(NO_ACK)
                if self.note_timeout():
                    return
        self._timer = self.loop.call_later(period, self._tick)
