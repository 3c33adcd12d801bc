"""PushSender: runs a task that pushes ``Notification #1`` .. ``#N`` to registered endpoints."""

from __future__ import annotations

import asyncio
import logging

from mqttpush.agent.background import BackgroundTaskAgent, TaskContext

__all__ = ["PushSender"]

log = logging.getLogger("mqttpush.tools.demo.sender")


class PushSender(BackgroundTaskAgent):
    """Sends ``count`` notifications, ``interval`` seconds apart, for each task it runs.

    Notification ``i`` carries the data ``{"n": i, "parity": "odd" | "even"}``.

    Args:
        count: Notifications per task (the seed sends 9).
        interval: Seconds between two notifications (the seed waits 0.2 s).
    """

    resumable = True  # in a pool, a dead copy's task runs again on another copy

    def __init__(
        self, *, count: int = 9, interval: float = 0.2, max_concurrency: int | None = None
    ) -> None:
        super().__init__(max_concurrency=max_concurrency)
        self.count = count
        self.interval = interval

    async def run_background_task(self, task: TaskContext) -> dict[str, int]:
        """Push the notifications; the result says how many were sent.

        A task's params may ask for another number: ``{"count": 50}``.
        """
        log.info("PushSender running task %s", task.task_id)
        wanted = task.params.get("count", self.count)
        count = wanted if isinstance(wanted, int) and wanted >= 0 else self.count
        for i in range(1, count + 1):
            if i > 1 and self.interval > 0:
                await asyncio.sleep(self.interval)
            parity = "even" if i % 2 == 0 else "odd"  # something for endpoints to filter on
            sent = await task.push(f"Notification #{i}", {"n": i, "parity": parity})
            log.info(
                "PushSender sent notification {task_id: '%s', message: '%s'}",
                sent.task_id,
                sent.message,
            )
        log.info("PushSender completed task %s", task.task_id)
        return {"sent": count}
