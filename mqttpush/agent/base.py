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
import hashlib
import logging
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from mqttpush import _context, codec
from mqttpush.address import Address
from mqttpush.agent.memory import RecentIds, ResponseCache
from mqttpush.agent.operation import Operation, operations_of
from mqttpush.errors import (
    InternalError,
    InvalidAddressError,
    MethodNotFoundError,
    MqttPushError,
    ProtocolError,
    RequestExpiredError,
    RpcError,
)
from mqttpush.fabric import Fabric
from mqttpush.models import DeliveryAck, new_id

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from mqttpush.agent.remote import RemoteAgent
    from mqttpush.models import JsonRpcId, JsonRpcRequest, PushNotification
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
    handler_failures: int = 0
    notifications: int = 0
    notifications_duplicate: int = 0
    notifications_malformed: int = 0
    notifications_unknown_task: int = 0


class Agent:
    """Base class of agents. Decorate ``async def`` methods with ``@operation``.

    Args:
        max_concurrency: Requests and notifications handled at once; defaults to the
            fabric's ``rpc.max_concurrency`` setting.
    """

    _operations: ClassVar[dict[str, Operation]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:  # noqa: ANN401 - passed through to object
        super().__init_subclass__(**kwargs)
        cls._operations = operations_of(cls)

    def __init__(self, *, max_concurrency: int | None = None) -> None:
        self._max_concurrency = max_concurrency
        self._request_slots = asyncio.Semaphore(1)
        self._push_slots = asyncio.Semaphore(1)
        self._seen = RecentIds(1)
        self._responses = ResponseCache(1)
        self._fabric: Fabric | None = None
        self._address: Address | None = None
        self.stats = AgentStats()

    @property
    def fabric(self) -> Fabric:
        """The fabric this agent is served on."""
        if self._fabric is None:
            raise MqttPushError(
                f"{type(self).__name__} is not served: call fabric.serve(agent, address)"
            )
        return self._fabric

    @property
    def address(self) -> Address:
        """The address this agent is served at."""
        if self._address is None:
            raise MqttPushError(
                f"{type(self).__name__} is not served: call fabric.serve(agent, address)"
            )
        return self._address

    @classmethod
    def operations(cls) -> dict[str, Operation]:
        """The operations this agent class serves, by JSON-RPC method name."""
        return dict(cls._operations)

    def bind(self, fabric: Fabric, address: Address) -> None:
        """Attach to ``fabric`` at ``address`` (called by :meth:`Fabric.serve`)."""
        if self._fabric is not None:
            raise MqttPushError(f"{type(self).__name__} is already served at {self._address}")
        self._fabric = fabric
        self._address = address
        limit = self._max_concurrency or fabric.settings.rpc.max_concurrency
        self._request_slots = asyncio.Semaphore(limit)
        self._push_slots = asyncio.Semaphore(limit)
        self._seen = RecentIds(fabric.settings.agent.dedup_window)
        self._responses = ResponseCache(fabric.settings.agent.response_cache)

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

    def remote(self, address: str | Address, *, timeout: float | None = None) -> RemoteAgent:
        """Return a proxy to another agent; calls carry this agent's address as sender."""
        return self.fabric.remote(address, sender=str(self.address), timeout=timeout)

    @classmethod
    def remote_by_address(
        cls, address: str | Address, *, timeout: float | None = None
    ) -> RemoteAgent:
        """Return a proxy to the agent at ``address`` on the current fabric."""
        return Fabric.current().remote(address, timeout=timeout)

    async def handle_request(self, message: Message) -> None:
        """Handle one RPC request message and publish the reply (called by the fabric)."""
        await self._request_slots.acquire()
        _holding_slot.set(True)
        try:
            await self._answer(message)
        finally:
            if _holding_slot.get():
                self._request_slots.release()

    async def _answer(self, message: Message) -> None:
        self.stats.requests += 1
        envelope = codec.Envelope.of(message)
        _context.trace_id.set(envelope.trace_id or new_id())
        request_id, decoded = codec.decode_request(message.payload)
        key = _request_key(message, request_id)
        if key is not None and (earlier := self._responses.lookup(key)) is not None:
            # A repeat (broker redelivery or a caller's retry): answer, do not run again.
            self.stats.requests_repeated += 1
            if (earlier_reply := await earlier) is not None:
                await self._publish_reply(earlier_reply)
            return
        cached = self._responses.begin(key) if key is not None else None
        method = None if isinstance(decoded, RpcError) else decoded.method
        reply: Message | None = None
        try:
            result = await self._execute(message, decoded)
        except RpcError as exc:
            self.stats.request_errors += 1
            reply = self._build_reply(message, request_id, method, envelope, error=exc)
        except Exception as exc:
            self.stats.request_errors += 1
            self.stats.handler_failures += 1
            log.exception("%s: operation %s failed", self._address, method)
            error = InternalError(data={"type": type(exc).__name__, "message": str(exc)})
            reply = self._build_reply(message, request_id, method, envelope, error=error)
        else:
            reply = self._build_reply(message, request_id, method, envelope, result=result)
        finally:
            if cached is not None and not cached.done():
                cached.set_result(reply)  # repeats, now and later, get this reply
        if reply is not None:
            await self._publish_reply(reply)
        else:
            log.debug("%s: request without a response topic, no reply sent", self._address)

    async def _execute(self, message: Message, decoded: JsonRpcRequest | RpcError) -> Any:  # noqa: ANN401
        if isinstance(decoded, RpcError):
            raise decoded
        left = codec.remaining_expiry(message)
        if left is not None and left <= 0:
            self.stats.requests_expired += 1
            raise RequestExpiredError(data={"method": decoded.method})
        return await self._invoke(decoded.method, decoded.params)

    async def _invoke(self, method: str, params: dict[str, Any] | list[Any] | None) -> Any:  # noqa: ANN401
        op = self._operations.get(method)
        if op is None:
            raise MethodNotFoundError(
                data={"method": method, "available": sorted(self._operations)}
            )
        kwargs = op.validate(params)
        return op.dump_result(await getattr(self, op.attr)(**kwargs))

    def _build_reply(
        self,
        request: Message,
        request_id: JsonRpcId,
        method: str | None,
        envelope: codec.Envelope,
        *,
        result: Any = None,  # noqa: ANN401
        error: RpcError | None = None,
    ) -> Message | None:
        return codec.encode_reply(
            request,
            request_id,
            result=result,
            error=error,
            envelope=codec.Envelope(
                str(self.address), method, envelope.correlation_id, envelope.trace_id
            ),
        )

    async def _publish_reply(self, reply: Message) -> None:
        try:
            await self.fabric.publish(reply)
        except MqttPushError as exc:  # the caller's retry gets it from the response cache
            log.warning("%s: reply to %s not sent: %s", self._address, reply.topic, exc)

    def handle_receipt(self, message: Message) -> None:
        """Take a delivery receipt for a notification this agent sent (called by the fabric).

        Plain agents send no notifications and ignore receipts.
        """
        log.debug("%s: receipt on %s ignored", self._address, message.topic)

    async def handle_push(self, message: Message, task_id: str) -> None:
        """Handle one push notification message (called by the fabric)."""
        async with self._push_slots:
            try:
                notification = _decode_push(message, task_id)
            except ProtocolError as exc:
                self.stats.notifications_malformed += 1
                log.warning(
                    "%s: malformed notification on %s: %s", self._address, message.topic, exc
                )
                return
            envelope = codec.Envelope.of(message)
            handled = True
            if notification.id in self._seen:
                self.stats.notifications_duplicate += 1  # handled once already: receipt only
            else:
                self.stats.notifications += 1
                _context.trace_id.set(envelope.trace_id)
                try:
                    await self.on_message(notification)
                    self._seen.add(notification.id)  # a failed one may be tried again
                except Exception:
                    handled = False
                    self.stats.handler_failures += 1
                    log.exception(
                        "%s: on_message failed for notification %s", self._address, notification.id
                    )
            await self._send_receipt(notification, envelope.sender, handled=handled)

    async def _send_receipt(
        self, notification: PushNotification, sender: str | None, *, handled: bool
    ) -> None:
        """Tell the sending agent that the notification was handled (best effort)."""
        try:
            sender_address = Address.parse(sender) if sender else None
        except InvalidAddressError:
            sender_address = None
        if sender_address is None:
            return  # not from an agent: nobody to tell
        receipt = DeliveryAck(
            id=notification.id,
            task_id=notification.task_id,
            seq=notification.seq,
            endpoint=str(self.address),
            handled=handled,
        )
        topic = self.fabric.topics.ack(sender_address)
        envelope = codec.Envelope(str(self.address), "ack", None, _context.trace_id.get())
        try:
            await self.fabric.publish(codec.encode_ack(topic, receipt, envelope))
        except MqttPushError as exc:  # the sender publishes again; we answer the duplicate
            log.debug("%s: receipt for %s not sent: %s", self._address, notification.id, exc)


def _request_key(message: Message, request_id: JsonRpcId) -> tuple[str, bytes] | None:
    """What identifies a request across repeats; None when nothing does.

    A repeat has the same Response Topic, the same Correlation Data (or JSON-RPC id)
    and the same payload; a different request that reuses an id is not a repeat.
    """
    if not message.response_topic:
        return None
    digest = hashlib.blake2b(message.payload, digest_size=16).digest()
    if message.correlation_data:
        return message.response_topic, message.correlation_data + digest
    if request_id is not None:
        return message.response_topic, str(request_id).encode() + digest
    return None


def _decode_push(message: Message, task_id: str) -> PushNotification:
    notification = codec.decode_notification(message.payload)
    if notification.task_id != task_id:
        raise ProtocolError(
            f"task id {notification.task_id!r} does not match the topic's {task_id!r}"
        )
    return notification
