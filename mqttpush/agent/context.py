"""What a running background task sees: its id, its params, a way to push notifications."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from mqttpush.agent.task import TaskRunner
    from mqttpush.models import PushNotification

__all__ = ["TaskContext"]


class TaskContext:
    """What a running task sees: its id, its params, and a way to push notifications.

    Args:
        runner: The task.
        push: Publishes one notification of the task to its endpoints.
    """

    def __init__(
        self,
        runner: TaskRunner,
        push: Callable[[TaskRunner, str, dict[str, Any] | None], Awaitable[PushNotification]],
    ) -> None:
        self._runner = runner
        self._push = push

    @property
    def task_id(self) -> str:
        """The task's id."""
        return self._runner.task_id

    @property
    def params(self) -> dict[str, Any]:
        """The params given to ``run_task`` (empty when none)."""
        return self._runner.params or {}

    async def push(self, message: str, data: dict[str, Any] | None = None) -> PushNotification:
        """Publish a notification to every endpoint registered for this task.

        Raises:
            TaskStateError: The task has already ended (e.g. was canceled).
            ConnectionLostError: The broker connection is down.
        """
        self._runner.check_can_push()
        return await self._push(self._runner, message, data)
