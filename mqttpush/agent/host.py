"""What an agent needs of whatever serves it: the narrow interface a Fabric satisfies.

Agents never see the connection, the router or the other agents: only their topics and
settings, a way to publish, to run a background task, to wait for the connection, and
to call other agents. A fake host (``mqttpush.testing.FakeHost``) serves an agent in a
unit test without any broker.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from typing import TYPE_CHECKING, Any, Protocol

from mqttpush.errors import UsageError

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Coroutine

    from mqttpush.address import Address, Topics
    from mqttpush.observe import Instruments
    from mqttpush.rpc.caller import RpcCaller
    from mqttpush.rpc.remote import RemoteAgent
    from mqttpush.settings import Settings
    from mqttpush.transport.base import Message

__all__ = ["Host", "current_host", "enter_host", "leave_host"]

_current: ContextVar[Host] = ContextVar("mqttpush_host")


class Host(Protocol):
    """The services an agent is served with (a :class:`~mqttpush.Fabric` provides them)."""

    @property
    def settings(self) -> Settings:
        """All settings of the process."""
        ...

    @property
    def client_id(self) -> str:
        """The MQTT client id: unique per copy of a pool, its owner id for task leases."""
        ...

    @property
    def caller(self) -> RpcCaller:
        """The pending calls of this host (to call a topic no address names)."""
        ...

    @property
    def topics(self) -> Topics:
        """Topic names under the configured prefix."""
        ...

    @property
    def instruments(self) -> Instruments:
        """Where metrics and spans go."""
        ...

    async def publish(self, message: Message) -> bool:
        """Publish; False when the broker said no subscriber matched.

        Raises:
            ConnectionLostError: The connection is down.
        """
        ...

    def start_publish(self, message: Message) -> asyncio.Future[bool] | None:
        """Start a publish with no task awaiting it: the future gets what ``publish`` gives.

        None when the transport cannot (then await :meth:`publish`).

        Raises:
            FabricClosedError: The host is closing.
        """
        ...

    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str) -> asyncio.Task[Any]:
        """Run ``coro`` as a named task owned by the host.

        Raises:
            FabricClosedError: The host is closing (``coro`` is closed).
        """
        ...

    async def wait_connected(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the connection; return whether it is up."""
        ...

    def remote(
        self, address: str | Address, *, sender: str | None = None, timeout: float | None = None
    ) -> RemoteAgent:
        """A proxy whose method calls are RPC calls to the agent at ``address``."""
        ...


def current_host() -> Host:
    """The host of the innermost ``async with Fabric()`` in this context.

    Raises:
        UsageError: No fabric is open here.
    """
    try:
        return _current.get()
    except LookupError:
        raise UsageError("no Fabric is open here: use 'async with Fabric(...)' first") from None


def enter_host(host: Host) -> Token[Host]:
    """Make ``host`` the current one (a fabric does this when it opens)."""
    return _current.set(host)


def leave_host(token: Token[Host]) -> None:
    """Restore the host that was current before :func:`enter_host`."""
    _current.reset(token)
