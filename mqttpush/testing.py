"""A kit for testing agents: an in-memory broker, a collecting endpoint, a bounded wait.

Tests of an application (and mqttpush's own) use it instead of writing these again::

    broker = MemoryBroker()
    async with Fabric(settings, transport=broker.transport()) as fabric:
        collector = await fabric.serve(Collector(), "c@test.fabric")
        ...
        await eventually(lambda: len(collector.got) == 3)

The in-memory broker routes by topic filter and keeps MQTT 5 properties, but it is no
replacement for Mosquitto: run the same tests against a real broker too.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from mqttpush.agent.base import Agent
from mqttpush.transport.memory import MemoryBroker, MemoryTransport

if TYPE_CHECKING:
    from collections.abc import Callable

    from mqttpush.models import PushNotification

__all__ = ["Collector", "MemoryBroker", "MemoryTransport", "eventually"]


class Collector(Agent):
    """A push endpoint that records every notification it is sent, in arrival order.

    Args:
        fail_first: How many notifications its handler fails (raises) before it starts
            recording, to test what a sender does with a failing endpoint.
    """

    def __init__(self, fail_first: int = 0) -> None:
        super().__init__()
        self.got: list[PushNotification] = []
        self.fail_first = fail_first

    async def on_message(self, notification: PushNotification) -> None:
        """Record ``notification`` (or fail, while ``fail_first`` lasts)."""
        if self.fail_first > 0:
            self.fail_first -= 1
            raise RuntimeError("handler bug")
        self.got.append(notification)


async def eventually(
    predicate: Callable[[], bool], timeout: float = 10.0, *, interval: float = 0.02
) -> None:
    """Wait until ``predicate()`` holds, checking every ``interval`` seconds.

    Raises:
        TimeoutError: It did not hold within ``timeout`` seconds.
    """
    async with asyncio.timeout(timeout):
        # Polling is the point: the predicate is any expression, with no event to wait on.
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(interval)
