"""The routes and subscriptions of one served agent, alone or as one copy of a pool."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mqttpush.routing import Lane, Route

if TYPE_CHECKING:
    from collections.abc import Callable

    from mqttpush.address import Address, Topics
    from mqttpush.agent.base import Agent
    from mqttpush.routing import Router
    from mqttpush.transport.base import Message

__all__ = ["agent_routes"]


def agent_routes(
    router: Router,
    agent: Agent,
    topics: Topics,
    address: Address,
    spawn: Callable[..., object],
    *,
    pool: str | None,
    client_id: str,
) -> list[str]:
    """Route ``agent``'s ``rpc``, ``push/+`` and ``ack`` topics; return the filters to subscribe.

    As one copy of ``pool``, requests and notifications are shared subscriptions, and the
    copy also takes requests on a topic of its own (``rpc/{client_id}``).
    """
    rpc_topic = topics.rpc(address)
    push_base = topics.push_base(address)
    receipt_topic = topics.receipts(address)

    async def accept_request(message: Message) -> None:
        # Acknowledged once accepted, not once answered: a long poll must not hold a
        # slot of the broker's Receive Maximum; a repeat is answered from the cache.
        spawn(agent.handle_request(message), name="mqttpush-request")

    async def take_receipt(message: Message) -> None:
        agent.handle_receipt(message)

    router.add(rpc_topic, Route(accept_request))
    router.add(receipt_topic, Route(take_receipt, lane=Lane.RECEIPTS))
    # The agent reads the task id from the topic itself: no coroutine in between.
    router.add_children(
        push_base, Route(agent.handle_push, concurrent=True, lane=Lane.NOTIFICATIONS)
    )
    filters = [rpc_topic, f"{push_base}/+", receipt_topic]
    if pool is not None:
        # One copy of a pool: requests and notifications go to one copy each; every
        # copy hears every receipt (each keeps those of its own notifications); and
        # requests for this copy alone (a task it runs) come on a topic of its own.
        copy_topic = f"{rpc_topic}/{client_id}"
        router.add(copy_topic, Route(accept_request))
        filters = [f"$share/{pool}/{rpc_topic}", f"$share/{pool}/{push_base}/+"]
        filters += [receipt_topic, copy_topic]
    return filters
