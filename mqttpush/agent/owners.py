"""Requests for the one copy of a pool that runs a task, on that copy's own topic.

Each copy subscribes, unshared, to ``{rpc topic}/{client_id}`` (docs/protocol.md); the
task's lease names its copy. A copy that gets a request about a task another copy runs
(``cancel_task``, a late ``register_push_endpoint``) sends it on there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mqttpush import codec

if TYPE_CHECKING:
    from mqttpush.address import Address
    from mqttpush.agent.host import Host

__all__ = ["forward"]


async def forward(host: Host, address: Address, owner: str, method: str, params: Any) -> Any:  # noqa: ANN401 - JSON in, JSON out
    """Call ``method`` on the copy ``owner`` of the agent at ``address``; return its result.

    Raises:
        RpcTimeoutError: The copy did not answer within ``rpc.timeout`` (it may be dead).
        RpcError: The copy answered with an error.
    """
    return await host.caller.call(
        f"{host.topics.rpc(address)}/{owner}",
        method,
        params,
        timeout=host.settings.rpc.timeout,
        envelope=codec.Envelope(sender=str(address)),
        address=str(address),
    )
