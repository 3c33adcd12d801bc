"""A kit for testing agents: an in-memory broker, a fake host, a collecting endpoint, a wait.

Tests of an application (and mqttpush's own) use it instead of writing these again::

    broker = MemoryBroker()
    async with Fabric(settings, transport=broker.transport()) as fabric:
        collector = await fabric.serve(Collector(), "c@test.fabric")
        ...
        await eventually(lambda: len(collector.got) == 3)

The in-memory broker routes by topic filter and keeps MQTT 5 properties, but it is no
replacement for Mosquitto: run the same tests against a real broker too. A
:class:`FakeHost` serves one agent with no broker at all: it records what the agent
publishes, and the test hands the agent its messages.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any, Self, TypeVar

from mqttpush.address import Address, Topics
from mqttpush.agent.base import Agent
from mqttpush.errors import FabricClosedError
from mqttpush.observe import Instruments
from mqttpush.rpc.caller import RpcCaller
from mqttpush.rpc.remote import RemoteAgent
from mqttpush.settings import Settings
from mqttpush.transport.memory import MemoryBroker, MemoryTransport

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine
    from types import TracebackType

    from mqttpush.models import PushNotification
    from mqttpush.transport.base import Message

__all__ = ["Collector", "FakeHost", "MemoryBroker", "MemoryTransport", "eventually"]

_A = TypeVar("_A", bound=Agent)


class FakeHost:
    """Serves agents with no broker: what they publish is recorded in ``published``.

    It satisfies :class:`~mqttpush.agent.host.Host`. Use it as an async context
    manager; the tasks agents spawn are cancelled on exit::

        async with FakeHost() as host:
            agent = await host.serve(MyAgent(), "me@test.fabric")
            await agent.handle_request(request)
            [reply] = host.published

    Args:
        settings: The settings agents see; defaults with a fixed topic prefix.
        matched: What :meth:`publish` answers (whether a subscriber matched).
    """

    def __init__(self, settings: Settings | None = None, *, matched: bool = True) -> None:
        self.settings = settings or Settings.load(None, topic_prefix="test/fake")
        self.topics = Topics(self.settings.topic_prefix)
        self.instruments = Instruments()
        self.published: list[Message] = []
        self.matched = matched
        self.client_id = "fake-host"
        self.caller = RpcCaller(self.publish, self.topics.reply_base("fake-host", None))
        self._tasks: set[asyncio.Task[Any]] = set()
        self._agents: list[Agent] = []
        self._open = False

    async def __aenter__(self) -> Self:
        self._open = True
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._open = False
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for agent in self._agents:
            await agent.on_stop()

    async def serve(self, agent: _A, address: str) -> _A:
        """Bind ``agent`` to this host at ``address`` and start it."""
        agent.bind(self, Address.parse(address))
        self._agents.append(agent)
        await agent.on_start()
        return agent

    async def publish(self, message: Message) -> bool:
        """Record ``message``."""
        self.published.append(message)
        return self.matched

    def start_publish(self, message: Message) -> asyncio.Future[bool] | None:
        """None: every publish is recorded through :meth:`publish`."""
        return None

    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str) -> asyncio.Task[Any]:
        """Run ``coro`` as a task, cancelled when the host closes."""
        if not self._open:
            coro.close()
            raise FabricClosedError("the fake host is not open")
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def wait_connected(self, timeout: float) -> bool:
        """Always connected."""
        return True

    def remote(
        self, address: str | Address, *, sender: str | None = None, timeout: float | None = None
    ) -> RemoteAgent:
        """A proxy whose requests are recorded in ``published`` (no reply ever comes)."""
        return RemoteAgent(
            self.caller,
            self.topics,
            Address.parse(address),
            sender=sender or "fake-host",
            timeout=timeout or self.settings.rpc.timeout,
        )


class Collector(Agent):
    """A push endpoint that records every notification it is sent, in arrival order.

    Args:
        fail_first: How many notifications its handler fails (raises) before it starts
            recording, to test what a sender does with a failing endpoint.
    """

    def __init__(self, fail_first: int = 0) -> None:
        super().__init__()
        self.got: list[PushNotification] = []
        self.fail_first = fail_first

    async def on_message(self, notification: PushNotification) -> None:
        """Record ``notification`` (or fail, while ``fail_first`` lasts)."""
        if self.fail_first > 0:
            self.fail_first -= 1
            raise RuntimeError("handler bug")
        self.got.append(notification)


async def eventually(
    predicate: Callable[[], bool], timeout: float = 10.0, *, interval: float = 0.02
) -> None:
    """Wait until ``predicate()`` holds, checking every ``interval`` seconds.

    Raises:
        TimeoutError: It did not hold within ``timeout`` seconds.
    """
    async with asyncio.timeout(timeout):
        # Polling is the point: the predicate is any expression, with no event to wait on.
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(interval)
