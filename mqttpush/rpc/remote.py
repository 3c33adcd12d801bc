"""A proxy to a remote agent: attribute access becomes a JSON-RPC call."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mqttpush import _context, codec
from mqttpush.models import new_id

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from pydantic import BaseModel

    from mqttpush.address import Address, Topics
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
    """

    def __init__(
        self, caller: RpcCaller, topics: Topics, address: Address, *, sender: str, timeout: float
    ) -> None:
        self._caller = caller
        self._address = address
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
        """
        wait = timeout or self._timeout
        envelope = codec.Envelope(sender=self._sender, trace_id=_context.trace_id.get() or new_id())
        return await self._caller.call(
            self._topic, method, params, timeout=wait, envelope=envelope, address=str(self._address)
        )

    def __getattr__(self, method: str) -> Callable[..., Awaitable[Any]]:
        if method.startswith("_"):
            raise AttributeError(method)

        async def bound(**params: Any) -> Any:  # noqa: ANN401 - JSON params and result
            return await self.call(method, params)

        bound.__name__ = method
        return bound

    def __repr__(self) -> str:
        return f"RemoteAgent({str(self._address)!r})"
