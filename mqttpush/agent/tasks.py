"""Task state: the one place that owns every task's lifecycle.

Allowed changes: submitted -> working | failed | canceled; working -> completed |
failed | canceled. Nothing changes after a terminal state.
"""

from __future__ import annotations

import asyncio
import collections
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mqttpush.errors import TaskNotFoundError, TaskStateError
from mqttpush.models import ErrorInfo, TaskState, TaskStatus, utc_now

if TYPE_CHECKING:
    from datetime import datetime

    from mqttpush.store import StoredTask

__all__ = ["TaskRecord", "TaskRegistry"]

_ALLOWED: dict[TaskState, frozenset[TaskState]] = {
    TaskState.SUBMITTED: frozenset({TaskState.WORKING, TaskState.FAILED, TaskState.CANCELED}),
    TaskState.WORKING: frozenset({TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELED}),
}


@dataclass(eq=False)
class TaskRecord:
    """One task as its agent knows it. Change it only through :class:`TaskRegistry`."""

    task_id: str
    params: dict[str, Any] | None = None
    state: TaskState = TaskState.SUBMITTED
    result: Any = None
    error: ErrorInfo | None = None
    created_at: datetime = field(default_factory=utc_now)
    updated_at: datetime | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)
    runner: asyncio.Task[Any] | None = None
    cancel_requested: bool = False
    pushed: int = 0
    seq_reserved: int = 0  # sequence numbers up to here may have been used (saved)

    def status(self) -> TaskStatus:
        """Return a wire snapshot of this task."""
        return TaskStatus(
            task_id=self.task_id,
            state=self.state,
            result=self.result,
            error=self.error,
            created_at=self.created_at,
            updated_at=self.updated_at or self.created_at,
        )


class TaskRegistry:
    """Creates tasks, changes their state, and forgets the oldest finished ones.

    Args:
        max_finished: Finished tasks kept for status queries; older ones are dropped.
    """

    def __init__(self, max_finished: int = 10_000) -> None:
        self._tasks: dict[str, TaskRecord] = {}
        self._finished: collections.deque[str] = collections.deque()
        self._max_finished = max_finished

    def __len__(self) -> int:
        return len(self._tasks)

    @property
    def max_finished(self) -> int:
        """How many finished tasks are kept."""
        return self._max_finished

    def restore(self, stored: StoredTask) -> TaskRecord:
        """Take back an unfinished task from a store after a restart (to be ended)."""
        record = self._tasks[stored.task_id] = TaskRecord(
            stored.task_id,
            stored.params,
            state=stored.state,
            created_at=stored.created_at,
            updated_at=stored.updated_at,
            pushed=stored.pushed,
            seq_reserved=stored.pushed,
        )
        return record

    def create(self, task_id: str, params: dict[str, Any] | None = None) -> tuple[TaskRecord, bool]:
        """Return the task with this id, creating it if new; the flag says whether it was."""
        record = self._tasks.get(task_id)
        if record is not None:
            return record, False
        record = self._tasks[task_id] = TaskRecord(task_id, params)
        return record, True

    def find(self, task_id: str) -> TaskRecord | None:
        """Return the task with this id, or None."""
        return self._tasks.get(task_id)

    def get(self, task_id: str) -> TaskRecord:
        """Return the task with this id.

        Raises:
            TaskNotFoundError: Unknown, or finished long enough ago to be forgotten.
        """
        record = self._tasks.get(task_id)
        if record is None:
            raise TaskNotFoundError(data={"task_id": task_id})
        return record

    def transition(
        self,
        record: TaskRecord,
        state: TaskState,
        *,
        result: Any = None,  # noqa: ANN401 - JSON result of a completed task
        error: ErrorInfo | None = None,
    ) -> list[str]:
        """Move ``record`` to ``state``; return the ids of finished tasks now forgotten.

        Raises:
            TaskStateError: The change is not allowed (always so after a terminal state).
        """
        if state not in _ALLOWED.get(record.state, frozenset()):
            raise TaskStateError(f"task {record.task_id}: {record.state} -> {state} is not allowed")
        record.state = state
        record.updated_at = utc_now()
        if state is TaskState.COMPLETED:
            record.result = result
        record.error = error
        forgotten: list[str] = []
        if state.is_terminal:
            record.runner = None
            record.done.set()
            self._finished.append(record.task_id)
            while len(self._finished) > self._max_finished:
                forgotten.append(self._finished.popleft())
                self._tasks.pop(forgotten[-1], None)
        return forgotten
