"""The operations on push endpoints and deliveries that every BackgroundTaskAgent serves."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mqttpush.agent.delivery import info_of
from mqttpush.errors import InvalidParamsError, TaskFinishedError, TaskNotFoundError
from mqttpush.models import DeliveryInfo, TaskId, TaskPushNotificationConfig
from mqttpush.rpc.operation import operation

if TYPE_CHECKING:
    from mqttpush.agent.delivery import DeliveryTracker
    from mqttpush.agent.endpoints import Endpoints
    from mqttpush.agent.tasks import TaskRegistry

__all__ = ["EndpointOperations"]

_MASK = "********"  # a push token, as replies show it


class EndpointOperations:
    """``register_push_endpoint``, ``list_push_endpoints`` and ``get_delivery_status``.

    A mixin of :class:`~mqttpush.agent.background.BackgroundTaskAgent`, which owns the
    task registry, the endpoints and the delivery tracker these read and change.
    """

    tasks: TaskRegistry
    endpoints: Endpoints
    deliveries: DeliveryTracker

    @operation
    async def register_push_endpoint(
        self, config: TaskPushNotificationConfig
    ) -> TaskPushNotificationConfig:
        """Send a task's notifications to ``config.address`` too (several per task allowed).

        An endpoint may be registered before the task runs. Registering for a task
        that has already ended is refused (-32004), since nothing would be sent.
        Registering an address again replaces it, unless it has a token and the new
        registration another one (-32602). Replies mask the token. A copy of a pool
        passes a registration for a task another copy runs on to that copy.
        """
        record = self.tasks.find(config.task_id)
        if record is not None and record.state.is_terminal:
            raise TaskFinishedError(data={"task_id": config.task_id, "state": record.state.value})
        for existing in self.endpoints.of(config.task_id):
            if existing.address == config.address and existing.token not in (None, config.token):
                # Replacing it would let any caller swap the token the endpoint checks.
                why = f"{config.address} is already registered for this task with another token"
                raise InvalidParamsError(
                    data=[{"loc": ["config", "token"], "msg": why, "type": "token_mismatch"}]
                )
        await self.endpoints.add(config)
        await self.endpoints.bound(
            self.tasks.max_finished, lambda task_id: self.tasks.find(task_id) is not None
        )
        await self._endpoint_added(config)
        return _redacted(config)

    async def _endpoint_added(self, config: TaskPushNotificationConfig) -> None:
        """Called once a registration is kept (a pool copy passes it on to the task's copy)."""

    @operation
    async def get_delivery_status(self, task_id: TaskId) -> list[DeliveryInfo]:
        """Return what happened to each of a task's notifications, per endpoint.

        States: queued, published (broker acknowledged), delivered (the endpoint sent a
        receipt), failed (not published: broker unreachable), expired (no receipt after
        every attempt).
        """
        if task_id not in self.deliveries.tracked():
            # Settled (its records folded), another copy's, or from before a restart:
            # as far as the store knows.
            rows = await self.endpoints.store.deliveries(task_id)
            if (
                not rows
                and self.tasks.find(task_id) is None
                and await self.endpoints.store.get_task(task_id) is None
            ):
                raise TaskNotFoundError(data={"task_id": task_id})
            return [info_of(row) for row in rows]
        return self.deliveries.status(task_id)

    @operation
    async def list_push_endpoints(self, task_id: TaskId) -> list[TaskPushNotificationConfig]:
        """Return the endpoints registered for a task (tokens masked)."""
        configs = self.endpoints.of(task_id)
        if not configs and self.tasks.find(task_id) is None:  # another copy's task, maybe
            configs = await self.endpoints.store.endpoints(task_id)
        return [_redacted(config) for config in configs]


def _redacted(config: TaskPushNotificationConfig) -> TaskPushNotificationConfig:
    """``config`` with its token masked: replies and listings never give a token away."""
    if config.token is None:
        return config
    return config.model_copy(update={"token": _MASK})
