"""A proxy to a remote agent: attribute access becomes a JSON-RPC call."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from mqttpush import _context
from mqttpush.errors import AgentOfflineError, UsageError
from mqttpush.models import new_id

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from pydantic import BaseModel

    from mqttpush.address import Address, Topics
    from mqttpush.card import AgentCard
    from mqttpush.rpc.caller import RpcCaller

__all__ = ["RemoteAgent"]


class RemoteAgent:
    """Calls the operations of the agent at one address.

    ``await remote.run_task(task_id="t1")`` is ``await remote.call("run_task", {"task_id": "t1"})``.
    Get one from ``fabric.remote(address)`` or ``agent.remote(address)``.

    Args:
        caller: The RPC caller that sends the requests and waits for the replies.
        topics: Topic names under the prefix in use.
        address: The agent called.
        sender: The address (or client id) the requests say they come from.
        timeout: Seconds each call waits for its reply unless the call says otherwise.
        lookup: Reads the presence card of an address (see :meth:`ensure_served`).
    """

    def __init__(
        self,
        caller: RpcCaller,
        topics: Topics,
        address: Address,
        *,
        sender: str,
        timeout: float,
        lookup: Callable[[Address, float], Awaitable[AgentCard | None]] | None = None,
    ) -> None:
        self._lookup = lookup
        self._caller = caller
        self._address = address
        self._address_text = str(address)
        self._topic = topics.rpc(address)
        self._sender = sender
        self._timeout = timeout

    @property
    def address(self) -> Address:
        """The address called."""
        return self._address

    async def call(
        self,
        method: str,
        params: dict[str, Any] | BaseModel | None = None,
        *,
        timeout: float | None = None,
    ) -> Any:  # noqa: ANN401 - the operation's JSON result
        """Call ``method`` with params by name and return its JSON result.

        Args:
            method: The operation's name.
            params: The params object (a dict or a pydantic model).
            timeout: Seconds to wait for the reply; also sent as the request's
                Message Expiry Interval. Defaults to the proxy's.

        Raises:
            RpcTimeoutError: No reply in time (also a TimeoutError).
            RpcError: The agent answered with an error (subclass by code).
            ConnectionLostError: The connection dropped while waiting.
            UsageError: ``timeout`` is not above 0 (0 is not "the default").
        """
        wait = self._timeout if timeout is None else timeout
        if not wait > 0 or wait == math.inf:
            raise UsageError(f"{method}: the timeout must be a finite number of seconds above 0")
        return await self._caller.call_as(
            self._sender, _context.trace_id.get() or new_id(), self._topic, method, params,
            timeout=wait, address=self._address_text,
        )  # fmt: skip

    async def ensure_served(self, timeout: float = 2.0) -> AgentCard:
        """Check, from its presence card, that an agent is served at this address.

        Returns:
            The agent's card (its operations, their params, its notification schema).

        Raises:
            AgentOfflineError: The card says offline, or no card came within ``timeout``.
            UsageError: This proxy cannot read cards (its host has no broker).
        """
        if self._lookup is None:
            raise UsageError(f"{self!r} cannot read presence cards")
        card = await self._lookup(self._address, timeout)
        if card is None:
            raise AgentOfflineError(
                f"no agent is served at {self._address}: it has no presence card",
                address=str(self._address), status="unknown",
            )  # fmt: skip
        if card.status != "online":
            raise AgentOfflineError(
                f"the agent at {self._address} is offline (card of {card.updated_at:%H:%M:%S} UTC)",
                address=str(self._address), status=card.status,
            )  # fmt: skip
        return card

    def __getattr__(self, method: str) -> Callable[..., Awaitable[Any]]:
        if method.startswith("_"):
            raise AttributeError(method)

        async def bound(**params: Any) -> Any:  # noqa: ANN401 - JSON params and result
            return await self.call(method, params)

        bound.__name__ = method
        # Kept on the instance: the next ``remote.<method>`` finds it without coming here.
        self.__dict__[method] = bound
        return bound

    def __repr__(self) -> str:
        return f"RemoteAgent({str(self._address)!r})"
