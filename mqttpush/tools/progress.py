"""Live progress of ``mqttpush run`` on a terminal: notifications received of expected.

The client does not see the notifications itself (they go to the receiver agent), so
progress follows them on the wire: a second, read-only subscription to the receiver's
push topic counts each working notification once (by id) against the configured
``demo.notification_count``. One line on stderr is redrawn in place, at most ten times
a second; nothing at all is written when stderr is not a terminal.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Any, TextIO

from mqttpush import codec
from mqttpush.address import Address, Topics
from mqttpush.errors import MqttPushError, ProtocolError
from mqttpush.models import TaskState
from mqttpush.routing import acknowledged
from mqttpush.transport import create_transport

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from mqttpush.settings import Settings

__all__ = ["ProgressLine", "with_progress"]

_REDRAW = 0.1  # seconds between redraws at most


class ProgressLine:
    """One status line: ``received 3/9 notifications  4.9/s  0.6 s``.

    Args:
        out: Where to draw (a terminal).
        expected: How many notifications make the whole.
        clock: Seconds, monotonic (tests pass their own).
    """

    def __init__(
        self, out: TextIO, expected: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._out = out
        self._expected = expected
        self._clock = clock
        self._started = clock()
        self._drawn = 0.0
        self._ids: set[str] = set()

    @property
    def received(self) -> int:
        """Distinct notifications counted so far."""
        return len(self._ids)

    def count(self, notification_id: str) -> None:
        """Count a notification (a repeat of one already counted changes nothing)."""
        self._ids.add(notification_id)
        self.draw()

    def text(self) -> str:
        """The line as it reads now."""
        elapsed = self._clock() - self._started
        rate = self.received / elapsed if elapsed > 0 else 0.0
        return (
            f"received {self.received}/{self._expected} notifications  {rate:.1f}/s  "
            f"{elapsed:.1f} s"
        )

    def draw(self, *, force: bool = False) -> None:
        """Redraw the line (at most every 0.1 s, unless ``force``)."""
        now = self._clock()
        if force or now - self._drawn >= _REDRAW:
            self._drawn = now
            self._out.write(f"\r\x1b[2K{self.text()}")
            self._out.flush()

    def close(self) -> None:
        """Draw the last state and end the line."""
        self.draw(force=True)
        self._out.write("\n")
        self._out.flush()


async def _follow(settings: Settings, line: ProgressLine, subscribed: asyncio.Event) -> None:
    """Count the receiver's notifications; on any broker trouble, just stop counting.

    The client itself reports a broker problem; progress must never mask it.
    """
    receiver = Address.parse(settings.demo.receiver_address)
    transport = create_transport(settings.broker)
    try:
        await transport.connect()
        await transport.subscribe(f"{Topics(settings.topic_prefix).push_base(receiver)}/+", 1)
        subscribed.set()
        async with contextlib.aclosing(acknowledged(transport)) as messages:
            async for message in messages:
                with contextlib.suppress(ProtocolError):
                    notification = codec.decode_notification(message.payload)
                    if notification.state is TaskState.WORKING:
                        line.count(notification.id)
    except MqttPushError:
        pass  # no progress then; the work reports what went wrong
    finally:
        subscribed.set()
        with contextlib.suppress(MqttPushError):
            await transport.disconnect()


async def _tick(line: ProgressLine) -> None:
    while True:  # elapsed time moves on between notifications too
        await asyncio.sleep(_REDRAW)
        line.draw()


async def with_progress(settings: Settings, work: Callable[[], Awaitable[Any]], out: TextIO) -> Any:  # noqa: ANN401 - whatever ``work`` returns
    """Run ``work()``, drawing progress on ``out`` when it is a terminal."""
    if not out.isatty():
        return await work()
    line = ProgressLine(out, settings.demo.notification_count)
    subscribed = asyncio.Event()
    async with asyncio.TaskGroup() as group:
        following = group.create_task(_follow(settings, line, subscribed), name="mqttpush-progress")
        ticking = group.create_task(_tick(line), name="mqttpush-progress-tick")
        await subscribed.wait()
        try:
            return await work()
        finally:
            await asyncio.sleep(0.05)  # the last notifications are on their way to the counter
            following.cancel()
            ticking.cancel()
            line.close()
