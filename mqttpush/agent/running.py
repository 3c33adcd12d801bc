"""Running an agent's background tasks: their work, their end, their notifications.

``run_task`` starts a task's work in the background; when it ends (completed, failed,
or canceled) the task is saved and each endpoint gets a last notification carrying
the terminal state. When the agent starts, every task its store still lists as
unfinished (the process died while it ran) is failed with a reason.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import pydantic_core

from mqttpush import _context, codec
from mqttpush.address import Address
from mqttpush.agent.context import TaskContext
from mqttpush.models import ErrorInfo, PushNotification, TaskState
from mqttpush.observe import Instruments

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from mqttpush.agent.delivery import DeliveryTracker
    from mqttpush.agent.endpoints import Endpoints
    from mqttpush.agent.host import Host
    from mqttpush.agent.task import TaskRunner
    from mqttpush.agent.tasks import TaskRegistry
    from mqttpush.models import TaskStatus
    from mqttpush.store import TaskStore

__all__ = ["TaskWork"]

log = logging.getLogger(__name__)

_CANCEL_WAIT = 5.0  # seconds a cancellation waits for the work to unwind


class TaskWork:
    """Runs one agent's background tasks, ends them, and sends their notifications.

    Args:
        host: Where the work runs and notifications are published.
        address: The agent's address (notifications carry it as their sender).
        work: The agent's ``run_background_task``.
        tasks: The agent's tasks.
        store: Where tasks are saved.
        endpoints: The endpoints registered per task.
        deliveries: Publishes notifications and tracks their delivery.
        instruments: Where ended tasks are counted and notification spans opened.
    """

    def __init__(
        self,
        host: Host,
        address: Address,
        work: Callable[[TaskContext], Awaitable[Any]],
        *,
        tasks: TaskRegistry,
        store: TaskStore,
        endpoints: Endpoints,
        deliveries: DeliveryTracker,
        instruments: Instruments | None = None,
    ) -> None:
        instruments = instruments or Instruments()
        self._metrics = instruments.metrics.agent(str(address))
        self._tracing = instruments.tracing
        self._host = host
        self._address = address
        self._work = work
        self._tasks = tasks
        self._store = store
        self._endpoints = endpoints
        self._deliveries = deliveries

    async def recover(self) -> None:
        """Fail the tasks a previous run left unfinished; start re-sending notifications."""
        for stored in await self._store.unfinished_tasks():
            runner = self._tasks.restore(stored)
            await self._endpoints.load(stored.task_id)
            reason = ErrorInfo(
                type="AgentRestarted",
                message=f"{self._address} restarted while the task was {stored.state.value}; "
                "its work was not resumed",
            )
            log.warning("%s: task %s: %s", self._address, stored.task_id, reason.message)
            await self.finish(runner, TaskState.FAILED, error=reason)
        self._host.spawn(self._deliveries.run(), name=f"mqttpush-deliveries-{self._address}")

    def status(self, runner: TaskRunner) -> TaskStatus:
        """The task's status, with its deliveries counted by state."""
        return runner.status(self._deliveries.summary(runner.task_id))

    async def start(self, task_id: str, params: dict[str, Any] | None) -> TaskRunner:
        """Start the task with this id, unless it exists (then it is returned as it is)."""
        runner, created = self._tasks.create(task_id, params)
        if created:
            await self._save(runner)
            runner.attach(self._host.spawn(self._run(runner), name=f"mqttpush-task-{task_id}"))
        return runner

    async def cancel(self, runner: TaskRunner) -> None:
        """Stop the task's work and its notifications; it ends ``canceled``."""
        handle = runner.request_cancel()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _CANCEL_WAIT
        # Cancel again until the work unwinds: one cancellation can be swallowed by
        # code the task awaits, and the work must really stop.
        while (
            handle is not None
            and not handle.done()
            and not runner.state.is_terminal  # ended: let it send the final notification
            and loop.time() < deadline
        ):
            handle.cancel()
            await asyncio.wait({handle}, timeout=0.1)
        if not runner.state.is_terminal:  # canceled before its work ever started
            await self.finish(runner, TaskState.CANCELED)

    async def _run(self, runner: TaskRunner) -> None:
        try:
            runner.transition(TaskState.WORKING)
            await self._save(runner)
            result = pydantic_core.to_jsonable_python(
                await self._work(TaskContext(runner, self.push))
            )
        except asyncio.CancelledError:
            if not runner.cancel_requested:
                raise  # the host is shutting down
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            await self.finish(runner, TaskState.CANCELED)
        except Exception as exc:
            log.exception("%s: task %s failed", self._address, runner.task_id)
            error = ErrorInfo(type=type(exc).__name__, message=str(exc))
            await self.finish(runner, TaskState.FAILED, error=error)
        else:
            await self.finish(runner, TaskState.COMPLETED, result=result)

    async def finish(
        self,
        runner: TaskRunner,
        state: TaskState,
        *,
        result: Any = None,  # noqa: ANN401 - the task's JSON result
        error: ErrorInfo | None = None,
    ) -> None:
        """End the task in ``state``: save it, send the final notification, drop its endpoints."""
        if runner.state.is_terminal:
            return  # already ended (e.g. cancel_task gave up waiting and ended it)
        forgotten = runner.transition(state, result=result, error=error)
        self._metrics.task_ended(state)
        self._deliveries.forget(set(forgotten))
        await self._save(runner)
        if forgotten:
            await self._store.prune(self._tasks.max_finished)
        message = f"Task {state.value}" + (f": {error.message}" if error else "")
        try:
            await self.push(runner, message, None, state=state)
        except Exception:
            log.exception(
                "%s: final notification of task %s not sent", self._address, runner.task_id
            )
        finally:
            await self._endpoints.forget(runner.task_id)

    async def push(
        self,
        runner: TaskRunner,
        message: str,
        data: dict[str, Any] | None,
        *,
        state: TaskState = TaskState.WORKING,
    ) -> PushNotification:
        """Publish one notification of the task to each of its endpoints (QoS 1)."""
        seq, save_first = runner.next_seq()
        if save_first:
            await self._save(runner)
        notification = PushNotification(
            task_id=runner.task_id, seq=seq, state=state, message=message, data=data
        )
        endpoints = self._endpoints.of(runner.task_id)
        if endpoints:
            sender, trace = str(self._address), _context.trace_id.get()
            topics = self._host.topics
            destination = f"{topics.prefix}/{{domain}}/{{name}}/push/{{task_id}}"
            with self._tracing.publish(destination, notification.id, len(endpoints)) as headers:
                messages = {
                    c.address: codec.encode_notification(
                        topics.push(Address.parse(c.address), runner.task_id),
                        notification,
                        codec.Envelope(sender, "push", None, trace, c.token, headers),
                    )
                    for c in endpoints
                }
                await self._deliveries.send(notification, messages)
        return notification

    async def _save(self, runner: TaskRunner) -> None:
        await self._store.save_task(runner.to_stored())
