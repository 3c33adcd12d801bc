"""The tasks an agent knows: created, found, and the oldest finished ones forgotten."""

from __future__ import annotations

import collections
from typing import TYPE_CHECKING, Any

import pydantic_core

from mqttpush.agent.task import TaskRunner
from mqttpush.errors import TaskNotFoundError

if TYPE_CHECKING:
    from mqttpush.store import StoredTask

__all__ = ["TaskRegistry"]


class TaskRegistry:
    """The tasks of one agent by id; finished ones are kept up to a bound.

    Args:
        max_finished: Finished tasks kept for status queries; older ones are dropped.
        max_finished_bytes: JSON bytes of the params and results of the finished tasks
            kept; past it, the oldest are dropped too.
    """

    def __init__(self, max_finished: int = 10_000, max_finished_bytes: int = 16 << 20) -> None:
        self._tasks: dict[str, TaskRunner] = {}
        self._finished: collections.deque[tuple[str, int]] = collections.deque()
        self._max_finished = max_finished
        self._max_finished_bytes = max_finished_bytes
        self._finished_bytes = 0

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

    def unfinished(self) -> list[TaskRunner]:
        """The tasks not ended yet."""
        return [runner for runner in self._tasks.values() if not runner.state.is_terminal]

    def discard(self, runner: TaskRunner) -> None:
        """Forget a task that never started (its first save failed), so its id can be run again."""
        if self._tasks.get(runner.task_id) is runner:
            del self._tasks[runner.task_id]

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

    @property
    def finished_bytes(self) -> int:
        """JSON bytes of the params, results and errors of the finished tasks kept."""
        return self._finished_bytes

    def _ended(self, runner: TaskRunner) -> list[str]:
        """Count a task as finished; return the ids of the oldest finished ones dropped."""
        size = _json_size(runner.params) + runner.result_bytes + _json_size(runner.error)
        self._finished.append((runner.task_id, size))
        self._finished_bytes += size
        forgotten: list[str] = []
        while len(self._finished) > self._max_finished or (
            self._finished_bytes > self._max_finished_bytes and len(self._finished) > 1
        ):  # the task that just ended stays: its caller is about to ask for its result
            task_id, dropped = self._finished.popleft()
            self._finished_bytes -= dropped
            forgotten.append(task_id)
            self._tasks.pop(task_id, None)
        return forgotten


def _json_size(value: Any) -> int:  # noqa: ANN401 - any JSON value or model
    return 0 if value is None else len(pydantic_core.to_json(value, fallback=repr))
