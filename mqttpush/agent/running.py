"""Running an agent's background tasks: their work, their end, their notifications.

``run_task`` starts a task's work in the background; when it ends (completed, failed,
or canceled) the task is saved and each endpoint gets a last notification carrying
the terminal state. When the agent starts, every task its store still lists as
unfinished (the process died while it ran) is failed with a reason.

A copy of a pool (with a :class:`~mqttpush.agent.leases.LeaseKeeper`) instead owns each
task it starts by a lease in the shared store, and fails or resumes the tasks of copies
that died, as their leases expire.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import TYPE_CHECKING, Any

import pydantic_core

from mqttpush import _context
from mqttpush.agent.context import TaskContext
from mqttpush.agent.fanout import fan_out
from mqttpush.agent.giveback import GiveBackWhenIdle
from mqttpush.agent.notifying import checked_data, checked_priority
from mqttpush.agent.task import TaskRunner
from mqttpush.errors import StoreError
from mqttpush.models import ErrorInfo, Priority, PushNotification, TaskState
from mqttpush.observe import Instruments

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from pydantic import BaseModel

    from mqttpush.address import Address
    from mqttpush.agent.delivery import DeliveryTracker
    from mqttpush.agent.endpoints import Endpoints
    from mqttpush.agent.host import Host
    from mqttpush.agent.leases import LeaseKeeper
    from mqttpush.agent.tasks import TaskRegistry
    from mqttpush.models import TaskStatus
    from mqttpush.store import TakenOver, TaskStore

__all__ = ["TaskWork"]

log = logging.getLogger(__name__)

_CANCEL_WAIT = 5.0  # seconds a cancellation waits for the work to unwind
_FINAL_PRIORITY = Priority.HIGH  # a task's last notification overtakes queued progress
#: A result larger than this (bytes of JSON) is kept only by the store once saved.
RESULT_KEPT = 64 << 10


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
        schema: The model every notification's ``data`` must match, if any.
        resumable: Whether a task taken over from a dead copy runs again (else it fails).
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
        schema: type[BaseModel] | None = None,
        resumable: bool = False,
        instruments: Instruments | None = None,
    ) -> None:
        self._schema = schema
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
        self.leases: LeaseKeeper | None = None  #: a pool copy's leases, set by its agent
        self._settling: set[str] = set()  # ended, notifications not all settled yet
        self._resumable = resumable
        self.give_back = GiveBackWhenIdle(  #: memory back to the system once idle
            host.settings.agent.receipt_timeout, lambda: tasks.running, deliveries.kept.records
        )

    async def recover(self) -> None:
        """Fail the tasks a previous run left unfinished; start re-sending notifications.

        A pool copy fails nothing at start: other copies may be running those tasks.
        It starts keeping its leases instead, which takes over the dead copies' tasks.
        """
        if self.leases is not None:
            self._host.spawn(self._deliveries.run(), name=f"mqttpush-deliveries-{self._address}")
            self._host.spawn(self.leases.run(), name=f"mqttpush-leases-{self._address}")
            return
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
        """Start the task with this id, unless it exists (then it is returned as it is).

        Raises:
            StoreError: The new task could not be saved; it is forgotten, not left
                ``submitted`` with nothing running it, so a retry with its id starts it.
        """
        runner, created = self._tasks.create(task_id, params)
        if created:
            try:
                if self.leases is None:
                    await self._save(runner)
                elif not await self.leases.create(runner.to_stored()):
                    self._tasks.discard(runner)  # another copy has it: report that one
                    return await self._stored(task_id)
                else:  # registered with any copy, kept in the shared store
                    await self._endpoints.load(task_id)
            except BaseException:
                self._tasks.discard(runner)
                raise
            runner.attach(self._host.spawn(self._run(runner), name=f"mqttpush-task-{task_id}"))
        return runner

    def keep_only(self, held: set[str]) -> None:
        """Stop, silently, the tasks whose lease another copy took (this copy was too slow).

        The new owner runs them and sends their notifications; this copy forgets them,
        so their status comes from the store.
        """
        for runner in self._tasks.unfinished():
            if runner.task_id not in held:
                log.warning("%s: task %s taken over by another copy; stopped here",
                            self._address, runner.task_id)  # fmt: skip
                self._tasks.discard(runner)
                runner.abandon()

    async def _stored(self, task_id: str) -> TaskRunner:
        stored = await self._store.get_task(task_id)
        if stored is None:
            raise StoreError(f"task {task_id} vanished from the store while it was started")
        return TaskRunner.from_stored(stored)

    async def take_over(self, taken: TakenOver) -> TaskRunner:
        """Run again (resumable agents) or fail a task claimed from a dead copy."""
        runner = self._tasks.restore(taken.task)
        await self._endpoints.load(runner.task_id)
        if self._resumable:
            name = f"mqttpush-task-{runner.task_id}"
            runner.attach(self._host.spawn(self._run(runner), name=name))
            return runner
        reason = ErrorInfo(
            type="AgentCopyLost",
            message=f"the copy of {self._address} running the task ({taken.previous_owner}) "
            f"stopped while it was {taken.task.state.value}; its work was not resumed",
        )
        await self.finish(runner, TaskState.FAILED, error=reason)
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
            if runner.state is TaskState.SUBMITTED:  # a resumed task is working already
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
        """End the task in ``state``: save it, send the final notification, drop its endpoints.

        A pool copy saves the end only once every notification of the task is settled
        (receipt, or out of attempts): until then the task stays unfinished in the
        shared store, so if this copy dies another one takes it over and sends again.
        """
        if runner.state.is_terminal:
            return  # already ended (e.g. cancel_task gave up waiting and ended it)
        if self.leases is not None:
            self._settling.add(runner.task_id)
        forgotten = runner.transition(state, result=result, error=error)
        self._metrics.task_ended(state)
        self._deliveries.forget(set(forgotten))
        if self.leases is None:
            await self._save(runner)
        message = f"Task {state.value}" + (f": {error.message}" if error else "")
        await self._deliveries.published(runner.task_id)  # the final one goes out last
        try:
            await self.push(runner, message, None, state=state, priority=_FINAL_PRIORITY)
        except Exception:
            log.exception(
                "%s: final notification of task %s not sent", self._address, runner.task_id
            )
        self._deliveries.ended(runner.task_id)
        if self.leases is not None:
            await self._deliveries.settled(runner.task_id)
            self._settling.discard(runner.task_id)
            await self._save(runner)
            try:
                await self.leases.release(runner.task_id)
            except StoreError as exc:  # a finished task's lease is never taken over
                log.warning("%s: lease of task %s kept: %s", self._address, runner.task_id, exc)
        if runner.result_bytes > RESULT_KEPT:  # saved above: one copy, in the store
            runner.leave_result()
        try:
            if forgotten:
                await self._store.prune(self._tasks.max_finished)
        finally:
            await self._endpoints.forget(runner.task_id)
            self.give_back.arm()

    async def push(
        self,
        runner: TaskRunner,
        message: str,
        data: dict[str, Any] | BaseModel | None,
        *,
        state: TaskState = TaskState.WORKING,
        priority: Priority | str = Priority.NORMAL,
    ) -> PushNotification:
        """Publish one notification of the task to each of its endpoints (QoS 1).

        Endpoints whose filter refuses it get nothing; its ``seq`` is used all the same.

        Raises:
            InvalidNotificationError: ``data`` does not match the agent's
                ``notification_schema``, or ``priority`` is unknown.
        """
        checked = checked_data(self._schema, data)
        level = checked_priority(priority)
        seq, save_first = runner.next_seq()
        if save_first:
            await self._save(runner)
        notification = PushNotification(
            task_id=runner.task_id, seq=seq, state=state, message=message, data=checked,
            priority=level,
        )  # fmt: skip
        endpoints = self._endpoints.of(runner.task_id)
        if endpoints:
            destination = f"{self._host.topics.prefix}/{{domain}}/{{name}}/push/{{task_id}}"
            with self._tracing.publish(destination, notification.id, len(endpoints)) as headers:
                out = fan_out(
                    notification,
                    endpoints,
                    sender=str(self._address),
                    trace_id=_context.trace_id.get(),
                    topics=self._host.topics,
                    headers=headers,
                )
                if out.messages:
                    await self._deliveries.send(notification, out.messages, out.rates)
        return notification

    async def _save(self, runner: TaskRunner) -> None:
        stored = runner.to_stored()
        if runner.task_id in self._settling:  # ended here, not yet in the shared store
            stored = dataclasses.replace(stored, state=TaskState.WORKING, result=None, error=None)
        await self._store.save_task(stored)
