"""One task's life, in one owner: its state, its running work, its cancel flag, its numbers.

Allowed changes: submitted -> working | failed | canceled; working -> completed |
failed | canceled. Nothing changes after a terminal state. A task is converted to the
store's shape (:meth:`TaskRunner.to_stored`, :meth:`TaskRunner.from_stored`) and to the
wire's (:meth:`TaskRunner.status`) here and nowhere else.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pydantic_core

from mqttpush.errors import TaskStateError
from mqttpush.models import TaskState, TaskStatus, utc_now
from mqttpush.store import StoredTask

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from mqttpush.models import DeliveryState, ErrorInfo

__all__ = ["TaskRunner"]

_ALLOWED: dict[TaskState, frozenset[TaskState]] = {
    TaskState.SUBMITTED: frozenset({TaskState.WORKING, TaskState.FAILED, TaskState.CANCELED}),
    TaskState.WORKING: frozenset({TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELED}),
}
_SEQ_BLOCK = 100  # sequence numbers reserved (saved) at a time


class TaskRunner:
    """The one owner of a task's state, running work, cancel flag and sequence numbers.

    Args:
        task_id: The task's id.
        params: The params given to ``run_task``.
        on_end: Told when the task reaches a terminal state; returns the ids of finished
            tasks no longer kept (see :class:`~mqttpush.agent.tasks.TaskRegistry`).
    """

    def __init__(
        self,
        task_id: str,
        params: dict[str, Any] | None = None,
        *,
        on_end: Callable[[TaskRunner], list[str]] | None = None,
    ) -> None:
        self.task_id = task_id
        self.params = params
        self._state = TaskState.SUBMITTED
        # A result is kept as its JSON: one compact object, not a tree of small ones (a
        # list of 200,000 strings is 3 to 4 times its JSON size as Python objects).
        self._result_json: bytes | None = None
        self.result_stored = False  #: the result was left to the store (see leave_result)
        self._error: ErrorInfo | None = None
        self.created_at: datetime = utc_now()
        self._updated_at: datetime | None = None
        self.done = asyncio.Event()
        self._handle: asyncio.Task[Any] | None = None
        self._cancel_requested = False
        self._pushed = 0
        self._seq_reserved = 0  # sequence numbers up to here may have been used (saved)
        self._on_end = on_end

    @classmethod
    def from_stored(
        cls, stored: StoredTask, *, on_end: Callable[[TaskRunner], list[str]] | None = None
    ) -> TaskRunner:
        """The task a store kept (after a restart: to be ended, or to report its status)."""
        runner = cls(stored.task_id, stored.params, on_end=on_end)
        runner._state = stored.state
        runner._keep_result(stored.result)
        runner._error = stored.error
        runner.created_at = stored.created_at
        runner._updated_at = stored.updated_at
        runner._pushed = runner._seq_reserved = stored.pushed
        if stored.state.is_terminal:
            runner.done.set()
        return runner

    def to_stored(self) -> StoredTask:
        """The durable snapshot of this task."""
        return StoredTask(
            task_id=self.task_id,
            state=self._state,
            params=self.params,
            result=self.result,
            error=self._error,
            created_at=self.created_at,
            updated_at=self.updated_at,
            pushed=max(self._pushed, self._seq_reserved),
        )

    def status(self, deliveries: dict[DeliveryState, int] | None = None) -> TaskStatus:
        """The wire snapshot of this task, with its deliveries counted by state."""
        return TaskStatus(
            task_id=self.task_id,
            state=self._state,
            result=self.result,
            error=self._error,
            created_at=self.created_at,
            updated_at=self.updated_at,
            deliveries=deliveries or {},
        )

    @property
    def state(self) -> TaskState:
        """Where the task is in its life."""
        return self._state

    @property
    def result(self) -> Any:  # noqa: ANN401 - the task's JSON result
        """The result of a completed task (None otherwise), decoded from its JSON."""
        return None if self._result_json is None else pydantic_core.from_json(self._result_json)

    @property
    def result_bytes(self) -> int:
        """Bytes of the result's JSON (0 without a result)."""
        return 0 if self._result_json is None else len(self._result_json)

    def leave_result(self) -> None:
        """Drop the result here once the store has it: status is then read from the store."""
        self._result_json = None
        self.result_stored = True

    def _keep_result(self, result: Any) -> None:  # noqa: ANN401 - a JSON value
        self._result_json = None if result is None else pydantic_core.to_json(result)

    @property
    def error(self) -> ErrorInfo | None:
        """Why the task failed, if it did."""
        return self._error

    @property
    def updated_at(self) -> datetime:
        """When the task last changed."""
        return self._updated_at or self.created_at

    @property
    def pushed(self) -> int:
        """Notifications numbered so far (the last ``seq`` used)."""
        return self._pushed

    @property
    def cancel_requested(self) -> bool:
        """Whether ``cancel_task`` asked this task to stop."""
        return self._cancel_requested

    def transition(
        self,
        state: TaskState,
        *,
        result: Any = None,  # noqa: ANN401 - JSON result of a completed task
        error: ErrorInfo | None = None,
    ) -> list[str]:
        """Move to ``state``; return the ids of finished tasks no longer kept.

        Raises:
            TaskStateError: The change is not allowed (always so after a terminal state).
        """
        if state not in _ALLOWED.get(self._state, frozenset()):
            raise TaskStateError(f"task {self.task_id}: {self._state} -> {state} is not allowed")
        self._state = state
        self._updated_at = utc_now()
        if state is TaskState.COMPLETED:
            self._keep_result(result)
        self._error = error
        if not state.is_terminal:
            return []
        self._handle = None
        self.done.set()
        return self._on_end(self) if self._on_end is not None else []

    def attach(self, handle: asyncio.Task[Any]) -> None:
        """Record the asyncio task running this task's work."""
        self._handle = handle

    def abandon(self) -> None:
        """Stop the work without ending the task here: another process owns it now."""
        if self._handle is not None:
            self._handle.cancel()

    def request_cancel(self) -> asyncio.Task[Any] | None:
        """Mark the task as asked to stop; return the running work to cancel, if any."""
        self._cancel_requested = True
        return self._handle

    def check_can_push(self) -> None:
        """Refuse a notification from a task that is stopping or has ended.

        Raises:
            CancelledError: Cancellation was asked for (a cancellation can be lost inside
                a library's wait_for on Python 3.11: refusing here makes sure a canceled
                task never pushes again).
            TaskStateError: The task has ended.
        """
        if self._cancel_requested:
            raise asyncio.CancelledError
        if self._state.is_terminal:
            raise TaskStateError(f"task {self.task_id} is {self._state}: no more notifications")

    def next_seq(self) -> tuple[int, bool]:
        """Take the next notification number; the flag says the task must be saved first.

        Numbers are reserved in blocks, saved once a block: after a restart the final
        notification continues past every number that may have been sent.
        """
        self._pushed += 1
        if self._pushed <= self._seq_reserved:
            return self._pushed, False
        self._seq_reserved = self._pushed + _SEQ_BLOCK - 1
        return self._pushed, True
