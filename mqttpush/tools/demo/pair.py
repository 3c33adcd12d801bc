"""The seed's two agents in one process, each on its own connection, as tests start them."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from mqttpush.fabric import Fabric
from mqttpush.tools.demo.receiver import PushReceiver
from mqttpush.tools.demo.sender import PushSender

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from mqttpush.settings import Settings

__all__ = ["expected_notifications", "seed_agents"]


def expected_notifications(count: int = 9) -> list[str]:
    """The messages a receiver collects from a sender of ``count`` notifications."""
    return [f"Notification #{i}" for i in range(1, count + 1)]


@contextlib.asynccontextmanager
async def seed_agents(
    settings: Settings, *, count: int = 9, interval: float = 0.0, task_timeout: float = 30
) -> AsyncIterator[tuple[PushSender, PushReceiver]]:
    """Serve a :class:`PushSender` and a :class:`PushReceiver` at the settings' addresses."""
    demo = settings.demo
    async with Fabric(settings) as sender_fabric, Fabric(settings) as receiver_fabric:
        sender = await sender_fabric.serve(
            PushSender(count=count, interval=interval), demo.sender_address
        )
        receiver = await receiver_fabric.serve(
            PushReceiver(demo.sender_address, task_timeout=task_timeout), demo.receiver_address
        )
        yield sender, receiver
