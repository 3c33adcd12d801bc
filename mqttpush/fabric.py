"""The fabric: one broker connection shared by the agents and callers of a process.

It keeps the connection up (:mod:`mqttpush.connection`), hands every inbound message to
the message loop (:mod:`mqttpush.routing`), which routes it to the RPC caller or to the
agent served on its topic and acknowledges it once handled, and owns every background
task in one TaskGroup::

    async with Fabric(settings) as fabric:
        await fabric.serve(PushSender(), "sender@fame.fabric")
        receiver = fabric.remote("receiver@fame.fabric")
        status = await receiver.run_task()
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
import time
from typing import TYPE_CHECKING, Any, Self, TypeVar

from mqttpush.address import Address, Topics
from mqttpush.agent.host import current_host, enter_host, leave_host
from mqttpush.agent.routes import agent_routes
from mqttpush.connection import Connection
from mqttpush.errors import FabricClosedError, MqttPushError, UsageError
from mqttpush.observe import Instruments, default_instruments
from mqttpush.presence import Presences
from mqttpush.routing import MessageLoop, Route
from mqttpush.rpc.caller import RpcCaller
from mqttpush.rpc.remote import RemoteAgent
from mqttpush.settings import Settings
from mqttpush.transport import create_transport

if TYPE_CHECKING:
    from collections.abc import Coroutine
    from contextvars import Token
    from types import TracebackType

    from mqttpush.agent.base import Agent
    from mqttpush.agent.host import Host
    from mqttpush.card import AgentCard
    from mqttpush.servers import Server
    from mqttpush.transport.base import Message, Transport

__all__ = ["Fabric"]

log = logging.getLogger(__name__)
_A = TypeVar("_A", bound="Agent")
_CLOSE_WAIT = 10.0  # seconds __aexit__ waits for its tasks to end


def _task_done(
    tasks: set[asyncio.Task[Any]], coro: Coroutine[Any, Any, Any], task: asyncio.Task[Any]
) -> None:
    tasks.discard(task)
    if inspect.getcoroutinestate(coro) == inspect.CORO_CREATED:
        coro.close()


class Fabric:
    """A Fabric is one broker connection on which a process serves its agents and makes calls.

    It satisfies :class:`~mqttpush.agent.host.Host`, all that its agents see of it.

    Args:
        settings: All settings; read from the environment when omitted.
        transport: The transport to use instead of MQTT over TCP (tests pass an
            in-memory one).
        instruments: Where metrics and spans go; by default no metrics, and
            OpenTelemetry spans when the ``tracing.enabled`` setting is on.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        transport: Transport | None = None,
        instruments: Instruments | None = None,
    ) -> None:
        self.settings = settings or Settings()
        self.topics = Topics(self.settings.topic_prefix)
        self._own_transport = transport is None  # presence needs connections of its own
        self._transport = transport or create_transport(self.settings.broker)
        self.instruments = instruments or default_instruments(
            self.settings.tracing, self._transport.client_id
        )
        metrics = self.instruments.metrics
        self._link = Connection(self._transport, self.settings.broker, metrics)
        self.connected = self._link.connected
        self.stopped = self._link.stopped
        reply_base = self.topics.reply_base(
            self._transport.client_id, self.settings.broker.username
        )
        # The transport's own publish: Fabric.publish only hands a message on to it.
        publish = self._transport.publish
        self._caller = RpcCaller(publish, reply_base, self.connected, self.instruments)
        self._loop = MessageLoop(self._transport, self.spawn, metrics=metrics)
        metrics.watch("held", "", self._loop.router.held)
        metrics.watch("pending_calls", "", lambda: (self._caller.pending, None))
        self._loop.router.add_children(reply_base, Route(self._resolve_reply))
        self._agents: list[Agent] = []
        self._presences = Presences(self.settings.broker, self.topics, self.client_id)
        self._stack = contextlib.AsyncExitStack()
        self._group: asyncio.TaskGroup | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._token: Token[Host] | None = None
        self._task_failures = 0

    @classmethod
    def current(cls) -> Fabric:
        """Return the fabric of the innermost ``async with Fabric()`` in this context.

        Raises:
            UsageError: No fabric is open.
        """
        host = current_host()
        if not isinstance(host, Fabric):
            raise UsageError(f"the current host is a {type(host).__name__}, not a Fabric")
        return host

    @property
    def client_id(self) -> str:
        """The MQTT client id of this fabric's connection."""
        return self._transport.client_id

    @property
    def server(self) -> Server:
        """The broker node this fabric is connected (or connecting) to."""
        return self._link.server

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
    def unrouted(self) -> int:
        """Messages dropped because no agent is served on their topic here."""
        return self._loop.unrouted

    @property
    def task_failures(self) -> int:
        """Exceptions that escaped a task or a message handler (each one logged)."""
        return self._task_failures + self._loop.failures

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
        pump = self._link.run(self._loop.dispatch, self._caller.fail_all, self._loop.flush)
        self.spawn(pump, name="mqttpush-pump")
        self._token = enter_host(self)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop every task this fabric started, then disconnect."""
        if self._token is not None:
            leave_host(self._token)
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
        await self._presences.close()
        await self._transport.disconnect()
        await self._stack.aclose()

    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str) -> asyncio.Task[Any]:
        """Run ``coro`` as a named task owned by this fabric; it is cancelled on exit.

        An exception escaping ``coro`` is logged and counted in ``task_failures``; it
        never reaches the TaskGroup, so one bug cannot stop every agent on the fabric.

        Raises:
            FabricClosedError: The fabric is not open, or is closing (``coro`` is closed).
        """
        if self._group is None or self._link.closing:
            coro.close()
            raise FabricClosedError("the fabric is not open")
        task = self._group.create_task(self._guarded(coro, name), name=name)
        self._tasks.add(task)
        # One callback (each costs a loop step): forget the task, and close ``coro`` if the
        # task was cancelled before it ever ran (on exit), as it never awaited it then.
        task.add_done_callback(functools.partial(_task_done, self._tasks, coro))
        return task

    async def _guarded(self, coro: Coroutine[Any, Any, Any], name: str) -> Any:  # noqa: ANN401
        try:
            return await coro
        except Exception:
            self._task_failures += 1
            log.exception("task %s failed", name)
            return None

    async def serve(self, agent: _A, address: str | Address) -> _A:
        """Serve ``agent`` at ``address``: subscribe to its ``rpc`` and ``push/+`` topics.

        Raises:
            UsageError: An agent is already served at that address on this fabric.
        """
        addr = Address.parse(address)
        rpc_topic = self.topics.rpc(addr)
        if self._loop.router.routes(rpc_topic):
            raise UsageError(f"an agent is already served at {addr} on this fabric")
        agent.bind(self, addr)
        self._agents.append(agent)
        await agent.on_start()  # e.g. recovery after a restart, before any request is handled
        filters = agent_routes(
            self._loop.router, agent, self.topics, addr, self.spawn,
            pool=self.settings.agent.pool, client_id=self.client_id,
        )  # fmt: skip
        for topic_filter in filters:
            await self._link.subscribe(topic_filter)
        self._loop.replay()
        if self._own_transport and self.settings.agent.presence:
            await self._presences.publish(agent, addr, self.spawn)
        log.info("serving %s at %s", type(agent).__name__, self.topics.base(addr))
        return agent

    async def lookup(self, address: str | Address, timeout: float = 2.0) -> AgentCard | None:
        """The presence card of the agent at ``address``, or None if none came in ``timeout``.

        Raises:
            UsageError: The fabric runs on a transport it was given (no broker to ask).
            BrokerUnavailableError: The broker cannot be reached.
        """
        if not self._own_transport:
            raise UsageError("presence cards are read from a broker: this fabric has none")
        return await self._presences.lookup(Address.parse(address), timeout)

    def remote(
        self, address: str | Address, *, sender: str | None = None, timeout: float | None = None
    ) -> RemoteAgent:
        """Return a proxy whose method calls are RPC calls to the agent at ``address``."""
        return RemoteAgent(
            self._caller,
            self.topics,
            Address.parse(address),
            sender=sender or self.client_id,
            timeout=self.settings.rpc.timeout if timeout is None else timeout,
            lookup=self.lookup,
        )

    async def publish(self, message: Message) -> bool:
        """Publish through the transport (raises ConnectionLostError while disconnected).

        Returns:
            False when the broker reported that no subscriber matched.
        """
        return await self._transport.publish(message)

    def start_publish(self, message: Message) -> asyncio.Future[bool] | None:
        """Start a publish with no task awaiting it, when the transport can (else None).

        Raises:
            FabricClosedError: The fabric is not open, or is closing.
        """
        if self._group is None or self._link.closing:
            raise FabricClosedError("the fabric is not open")
        return self._transport.start_publish(message)

    async def wait_connected(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the connection to be up; return whether it is."""
        try:
            async with asyncio.timeout(timeout):
                await self.connected.wait()
        except TimeoutError:
            return False
        return True

    async def _resolve_reply(self, message: Message) -> None:
        self._caller.resolve(message)
