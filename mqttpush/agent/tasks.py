"""The tasks an agent knows: created, found, and the oldest finished ones forgotten."""

from __future__ import annotations

import collections
from typing import TYPE_CHECKING, Any

from mqttpush.agent.task import TaskRunner
from mqttpush.errors import TaskNotFoundError

if TYPE_CHECKING:
    from mqttpush.store import StoredTask

__all__ = ["TaskRegistry"]


class TaskRegistry:
    """The tasks of one agent by id; finished ones are kept up to a bound.

    Args:
        max_finished: Finished tasks kept for status queries; older ones are dropped.
    """

    def __init__(self, max_finished: int = 10_000) -> None:
        self._tasks: dict[str, TaskRunner] = {}
        self._finished: collections.deque[str] = collections.deque()
        self._max_finished = max_finished

    def __len__(self) -> int:
        return len(self._tasks)

    @property
    def running(self) -> int:
        """How many tasks have not ended."""
        return len(self._tasks) - len(self._finished)

    @property
    def max_finished(self) -> int:
        """How many finished tasks are kept."""
        return self._max_finished

    def restore(self, stored: StoredTask) -> TaskRunner:
        """Take back an unfinished task from a store after a restart (to be ended)."""
        runner = self._tasks[stored.task_id] = TaskRunner.from_stored(stored, on_end=self._ended)
        return runner

    def create(self, task_id: str, params: dict[str, Any] | None = None) -> tuple[TaskRunner, bool]:
        """Return the task with this id, creating it if new; the flag says whether it was."""
        runner = self._tasks.get(task_id)
        if runner is not None:
            return runner, False
        runner = self._tasks[task_id] = TaskRunner(task_id, params, on_end=self._ended)
        return runner, True

    def find(self, task_id: str) -> TaskRunner | None:
        """Return the task with this id, or None."""
        return self._tasks.get(task_id)

    def get(self, task_id: str) -> TaskRunner:
        """Return the task with this id.

        Raises:
            TaskNotFoundError: Unknown, or finished long enough ago to be forgotten.
        """
        runner = self._tasks.get(task_id)
        if runner is None:
            raise TaskNotFoundError(data={"task_id": task_id})
        return runner

    def _ended(self, runner: TaskRunner) -> list[str]:
        """Count a task as finished; return the ids of the oldest finished ones dropped."""
        self._finished.append(runner.task_id)
        forgotten: list[str] = []
        while len(self._finished) > self._max_finished:
            forgotten.append(self._finished.popleft())
            self._tasks.pop(forgotten[-1], None)
        return forgotten
