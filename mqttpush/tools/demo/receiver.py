"""PushReceiver: registers itself with the sender, runs the sender's task, collects its pushes."""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import TYPE_CHECKING

from mqttpush.agent.background import BackgroundTaskAgent, TaskContext
from mqttpush.errors import MqttPushError, TaskFailedError
from mqttpush.models import TaskState, new_id

if TYPE_CHECKING:
    from mqttpush.models import PushNotification

__all__ = ["PushReceiver"]

log = logging.getLogger("mqttpush.tools.demo.receiver")


class _Collector:
    """Notifications of one sender task by sequence number; complete when gap-free to the last.

    Only each notification's message is kept (what the task returns), not the notification:
    a run of 500,000 would otherwise hold 500,000 models until the task ends.
    """

    def __init__(self) -> None:
        self.by_seq: dict[int, str] = {}
        self.last: PushNotification | None = None
        self.duplicates = 0
        self._complete = asyncio.Event()

    def add(self, notification: PushNotification) -> None:
        if notification.seq in self.by_seq or (self.last and self.last.seq == notification.seq):
            self.duplicates += 1
            return
        if notification.state.is_terminal:
            self.last = notification
        else:
            self.by_seq[notification.seq] = notification.message
        if self.last is None:
            return
        # A completed task ends once every earlier notification is here; a failed or
        # canceled one ends at once (what it did not send will not come).
        if self.last.state is not TaskState.COMPLETED or len(self.by_seq) == self.last.seq - 1:
            self._complete.set()

    async def wait(self) -> PushNotification:
        await self._complete.wait()
        assert self.last is not None  # noqa: S101 - set before the event
        return self.last

    def messages(self) -> list[str]:
        return [self.by_seq[seq] for seq in sorted(self.by_seq)]


class PushReceiver(BackgroundTaskAgent):
    """Each task asks the sender for a run of notifications and returns them.

    Args:
        sender_address: Where the PushSender is served.
        task_timeout: Longest wait for the sender's task to finish, in seconds.
    """

    def __init__(
        self,
        sender_address: str,
        *,
        task_timeout: float = 120.0,
        max_concurrency: int | None = None,
    ) -> None:
        super().__init__(max_concurrency=max_concurrency)
        self.sender_address = sender_address
        self.task_timeout = task_timeout
        self._collectors: dict[str, _Collector] = {}

    async def run_background_task(self, task: TaskContext) -> dict[str, list[str]]:
        """Register with the sender, start its task, and wait for its last notification."""
        log.info("PushReceiver running task %s", task.task_id)
        sender = self.remote(self.sender_address)
        sender_task_id = new_id()
        collector = self._collectors[sender_task_id] = _Collector()
        token = secrets.token_urlsafe(24)  # proves a notification came from this registration
        self.expect_push_token(sender_task_id, token)
        try:
            await sender.register_push_endpoint(
                config={"task_id": sender_task_id, "address": str(self.address), "token": token}
            )
            log.info("Configured push notification endpoint for task %s", sender_task_id)
            await sender.run_task(task_id=sender_task_id)
            try:
                async with asyncio.timeout(self.task_timeout):
                    last = await collector.wait()
            except TimeoutError:
                await self._cancel_quietly(sender_task_id)
                raise TimeoutError(
                    f"sender task {sender_task_id} did not finish within {self.task_timeout:g} s "
                    f"({len(collector.by_seq)} notifications received)"
                ) from None
            except asyncio.CancelledError:  # this task was canceled: stop the sender's too
                await self._cancel_quietly(sender_task_id)
                raise
        finally:
            del self._collectors[sender_task_id]
        if last.state is not TaskState.COMPLETED:
            raise TaskFailedError(
                f"sender task {sender_task_id} ended {last.state.value}: {last.message}",
                {"task_id": sender_task_id, "state": last.state.value},
            )
        return {"notifications": collector.messages()}

    async def _cancel_quietly(self, sender_task_id: str) -> None:
        """Best effort: ask the sender to stop a task whose notifications nobody awaits."""
        try:
            await self.remote(self.sender_address, timeout=5).cancel_task(task_id=sender_task_id)
        except MqttPushError as exc:
            log.info("sender task %s not canceled: %s", sender_task_id, exc)

    async def on_message(self, notification: PushNotification) -> None:
        """Collect a notification of one of this receiver's running tasks."""
        collector = self._collectors.get(notification.task_id)
        if collector is None:
            await super().on_message(notification)  # logged and counted as unknown
            return
        log.info(
            "PushReceiver got notification: {task_id: '%s', message: '%s'}",
            notification.task_id,
            notification.message,
        )
        collector.add(notification)
