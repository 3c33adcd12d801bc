"""What a running background task sees: its id, its params, a way to push notifications."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from mqttpush.errors import TaskStateError

if TYPE_CHECKING:
    from mqttpush.agent.background import BackgroundTaskAgent
    from mqttpush.agent.tasks import TaskRecord
    from mqttpush.models import PushNotification

__all__ = ["TaskContext"]


class TaskContext:
    """What a running task sees: its id, its params, and a way to push notifications."""

    def __init__(self, agent: BackgroundTaskAgent, record: TaskRecord) -> None:
        self._agent = agent
        self._record = record

    @property
    def task_id(self) -> str:
        """The task's id."""
        return self._record.task_id

    @property
    def params(self) -> dict[str, Any]:
        """The params given to ``run_task`` (empty when none)."""
        return self._record.params or {}

    async def push(self, message: str, data: dict[str, Any] | None = None) -> PushNotification:
        """Publish a notification to every endpoint registered for this task.

        Raises:
            TaskStateError: The task has already ended (e.g. was canceled).
            ConnectionLostError: The broker connection is down.
        """
        if self._record.cancel_requested:
            # A cancellation can be lost inside a library's wait_for (Python 3.11);
            # refusing to push makes sure a canceled task never pushes again.
            raise asyncio.CancelledError
        if self._record.state.is_terminal:
            raise TaskStateError(
                f"task {self.task_id} is {self._record.state}: no more notifications"
            )
        return await self._agent.push(self._record, message, data)
