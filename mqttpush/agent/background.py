"""BackgroundTaskAgent: long-running tasks with status, cancellation and push notifications.

``run_task`` returns at once with the task submitted; the work runs in
:meth:`BackgroundTaskAgent.run_background_task`, which pushes notifications to every
endpoint registered for the task with :meth:`TaskContext.push`. When the task ends,
each endpoint gets a last notification carrying the terminal state.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Annotated, Any

import pydantic_core
from pydantic import Field

from mqttpush import _context, codec
from mqttpush.address import Address
from mqttpush.agent.base import Agent
from mqttpush.agent.context import TaskContext
from mqttpush.agent.delivery import DeliveryTracker
from mqttpush.agent.endpoint_ops import EndpointOperations
from mqttpush.agent.endpoints import Endpoints
from mqttpush.agent.persistence import open_store, status_of, stored_task
from mqttpush.agent.tasks import TaskRecord, TaskRegistry
from mqttpush.errors import (
    MqttPushError,
    ProtocolError,
    TaskNotCancelableError,
    TaskNotFoundError,
)
from mqttpush.models import (
    ErrorInfo,
    PushNotification,
    TaskId,
    TaskState,
    TaskStatus,
    new_id,
)
from mqttpush.rpc.operation import operation

if TYPE_CHECKING:
    from mqttpush.agent.host import Host
    from mqttpush.store import TaskStore
    from mqttpush.transport.base import Message

__all__ = ["BackgroundTaskAgent", "TaskContext"]

log = logging.getLogger(__name__)

_CANCEL_WAIT = 5.0  # seconds cancel_task waits for the work to unwind
_MAX_WAIT = 300.0  # longest get_task_status long-poll
_SEQ_BLOCK = 100  # sequence numbers reserved (saved) at a time


class BackgroundTaskAgent(EndpointOperations, Agent):
    """An agent whose work runs as background tasks. Override :meth:`run_background_task`.

    Tasks, endpoints and final delivery states are kept in a :class:`TaskStore`
    (SQLite at ``agent.store_path``, else in memory). When the agent starts, every
    task its store still lists as unfinished (the process died while it ran) is
    failed with a reason, and its endpoints get the final notification.

    Args:
        max_finished_tasks: Finished tasks kept for ``get_task_status``; defaults to
            the ``agent.max_finished_tasks`` setting.
        max_concurrency: See :class:`Agent`.
        store: Where to keep task state; defaults to the ``agent.store_path`` setting.
    """

    deliveries: DeliveryTracker  #: what happened to each notification (set when served)

    def __init__(
        self,
        *,
        max_finished_tasks: int | None = None,
        max_concurrency: int | None = None,
        store: TaskStore | None = None,
    ) -> None:
        super().__init__(max_concurrency=max_concurrency)
        self._max_finished = max_finished_tasks
        self.tasks = TaskRegistry(max_finished_tasks or 10_000)
        self.endpoints = Endpoints(lambda: self.store)
        self._store = store
        self._owns_store = store is None

    def bind(self, host: Host, address: Address) -> None:
        """Attach to the host; the finished-task bound comes from settings unless given."""
        super().bind(host, address)
        agent = host.settings.agent
        if self._max_finished is None:
            self.tasks = TaskRegistry(agent.max_finished_tasks)
        if self._store is None:
            self._store = open_store(agent.store_path)
        self.deliveries = DeliveryTracker(
            host,
            receipt_timeout=agent.receipt_timeout,
            attempts=agent.delivery_attempts,
            publish_window=agent.publish_window,
            store=self._store,
            window=agent.delivery_window,
        )

    @property
    def store(self) -> TaskStore:
        """Where this agent keeps its tasks, endpoints and deliveries."""
        if self._store is None:
            raise MqttPushError(f"{type(self).__name__} is not served yet: it has no store")
        return self._store

    async def on_start(self) -> None:
        """Fail the tasks a previous run left unfinished; start re-sending notifications."""
        await super().on_start()
        for stored in await self.store.unfinished_tasks():
            record = self.tasks.restore(stored)
            await self.endpoints.load(stored.task_id)
            reason = ErrorInfo(
                type="AgentRestarted",
                message=f"{self.address} restarted while the task was {stored.state.value}; "
                "its work was not resumed",
            )
            log.warning("%s: task %s: %s", self.address, stored.task_id, reason.message)
            await self._finish(record, TaskState.FAILED, error=reason)
        self.host.spawn(self.deliveries.run(), name=f"mqttpush-deliveries-{self.address}")

    async def on_stop(self) -> None:
        """Save the delivery states not saved yet; close the store this agent opened."""
        await super().on_stop()
        await self.deliveries.flush()
        if self._owns_store and self._store is not None:
            await self._store.close()

    async def _save(self, record: TaskRecord) -> None:
        await self.store.save_task(stored_task(record))

    def handle_receipt(self, message: Message) -> None:
        """Record an endpoint's receipts for this agent's notifications."""
        try:
            receipts = codec.decode_receipts(message.payload)
        except ProtocolError as exc:
            self.stats.notifications_malformed += 1
            log.warning("%s: malformed receipt on %s: %s", self.address, message.topic, exc)
            return
        for receipt in receipts:
            self.deliveries.on_receipt(receipt)

    def _status(self, record: TaskRecord) -> TaskStatus:
        status = record.status()
        summary = self.deliveries.summary(record.task_id)
        return status.model_copy(update={"deliveries": summary}) if summary else status

    async def run_background_task(self, task: TaskContext) -> Any:  # noqa: ANN401 - the task's JSON result
        """Do the task's work; the return value becomes the task's result."""
        raise NotImplementedError(f"{type(self).__name__} must implement run_background_task")

    @operation
    async def run_task(
        self, task_id: TaskId | None = None, params: dict[str, Any] | None = None
    ) -> TaskStatus:
        """Start a task in the background and return its status at once.

        A ``task_id`` chosen by the caller makes the call idempotent: running an id
        that exists returns that task's status and starts nothing.
        """
        task_id = task_id or new_id()
        record, created = self.tasks.create(task_id, params)
        if created:
            await self._save(record)
            record.runner = self.host.spawn(self._run(record), name=f"mqttpush-task-{task_id}")
        return self._status(record)

    @operation
    async def get_task_status(
        self, task_id: TaskId, wait: Annotated[float, Field(ge=0, le=_MAX_WAIT)] = 0.0
    ) -> TaskStatus:
        """Return a task's status; with ``wait`` > 0, first wait up to that long for it to end.

        The wait holds none of the agent's request slots, so long polls never starve
        other requests.
        """
        record = self.tasks.find(task_id)
        if record is None:
            stored = await self.store.get_task(task_id)
            if stored is None:
                raise TaskNotFoundError(data={"task_id": task_id})
            return status_of(stored, await self.store.delivery_summary(task_id))
        if wait > 0 and not record.state.is_terminal:
            async with self.slot_released():
                try:
                    async with asyncio.timeout(wait):
                        await record.done.wait()
                except TimeoutError:
                    pass  # still running: the status says so
        return self._status(record)

    @operation
    async def cancel_task(self, task_id: TaskId) -> TaskStatus:
        """Stop a task's work and its notifications; the endpoints get a last ``canceled`` one."""
        record = self.tasks.get(task_id)
        if record.state.is_terminal:
            raise TaskNotCancelableError(data={"task_id": task_id, "state": record.state.value})
        record.cancel_requested = True
        runner = record.runner
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _CANCEL_WAIT
        # Cancel again until the work unwinds: one cancellation can be swallowed by
        # code the task awaits, and the work must really stop.
        while (
            runner is not None
            and not runner.done()
            and not record.state.is_terminal  # ended: let it send the final notification
            and loop.time() < deadline
        ):
            runner.cancel()
            await asyncio.wait({runner}, timeout=0.1)
        if not record.state.is_terminal:  # canceled before its work ever started
            await self._finish(record, TaskState.CANCELED)
        return self._status(record)

    async def _run(self, record: TaskRecord) -> None:
        try:
            self.tasks.transition(record, TaskState.WORKING)
            await self._save(record)
            result = pydantic_core.to_jsonable_python(
                await self.run_background_task(TaskContext(self, record))
            )
        except asyncio.CancelledError:
            if not record.cancel_requested:
                raise  # the fabric is shutting down
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            await self._finish(record, TaskState.CANCELED)
        except Exception as exc:
            log.exception("%s: task %s failed", self.address, record.task_id)
            await self._finish(
                record, TaskState.FAILED, error=ErrorInfo(type=type(exc).__name__, message=str(exc))
            )
        else:
            await self._finish(record, TaskState.COMPLETED, result=result)

    async def _finish(
        self,
        record: TaskRecord,
        state: TaskState,
        *,
        result: Any = None,  # noqa: ANN401
        error: ErrorInfo | None = None,
    ) -> None:
        if record.state.is_terminal:
            return  # already ended (e.g. cancel_task gave up waiting and ended it)
        forgotten = self.tasks.transition(record, state, result=result, error=error)
        self.deliveries.forget(set(forgotten))
        await self._save(record)
        if forgotten:
            await self.store.prune(self.tasks.max_finished)
        message = f"Task {state.value}" + (f": {error.message}" if error else "")
        try:
            await self.push(record, message, None, state=state)
        except Exception:
            log.exception(
                "%s: final notification of task %s not sent", self.address, record.task_id
            )
        finally:
            await self.endpoints.forget(record.task_id)

    async def push(
        self,
        record: TaskRecord,
        message: str,
        data: dict[str, Any] | None,
        *,
        state: TaskState = TaskState.WORKING,
    ) -> PushNotification:
        """Publish one notification of ``record`` to each of its endpoints (QoS 1)."""
        record.pushed += 1
        if record.pushed > record.seq_reserved:
            # Sequence numbers are reserved in blocks, saved once a block: after a restart
            # the final notification continues past every number that may have been sent.
            record.seq_reserved = record.pushed + _SEQ_BLOCK - 1
            await self._save(record)
        notification = PushNotification(
            task_id=record.task_id, seq=record.pushed, state=state, message=message, data=data
        )
        endpoints = self.endpoints.of(record.task_id)
        if endpoints:
            sender, trace = str(self.address), _context.trace_id.get()
            topics = self.host.topics
            messages = {
                c.address: codec.encode_notification(
                    topics.push(Address.parse(c.address), record.task_id),
                    notification,
                    codec.Envelope(sender, "push", None, trace, c.token),
                )
                for c in endpoints
            }
            await self.deliveries.send(notification, messages)
        return notification
