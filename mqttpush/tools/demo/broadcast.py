"""Broadcast: one sender task, several receiver endpoints, and endpoints with filters.

``mqttpush run --receivers 3`` (``make run RECEIVERS=3``) serves, in the client's own
process, ``receiver-1@…`` to ``receiver-N@…`` (no filter: each gets the nine
notifications and the final one) and two filtered endpoints on the same task:
``finals@…`` (only the final notification) and ``evens@…`` (only the notifications
whose data has ``parity: even``). It registers them all on one task of the sender,
runs it, and returns what each endpoint got and the sender's delivery status per
endpoint. Each notification is also printed to ``out`` as it arrives.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import IO, TYPE_CHECKING, Any

from mqttpush.address import Address
from mqttpush.agent.base import Agent
from mqttpush.fabric import Fabric
from mqttpush.models import DeliveryInfo, NotificationFilter, TaskState, new_id
from mqttpush.tools.demo.client import wait_for_task

if TYPE_CHECKING:
    from mqttpush.models import PushNotification
    from mqttpush.settings import Settings

__all__ = ["BroadcastEndpoint", "run_broadcast"]

_SETTLE = 30.0  # seconds to wait for every delivery to settle once the task has ended

FILTERED: dict[str, dict[str, Any]] = {
    "finals": {"states": ["completed", "failed", "canceled"]},
    "evens": {"data": {"parity": "even"}},
}


class BroadcastEndpoint(Agent):
    """An endpoint that prints and keeps what it is sent (at most ``limit`` notifications)."""

    def __init__(self, out: IO[str] | None, limit: int = 10_000) -> None:
        super().__init__()
        self.got: list[PushNotification] = []
        self._out = out
        self._limit = limit

    async def on_message(self, notification: PushNotification) -> None:
        """Print the notification's line and keep it."""
        if len(self.got) < self._limit:
            self.got.append(notification)
        if self._out is not None:
            print(f"{self.address}  #{notification.seq} {notification.state.value:<9} "
                  f"{notification.message}", file=self._out, flush=True)  # fmt: skip


async def run_broadcast(
    settings: Settings, receivers: int, *, out: IO[str] | None = None
) -> dict[str, Any]:
    """Run one sender task to ``receivers`` plain endpoints and the filtered ones.

    Returns:
        ``{"task_id", "endpoints": {address: {"filter", "notifications", "seq",
        "final", "deliveries"}}}``.
    """
    demo = settings.demo
    domain = Address.parse(demo.sender_address).domain
    plain = [f"receiver-{i}@{domain}" for i in range(1, receivers + 1)]
    filtered = {f"{name}@{domain}": spec for name, spec in FILTERED.items()}
    filters: dict[str, dict[str, Any] | None] = dict.fromkeys(plain) | filtered
    task_id = new_id()
    # The endpoints live as long as this run: no presence cards to leave behind.
    quiet = settings.agent.model_copy(update={"presence": False})
    async with Fabric(settings.model_copy(update={"agent": quiet})) as fabric:
        endpoints = {a: await fabric.serve(BroadcastEndpoint(out), a) for a in filters}
        sender = fabric.remote(demo.sender_address)
        for address, spec in filters.items():
            config = {"task_id": task_id, "address": address, "filter": spec}
            await sender.register_push_endpoint(config=config)
        await sender.run_task(task_id=task_id)
        await wait_for_task(fabric, demo.sender_address, task_id, timeout=demo.task_timeout)
        infos = await _settled(sender, task_id)
        return {
            "task_id": task_id,
            "endpoints": {
                address: _summary(endpoints[address], spec, infos, address)
                for address, spec in filters.items()
            },
        }


async def _settled(sender: Any, task_id: str) -> list[DeliveryInfo]:  # noqa: ANN401 - a RemoteAgent
    """The task's delivery status once no delivery waits for a receipt (bounded)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _SETTLE
    while True:
        raw = await sender.get_delivery_status(task_id=task_id)
        infos = [DeliveryInfo.model_validate(d) for d in raw]
        if all(i.state.is_final for i in infos) or loop.time() >= deadline:
            return infos
        await asyncio.sleep(0.05)


def _summary(
    endpoint: BroadcastEndpoint,
    spec: dict[str, Any] | None,
    infos: list[DeliveryInfo],
    address: str,
) -> dict[str, Any]:
    got = sorted({n.id: n for n in endpoint.got}.values(), key=lambda n: n.seq)
    final = [n.state.value for n in got if n.state is not TaskState.WORKING]
    counts: dict[str, int] = {}
    for info in infos:
        if info.endpoint == address:
            counts[info.state.value] = counts.get(info.state.value, 0) + 1
    return {
        "filter": None
        if spec is None
        else NotificationFilter.model_validate(spec).model_dump(mode="json", exclude_none=True),
        "notifications": [n.message for n in got if n.state is TaskState.WORKING],
        "seq": [n.seq for n in got],
        "final": final[0] if final else None,
        "deliveries": counts,
    }


def broadcast_command(settings: Settings, receivers: int) -> None:
    """``mqttpush run --receivers N``: live lines on stderr, the summary as JSON on stdout."""
    result = asyncio.run(run_broadcast(settings, receivers, out=sys.stderr))
    print(render(result))


def render(result: dict[str, Any]) -> str:
    """The result as JSON, one line per endpoint (its lists kept on that line)."""
    rows = [
        f"    {json.dumps(address)}: {json.dumps(summary)}"
        for address, summary in result["endpoints"].items()
    ]
    task = json.dumps(result["task_id"])
    return '{\n  "task_id": ' + task + ',\n  "endpoints": {\n' + ",\n".join(rows) + "\n  }\n}"
