"""The fabric: one broker connection shared by the agents and callers of a process.

It connects (and reconnects, restoring its subscriptions), routes every inbound
message by topic to the RPC caller or to the agent served there, and owns every
background task in one TaskGroup::

    async with Fabric(settings) as fabric:
        await fabric.serve(PushSender(), "sender@fame.fabric")
        receiver = fabric.remote("receiver@fame.fabric")
        status = await receiver.run_task()
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import inspect
import logging
import time
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Self, TypeVar

from mqttpush.address import Address, Topics
from mqttpush.connection import Connection
from mqttpush.errors import (
    MqttPushError,
)
from mqttpush.rpc.caller import RpcCaller
from mqttpush.settings import Settings
from mqttpush.transport import create_transport

if TYPE_CHECKING:
    from collections.abc import Coroutine
    from types import TracebackType

    from mqttpush.agent.base import Agent
    from mqttpush.agent.remote import RemoteAgent
    from mqttpush.transport.base import Message, Transport

__all__ = ["Fabric"]

_A = TypeVar("_A", bound="Agent")

log = logging.getLogger(__name__)
_current: ContextVar[Fabric] = ContextVar("mqttpush_fabric")
_HOLD_SECONDS = 5.0  # how long a message waits for its agent to be served
_HOLD_MAX = 10_000
_CLOSE_WAIT = 10.0  # seconds __aexit__ waits for its tasks to end


def _close_if_unstarted(coro: Coroutine[Any, Any, Any], _task: asyncio.Task[Any]) -> None:
    if inspect.getcoroutinestate(coro) == inspect.CORO_CREATED:
        coro.close()


class Fabric:
    """A connection to the broker with the agents served on it.

    Args:
        settings: All settings; read from the environment when omitted.
        transport: The transport to use instead of MQTT over TCP (tests pass an
            in-memory one).
    """

    def __init__(
        self, settings: Settings | None = None, *, transport: Transport | None = None
    ) -> None:
        self.settings = settings or Settings()
        self.topics = Topics(self.settings.topic_prefix)
        self._transport = transport or create_transport(self.settings.broker)
        self._link = Connection(self._transport, self.settings.broker)
        self.connected = self._link.connected
        self._reply_base = self.topics.reply_base(
            self._transport.client_id, self.settings.broker.username
        )
        self._reply_prefix = self._reply_base + "/"
        self._caller = RpcCaller(self.publish, self._reply_base, self.connected)
        self._rpc_routes: dict[str, Agent] = {}
        self._push_routes: dict[str, Agent] = {}
        self._receipt_routes: dict[str, Agent] = {}
        self._held: collections.deque[Message] = collections.deque()
        self._agents: list[Agent] = []
        self._stack = contextlib.AsyncExitStack()
        self._group: asyncio.TaskGroup | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._token: Any = None
        self.stopped = self._link.stopped
        self.unrouted = 0
        self.task_failures = 0

    @classmethod
    def current(cls) -> Fabric:
        """Return the fabric of the innermost ``async with Fabric()`` in this context.

        Raises:
            MqttPushError: No fabric is open.
        """
        try:
            return _current.get()
        except LookupError:
            raise MqttPushError(
                "no Fabric is open here: use 'async with Fabric(...)' first"
            ) from None

    @property
    def client_id(self) -> str:
        """The MQTT client id of this fabric's connection."""
        return self._transport.client_id

    @property
    def stopped_because(self) -> MqttPushError | None:
        """Why the connection was given up for good, if it was."""
        return self._link.stopped_because

    @property
    def reconnects(self) -> int:
        """How many times the connection came back after a drop."""
        return self._link.reconnects

    @property
    def sessions_lost(self) -> int:
        """Reconnects where the broker had not kept this client's persistent session."""
        return self._link.sessions_lost

    @property
    def caller(self) -> RpcCaller:
        """The RPC caller that owns this fabric's reply subscription."""
        return self._caller

    async def __aenter__(self) -> Self:
        """Connect, subscribe to replies, and start routing inbound messages.

        Raises:
            BrokerUnavailableError: The broker cannot be reached.
        """
        self._group = await self._stack.enter_async_context(asyncio.TaskGroup())
        try:
            await self._link.open()
            await self._link.subscribe(self._caller.reply_filter)
        except BaseException:
            await self._stack.aclose()
            raise
        self.spawn(self._link.run(self._dispatch, self._caller.fail_all), name="mqttpush-pump")
        self._token = _current.set(self)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop every task this fabric started, then disconnect."""
        _current.reset(self._token)
        self._link.closing = True
        # Cancel again until every task has ended: a cancellation can be swallowed by
        # asyncio.wait_for inside the client library (Python 3.11), bounded in time.
        deadline = time.monotonic() + _CLOSE_WAIT
        while (pending := [t for t in self._tasks if not t.done()]) and time.monotonic() < deadline:
            for task in pending:
                task.cancel()
            await asyncio.wait(pending, timeout=0.1)
        for agent in self._agents:
            await agent.on_stop()
        await self._transport.disconnect()
        await self._stack.aclose()

    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str) -> asyncio.Task[Any]:
        """Run ``coro`` as a named task owned by this fabric; it is cancelled on exit.

        An exception escaping ``coro`` is logged and counted in ``task_failures``; it
        never reaches the TaskGroup, so one bug cannot stop every agent on the fabric.

        Raises:
            MqttPushError: The fabric is not open, or is closing (``coro`` is closed).
        """
        if self._group is None or self._link.closing:
            coro.close()
            raise MqttPushError("the fabric is not open")
        task = self._group.create_task(self._guarded(coro, name), name=name)
        # A task cancelled before it ever ran (on exit) never awaited ``coro``: close it.
        task.add_done_callback(functools.partial(_close_if_unstarted, coro))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _guarded(self, coro: Coroutine[Any, Any, Any], name: str) -> Any:  # noqa: ANN401
        try:
            return await coro
        except Exception:
            self.task_failures += 1
            log.exception("task %s failed", name)
            return None

    async def serve(self, agent: _A, address: str | Address) -> _A:
        """Serve ``agent`` at ``address``: subscribe to its ``rpc`` and ``push/+`` topics."""
        addr = Address.parse(address)
        rpc_topic = self.topics.rpc(addr)
        if rpc_topic in self._rpc_routes:
            raise MqttPushError(f"an agent is already served at {addr} on this fabric")
        agent.bind(self, addr)
        self._agents.append(agent)
        await agent.on_start()  # e.g. recovery after a restart, before any request is handled
        push_base = self.topics.push_base(addr)
        ack_topic = self.topics.ack(addr)
        self._rpc_routes[rpc_topic] = agent
        self._push_routes[push_base] = agent
        self._receipt_routes[ack_topic] = agent
        for topic_filter in (rpc_topic, f"{push_base}/+", ack_topic):
            await self._link.subscribe(topic_filter)
        self._replay_held()
        log.info("serving %s at %s", type(agent).__name__, self.topics.base(addr))
        return agent

    def _hold(self, message: Message) -> bool:
        """Keep a message no agent is served for yet; return False when it is dropped.

        A resumed session delivers its queued messages right after connecting, before
        the process has served its agents. They wait here, unacknowledged, for up to
        ``_HOLD_SECONDS`` (then they are dropped and counted in ``unrouted``).
        """
        self._purge_held()
        if len(self._held) >= _HOLD_MAX:
            return False
        if not self._held:  # check again once this one is due, even if nothing else arrives
            asyncio.get_running_loop().call_later(_HOLD_SECONDS + 0.1, self._purge_held)
        self._held.append(message)
        return True

    def _purge_held(self) -> None:
        now = time.monotonic()
        while self._held and (now - self._held[0].received_at > _HOLD_SECONDS):
            self._drop(self._held.popleft())
        if self._held:
            due = self._held[0].received_at + _HOLD_SECONDS - now
            asyncio.get_running_loop().call_later(max(due, 0) + 0.1, self._purge_held)

    def _drop(self, message: Message) -> None:
        self.unrouted += 1
        log.warning("no agent is served for %s here: message dropped", message.topic)
        # When closing, spawn refuses: the connection goes and the broker keeps the message.
        with contextlib.suppress(MqttPushError):
            self.spawn(self._ack(message), name="mqttpush-ack")

    def _replay_held(self) -> None:
        held, self._held = self._held, collections.deque()
        for message in held:
            if not self._route(message):
                self.spawn(self._ack(message), name="mqttpush-ack")

    def remote(
        self, address: str | Address, *, sender: str | None = None, timeout: float | None = None
    ) -> RemoteAgent:
        """Return a proxy whose method calls are RPC calls to the agent at ``address``."""
        from mqttpush.agent.remote import RemoteAgent  # noqa: PLC0415 - remote imports fabric

        return RemoteAgent(
            self, Address.parse(address), sender=sender or self.client_id, timeout=timeout
        )

    async def publish(self, message: Message) -> bool:
        """Publish through the transport (raises ConnectionLostError while disconnected).

        Returns:
            False when the broker reported that no subscriber matched.
        """
        return await self._transport.publish(message)

    async def wait_connected(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the connection to be up; return whether it is."""
        try:
            async with asyncio.timeout(timeout):
                await self.connected.wait()
        except TimeoutError:
            return False
        return True

    def _route(self, message: Message) -> bool:
        """Dispatch one message; return True when its handler will acknowledge it.

        Replies and requests are acknowledged on receipt (a repeated request is
        answered from the agent's response cache); notifications only once their
        handler has finished, so one that was never handled is redelivered.
        """
        topic = message.topic
        if topic.startswith(self._reply_prefix):
            self._caller.resolve(message)
            return False
        agent = self._rpc_routes.get(topic)
        if agent is not None:
            self.spawn(agent.handle_request(message), name="mqttpush-request")
            return False
        agent = self._receipt_routes.get(topic)
        if agent is not None:
            agent.handle_receipt(message)
            return False
        head, _, task_id = topic.rpartition("/")
        agent = self._push_routes.get(head)
        if agent is not None:
            self.spawn(self._handle_then_ack(agent, message, task_id), name="mqttpush-push")
            return True
        if self._hold(message):
            return True  # acknowledged when it is replayed or dropped
        self.unrouted += 1
        log.warning("no agent is served for %s here: message dropped", topic)
        return False

    async def _handle_then_ack(self, agent: Agent, message: Message, task_id: str) -> None:
        try:
            await agent.handle_push(message, task_id)
        except asyncio.CancelledError:
            raise  # shutting down before handling finished: no PUBACK, so it comes again
        except Exception:
            await self._ack(message)  # a bug, logged by the fabric: never stall the window
            raise
        await self._ack(message)

    async def _ack(self, message: Message) -> None:
        try:
            await self._transport.ack(message)
        except MqttPushError as exc:  # the connection is gone: the broker will redeliver
            log.debug("acknowledgement of %s not sent: %s", message.topic, exc)

    async def _dispatch(self, message: Message) -> None:
        deferred = False
        try:
            deferred = self._route(message)
        except Exception:  # a bug in routing one message must not stop the rest
            self.task_failures += 1
            log.exception("routing a message on %s failed", message.topic)
        if not deferred:
            await self._ack(message)
