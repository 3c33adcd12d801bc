"""BackgroundTaskAgent: long-running tasks with status, cancellation and push notifications.

``run_task`` returns at once with the task submitted; the work runs in
:meth:`BackgroundTaskAgent.run_background_task`, which pushes notifications to every
endpoint registered for the task with :meth:`TaskContext.push`. When the task ends,
each endpoint gets a last notification carrying the terminal state
(:mod:`mqttpush.agent.running` does the running; this module serves the operations).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

import pydantic_core
from pydantic import BaseModel, Field

from mqttpush import codec
from mqttpush.agent.base import Agent
from mqttpush.agent.context import TaskContext
from mqttpush.agent.delivery import DeliveryTracker
from mqttpush.agent.endpoint_ops import EndpointOperations
from mqttpush.agent.endpoints import Endpoints
from mqttpush.agent.leases import LeaseKeeper
from mqttpush.agent.owners import forward
from mqttpush.agent.running import TaskWork
from mqttpush.agent.task import TaskRunner
from mqttpush.agent.tasks import TaskRegistry
from mqttpush.errors import (
    InvalidParamsError,
    ProtocolError,
    TaskNotCancelableError,
    TaskNotFoundError,
    UsageError,
)
from mqttpush.models import TaskId, TaskPushNotificationConfig, TaskStatus, new_id
from mqttpush.rpc.cache import SharedReplies
from mqttpush.rpc.operation import operation
from mqttpush.store import store_from_settings

if TYPE_CHECKING:
    from mqttpush.address import Address
    from mqttpush.agent.host import Host
    from mqttpush.store import TaskStore
    from mqttpush.transport.base import Message

__all__ = ["BackgroundTaskAgent", "TaskContext"]

log = logging.getLogger(__name__)

_MAX_WAIT = 300.0  # longest get_task_status long-poll
#: Bytes of JSON ``run_task`` params may take: a task keeps them as long as it is kept.
MAX_PARAMS_BYTES = 64 << 10

_STORE_POLL = 0.5  # seconds between two reads of a task another copy runs
# Operations that change nothing: a pool does not claim them in its shared reply cache.
_READS = frozenset({"get_task_status", "get_delivery_status", "list_push_endpoints"})


class BackgroundTaskAgent(EndpointOperations, Agent):
    """A BackgroundTaskAgent runs tasks in the background and serves their status and cancellation.

    Override :meth:`run_background_task`. Tasks, endpoints and final delivery states
    are kept in a :class:`TaskStore` (SQLite at ``agent.store_path``, else in memory).
    When the agent starts, every task its store still lists as unfinished (the process
    died while it ran) is failed with a reason, and its endpoints get the final
    notification.

    Args:
        max_finished_tasks: Finished tasks kept for ``get_task_status``; defaults to
            the ``agent.max_finished_tasks`` setting.
        max_concurrency: See :class:`Agent`.
        store: Where to keep task state; defaults to the ``agent.store_path`` setting.
    """

    deliveries: DeliveryTracker  #: what happened to each notification (set when served)
    #: The model of the ``data`` of this agent's notifications: pushes are checked
    #: against it, and its JSON schema is published in the agent's presence card.
    notification_schema: ClassVar[type[BaseModel] | None] = None
    #: Whether a task whose pool copy died runs again on another copy (carrying on its
    #: ``seq``; endpoints may then get some notifications twice), rather than failing.
    resumable: ClassVar[bool] = False

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
        self._work: TaskWork | None = None

    def bind(self, host: Host, address: Address) -> None:
        """Attach to the host; the finished-task bounds come from settings unless given."""
        super().bind(host, address)
        agent = host.settings.agent
        self.tasks = TaskRegistry(
            self._max_finished or agent.max_finished_tasks, agent.max_finished_bytes
        )
        if self._store is None:
            self._store = store_from_settings(agent)
        self.deliveries = DeliveryTracker(
            host,
            receipt_timeout=agent.receipt_timeout,
            attempts=agent.delivery_attempts,
            publish_window=agent.publish_window,
            store=self._store,
            window=agent.delivery_window,
            backlog=agent.publish_backlog,
            metrics=self._metrics,
        )
        metrics, name = host.instruments.metrics, str(address)
        metrics.watch("unreceipted", name, self.deliveries.unsettled)
        metrics.watch("running_tasks", name, lambda: (self.tasks.running, None))
        metrics.watch_window(name, self.deliveries.window_used)
        self._work = TaskWork(
            host,
            address,
            self.run_background_task,
            tasks=self.tasks,
            store=self._store,
            endpoints=self.endpoints,
            deliveries=self.deliveries,
            schema=self.notification_schema,
            resumable=self.resumable,
            instruments=host.instruments,
        )
        if agent.pool is not None:  # one copy of a pool: tasks owned by lease
            self._work.leases = LeaseKeeper(
                self._store,
                host.client_id,
                agent.lease_ttl,
                self._work.take_over,
                self._work.keep_only,
            )
            if self._responder is not None:  # a repeat reaching another copy runs once too
                self._responder.shared = SharedReplies(
                    self._store,
                    host.client_id,
                    str(address),
                    claim_ttl=agent.lease_ttl,
                    keep=agent.shared_reply_cache,
                    keep_bytes=agent.shared_reply_cache_bytes,
                    max_reply_bytes=agent.shared_reply_max_bytes,
                    reads=_READS,
                )

    @property
    def store(self) -> TaskStore:
        """Where this agent keeps its tasks, endpoints and deliveries."""
        if self._store is None:
            raise UsageError(f"{type(self).__name__} is not served yet: it has no store")
        return self._store

    @property
    def _running(self) -> TaskWork:
        if self._work is None:
            raise self._not_served()
        return self._work

    async def on_start(self) -> None:
        """Fail the tasks a previous run left unfinished; start re-sending notifications."""
        await super().on_start()
        await self._running.recover()

    async def on_stop(self) -> None:
        """Save the delivery states not saved yet; close the store this agent opened."""
        await super().on_stop()
        await self.deliveries.flush()
        if self._owns_store and self._store is not None:
            await self._store.close()

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
        if params and (size := len(pydantic_core.to_json(params))) > MAX_PARAMS_BYTES:
            why = f"params are {size} bytes of JSON, over the limit of {MAX_PARAMS_BYTES}"
            raise InvalidParamsError(data=[{"loc": ["params"], "msg": why, "type": "too_large"}])
        runner = await self._running.start(task_id or new_id(), params)
        return await self._status(runner)

    @operation
    async def get_task_status(
        self, task_id: TaskId, wait: Annotated[float, Field(ge=0, le=_MAX_WAIT)] = 0.0
    ) -> TaskStatus:
        """Return a task's status; with ``wait`` > 0, first wait up to that long for it to end.

        The wait holds none of the agent's request slots, so long polls never starve
        other requests.
        """
        runner = self.tasks.find(task_id)
        if runner is None:  # another copy's, finished before a restart, or long ago
            async with self.slot_released():
                return await self._stored_status(task_id, wait)
        if wait > 0 and not runner.state.is_terminal:
            async with self.slot_released():
                try:
                    async with asyncio.timeout(wait):
                        await runner.done.wait()
                except TimeoutError:
                    pass  # still running: the status says so
        return await self._status(runner)

    async def _status(self, runner: TaskRunner) -> TaskStatus:
        """A task's status; a large result is read from the store, which alone keeps it."""
        if not runner.result_stored:
            return self._running.status(runner)
        stored = await self.store.get_task(runner.task_id)
        if stored is None:  # the store's bounds dropped it
            raise TaskNotFoundError(data={"task_id": runner.task_id})
        return TaskRunner.from_stored(stored).status(self.deliveries.summary(runner.task_id))

    async def _stored_status(self, task_id: str, wait: float) -> TaskStatus:
        """The status the store keeps; waiting for its end means reading it again."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while True:
            stored = await self.store.get_task(task_id)
            if stored is None:
                raise TaskNotFoundError(data={"task_id": task_id})
            left = deadline - loop.time()
            if stored.state.is_terminal or left <= 0:
                summary = await self.store.delivery_summary(task_id)
                return TaskRunner.from_stored(stored).status(summary)
            await asyncio.sleep(min(_STORE_POLL, left))

    async def _cancel_elsewhere(self, task_id: str, leases: LeaseKeeper) -> TaskStatus:
        """Cancel a task this copy does not run: through its owner, or by taking it over."""
        stored = await self.store.get_task(task_id)
        if stored is None:
            raise TaskNotFoundError(data={"task_id": task_id})
        if stored.state.is_terminal:
            raise TaskNotCancelableError(data={"task_id": task_id, "state": stored.state.value})
        owner = await leases.owner_of(task_id)
        if owner is not None:
            raw = await forward(self.host, self.address, owner, "cancel_task", {"task_id": task_id})
            return TaskStatus.model_validate(raw)
        # Its copy died and nobody took it over yet: this copy does, to end it now.
        if await self.store.acquire_lease(task_id, leases.owner, leases.ttl) is None:
            raise TaskNotFoundError(data={"task_id": task_id, "detail": "owner changed; retry"})
        runner = self.tasks.restore(stored)
        await self.endpoints.load(task_id)
        await self._running.cancel(runner)
        return self._running.status(runner)

    async def _endpoint_added(self, config: TaskPushNotificationConfig) -> None:
        """Tell the copy running the task about an endpoint registered here (a pool copy).

        That copy loaded the task's endpoints when the task started; this one is newer.
        """
        leases = self._running.leases
        if leases is None or self.tasks.find(config.task_id) is not None:
            return  # not a pool, or the task runs here (or ran here): known already
        owner = await leases.owner_of(config.task_id)
        if owner is not None:  # not started yet, or ended: the store has it for later
            await forward(self.host, self.address, owner, "register_push_endpoint",
                          {"config": config})  # fmt: skip

    @operation
    async def cancel_task(self, task_id: TaskId) -> TaskStatus:
        """Stop a task's work and its notifications; the endpoints get a last ``canceled`` one."""
        leases = self._running.leases
        if leases is not None and self.tasks.find(task_id) is None:
            return await self._cancel_elsewhere(task_id, leases)
        runner = self.tasks.get(task_id)
        if runner.state.is_terminal:
            raise TaskNotCancelableError(data={"task_id": task_id, "state": runner.state.value})
        await self._running.cancel(runner)
        return self._running.status(runner)
