"""What a running background task sees: its id, its params, a way to push notifications."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mqttpush.models import Priority

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from pydantic import BaseModel

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
        push: Callable[..., Awaitable[PushNotification]],
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

    async def push(
        self,
        message: str,
        data: dict[str, Any] | BaseModel | None = None,
        *,
        priority: Priority | str = Priority.NORMAL,
    ) -> PushNotification:
        """Publish a notification to every endpoint registered for this task.

        Endpoints whose filter refuses it get nothing. When an endpoint's delivery
        window is full, higher priorities go out first.

        Args:
            message: Human-readable text.
            data: Structured detail: a dict, or a model instance. When the agent
                declares ``notification_schema``, it must match that model.
            priority: ``low``, ``normal`` (the default), ``high`` or ``urgent``.

        Raises:
            InvalidNotificationError: ``data`` does not match the agent's schema, or the
                priority is unknown (nothing is published).
            TaskStateError: The task has already ended (e.g. was canceled).
            ConnectionLostError: The broker connection is down.
        """
        self._runner.check_can_push()
        return await self._push(self._runner, message, data, priority=priority)
