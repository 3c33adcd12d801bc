"""The Agent: operations served over JSON-RPC, and a handler for push notifications.

Each request and notification is handled in its own task. Requests and notifications
have separate pools of ``max_concurrency`` slots each, so a flood of one never starves
the other; an operation that waits a long time (a long poll) gives its slot back with
:meth:`Agent.slot_released`. Whatever a handler raises becomes an error reply
(requests) or a logged, counted failure (notifications); it never stops the agent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from mqttpush import _context, codec
from mqttpush.agent.host import current_host
from mqttpush.agent.receipts import ReceiptBatcher
from mqttpush.agent.recent import PushTokens, RecentIds
from mqttpush.agent.slots import Slots
from mqttpush.errors import ProtocolError, UsageError
from mqttpush.observe import AgentMetrics, Tracing
from mqttpush.rpc.operation import Operation, operations_of
from mqttpush.rpc.responder import Responder

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from pydantic import BaseModel

    from mqttpush.address import Address
    from mqttpush.agent.host import Host
    from mqttpush.models import PushNotification
    from mqttpush.rpc.remote import RemoteAgent
    from mqttpush.transport.base import Message

__all__ = ["Agent", "AgentStats"]

log = logging.getLogger(__name__)

# Whether the current request task holds one of its agent's request slots.
_holding_slot: ContextVar[bool] = ContextVar("mqttpush_holding_slot", default=False)


@dataclass
class AgentStats:
    """Counters of what an agent has handled; every refusal and failure is counted."""

    requests: int = 0
    request_errors: int = 0
    requests_expired: int = 0
    requests_repeated: int = 0
    replies_refused: int = 0
    handler_failures: int = 0
    notifications: int = 0
    notifications_duplicate: int = 0
    notifications_malformed: int = 0
    notifications_rejected: int = 0
    notifications_unknown_task: int = 0


class Agent:
    """An agent serves its operations over JSON-RPC and handles the notifications pushed to it.

    Subclass it: decorate ``async def`` methods with ``@operation``, and override
    :meth:`on_message` to receive push notifications. A host (a :class:`~mqttpush.Fabric`)
    serves it at an address and hands it the messages for that address.

    Args:
        max_concurrency: Requests and notifications handled at once; defaults to the
            fabric's ``rpc.max_concurrency`` setting.
    """

    _operations: ClassVar[dict[str, Operation]] = {}
    #: The model of the ``data`` of notifications this agent receives: data, when present,
    #: is validated before :meth:`on_message` (``notification.typed`` is the instance); a
    #: mismatch counts as a handler failure (the receipt says ``handled: false``).
    notification_model: ClassVar[type[BaseModel] | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:  # noqa: ANN401 - passed through to object
        super().__init_subclass__(**kwargs)
        cls._operations = operations_of(cls)

    def __init__(self, *, max_concurrency: int | None = None) -> None:
        self._max_concurrency = max_concurrency
        self._request_slots = asyncio.Semaphore(1)
        self._push_slots = Slots(1)
        self._seen = RecentIds(1)
        self._tokens = PushTokens(10_000)  # resized when served; tokens expected before kept
        self._require_tokens = False
        self._responder: Responder | None = None
        self._receipts: ReceiptBatcher | None = None
        self._host: Host | None = None
        self._address: Address | None = None
        self._metrics = AgentMetrics()
        self._tracing = Tracing()
        self._spans = False  # whether the tracing opens a span per notification
        self.stats = AgentStats()

    def _not_served(self) -> UsageError:
        return UsageError(f"{type(self).__name__} is not served: call fabric.serve(agent, address)")

    @property
    def host(self) -> Host:
        """What serves this agent (its fabric)."""
        if self._host is None:
            raise self._not_served()
        return self._host

    @property
    def address(self) -> Address:
        """The address this agent is served at."""
        if self._address is None:
            raise self._not_served()
        return self._address

    @classmethod
    def operations(cls) -> dict[str, Operation]:
        """The operations this agent class serves, by JSON-RPC method name."""
        return dict(cls._operations)

    @classmethod
    def operation(cls, name: str) -> Operation | None:
        """The operation served under the JSON-RPC method ``name``, if any."""
        return cls._operations.get(name)

    def bind(self, host: Host, address: Address) -> None:
        """Attach to ``host`` at ``address`` (called by :meth:`Fabric.serve`).

        Raises:
            UsageError: The agent is served already.
        """
        if self._host is not None:
            raise UsageError(f"{type(self).__name__} is already served at {self._address}")
        self._host = host
        self._address = address
        settings = host.settings
        limit = self._max_concurrency or settings.rpc.max_concurrency
        self._request_slots = asyncio.Semaphore(limit)
        self._push_slots = Slots(limit)
        self._seen = RecentIds(settings.agent.dedup_window)
        self._tokens = self._tokens.resized(settings.agent.dedup_window)
        self._require_tokens = settings.agent.require_push_token
        self._metrics = host.instruments.metrics.agent(str(address))
        self._tracing = host.instruments.tracing
        # The default tracing opens no span: its context manager is not even entered.
        self._spans = type(self._tracing).process is not Tracing.process
        self._responder = Responder(
            self,
            host.publish,
            cache_size=settings.agent.response_cache,
            cache_bytes=settings.agent.response_cache_bytes,
            max_request_bytes=settings.rpc.max_request_bytes,
            confine_to=host.topics.reply_root if settings.rpc.confine_replies else None,
            metrics=self._metrics,
            tracing=self._tracing,
        )
        self._receipts = ReceiptBatcher(host, str(address))

    @contextlib.asynccontextmanager
    async def slot_released(self) -> AsyncIterator[None]:
        """Give the current request's slot back while waiting (use around long waits).

        Outside a request handler this does nothing.
        """
        if not _holding_slot.get():
            yield
            return
        _holding_slot.set(False)
        self._request_slots.release()
        try:
            yield
        finally:
            await self._request_slots.acquire()  # if cancelled here, no slot is held or released
            _holding_slot.set(True)

    async def on_start(self) -> None:
        """Run once when the agent starts being served."""

    async def on_stop(self) -> None:
        """Run once when the fabric closes."""

    async def on_message(self, notification: PushNotification) -> None:
        """Handle a push notification sent to this agent (override to receive them).

        The default logs and counts it as a notification for an unknown task.
        """
        self.stats.notifications_unknown_task += 1
        log.warning(
            "%s: notification for unknown task %s ignored", self._address, notification.task_id
        )

    def expect_push_token(self, task_id: str, token: str) -> None:
        """Accept notifications of ``task_id`` only when they carry ``token``.

        Call it with the token given in the ``TaskPushNotificationConfig`` registered
        with the sender. A notification with a missing or wrong token is rejected:
        logged, counted in ``stats.notifications_rejected``, never handled, and
        acknowledged without a receipt. With ``agent.require_push_token``, notifications
        of tasks without an expected token are rejected too.
        """
        self._tokens.expect(task_id, token)

    def remote(self, address: str | Address, *, timeout: float | None = None) -> RemoteAgent:
        """Return a proxy to another agent; calls carry this agent's address as sender."""
        return self.host.remote(address, sender=str(self.address), timeout=timeout)

    @classmethod
    def remote_by_address(
        cls, address: str | Address, *, timeout: float | None = None
    ) -> RemoteAgent:
        """Return a proxy to the agent at ``address`` on the current fabric."""
        return current_host().remote(address, timeout=timeout)

    async def handle_request(self, message: Message) -> None:
        """Handle one RPC request message and publish the reply (called by the fabric)."""
        if self._responder is None:
            raise self._not_served()
        await self._request_slots.acquire()
        _holding_slot.set(True)
        try:
            await self._responder.answer(message)
        finally:
            if _holding_slot.get():
                self._request_slots.release()

    def handle_receipt(self, message: Message) -> None:
        """Take a delivery receipt for a notification this agent sent (called by the fabric).

        Plain agents send no notifications and ignore receipts.
        """
        log.debug("%s: receipt on %s ignored", self._address, message.topic)

    async def handle_push(self, message: Message, task_id: str | None = None) -> None:
        """Handle one push notification message (called by the fabric).

        ``task_id`` is the last level of the message's topic, read from it if not given.
        """
        slots = self._push_slots
        await slots.take()
        try:
            try:
                notification = _decode_push(
                    message, message.topic.rpartition("/")[2] if task_id is None else task_id
                )
            except ProtocolError as exc:
                self.stats.notifications_malformed += 1
                self._metrics.notification_received("malformed")
                log.warning(
                    "%s: malformed notification on %s: %s", self._address, message.topic, exc
                )
                return
            envelope = codec.Envelope.of(message)
            problem = self._tokens.problem(
                notification.task_id, envelope.token, required=self._require_tokens
            )
            if problem is not None:  # forged, or meant for someone else: no receipt either
                self.stats.notifications_rejected += 1
                self._metrics.notification_received("rejected")
                log.warning("%s: notification %s for task %s from %s rejected: %s",
                            self._address, notification.id, notification.task_id,
                            envelope.sender, problem)  # fmt: skip
                return
            handled = True
            if notification.id in self._seen:
                self.stats.notifications_duplicate += 1  # handled once already: receipt only
                self._metrics.notification_received("duplicate")
            else:
                self.stats.notifications += 1
                if _context.trace_id.get() != envelope.trace_id:  # the same all through a task
                    _context.trace_id.set(envelope.trace_id)
                try:
                    model = self.notification_model
                    if model is not None and notification.data is not None:
                        notification.data_as(model)  # a mismatch is a handler failure
                    if self._spans:
                        with self._tracing.process(message, notification.id, str(self._address)):
                            await self.on_message(notification)
                    else:
                        await self.on_message(notification)
                    self._seen.add(notification.id)  # a failed one may be tried again
                    self._metrics.notification_received("handled", notification.timestamp)
                except Exception:
                    handled = False
                    self.stats.handler_failures += 1
                    self._metrics.notification_received("failed")
                    log.exception(
                        "%s: on_message failed for notification %s", self._address, notification.id
                    )
            if self._receipts is not None:
                self._receipts.queue(notification, envelope.sender, handled=handled)
        finally:
            slots.give()


def _decode_push(message: Message, task_id: str) -> PushNotification:
    notification = codec.decode_notification(message.payload, message.content_type)
    if notification.task_id != task_id:
        raise ProtocolError(
            f"task id {notification.task_id!r} does not match the topic's {task_id!r}"
        )
    return notification
