"""The push endpoints registered per task, kept in memory and in the agent's store."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from mqttpush.models import TaskPushNotificationConfig
    from mqttpush.store import TaskStore

__all__ = ["Endpoints"]

log = logging.getLogger(__name__)


class Endpoints:
    """Registrations by task id, then address (several endpoints per task).

    Args:
        store: Where registrations are kept durably.
    """

    def __init__(self, store: Callable[[], TaskStore]) -> None:
        self._store = store
        self._by_task: dict[str, dict[str, TaskPushNotificationConfig]] = {}

    def __len__(self) -> int:
        return len(self._by_task)

    @property
    def store(self) -> TaskStore:
        """Where registrations are kept."""
        return self._store()

    def of(self, task_id: str) -> list[TaskPushNotificationConfig]:
        """The endpoints of a task, in registration order."""
        return list(self._by_task.get(task_id, {}).values())

    async def add(self, config: TaskPushNotificationConfig, *, durable: bool = True) -> None:
        """Register (or replace, by address) an endpoint of a task."""
        self._by_task.setdefault(config.task_id, {})[config.address] = config
        if durable:
            await self._store().save_endpoint(config)

    async def load(self, task_id: str) -> None:
        """Take back a task's registrations from the store (after a restart)."""
        for config in await self._store().endpoints(task_id):
            await self.add(config, durable=False)

    async def forget(self, task_id: str) -> None:
        """Drop a task's registrations (it has ended)."""
        self._by_task.pop(task_id, None)
        await self._store().forget_endpoints(task_id)

    async def bound(self, limit: int, known: Callable[[str], bool]) -> None:
        """Forget the oldest registrations of tasks not ``known`` (never run) beyond ``limit``."""
        for task_id in list(self._by_task):
            if len(self._by_task) <= limit:
                return
            if not known(task_id):
                await self.forget(task_id)
                log.warning("endpoints of task %s dropped: the task never ran", task_id)
