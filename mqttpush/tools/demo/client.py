"""The client: runs one receiver task and returns the notifications it collected."""

from __future__ import annotations

import asyncio
from typing import Any

from mqttpush.errors import RpcTimeoutError, TaskFailedError
from mqttpush.fabric import Fabric
from mqttpush.models import TaskState, TaskStatus
from mqttpush.settings import Settings

__all__ = ["run_client", "wait_for_task"]

_POLL = 10.0  # seconds one get_task_status long-poll waits on the agent


async def wait_for_task(
    fabric: Fabric, address: str, task_id: str, *, timeout: float
) -> TaskStatus:
    """Long-poll ``get_task_status`` until the task ends; no fixed sleeps.

    A poll that times out is made again, until ``timeout``. A poll that failed with
    :class:`~mqttpush.errors.ConnectionLostError` already waited its whole timeout (at
    most 15 s) for the broker to come back, so it ends the wait: a broker that stays
    away fails the wait within one poll, not after ``timeout``.

    Raises:
        RpcTimeoutError: The task did not end within ``timeout`` seconds.
        ConnectionLostError: The broker was unreachable for a whole poll.
        TaskFailedError: The task ended failed or canceled.
    """
    agent = fabric.remote(address)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        left = deadline - loop.time()
        if left <= 0:
            raise RpcTimeoutError(address, "get_task_status", timeout)
        wait = min(_POLL, left)
        try:
            raw = await agent.call(
                "get_task_status", {"task_id": task_id, "wait": wait}, timeout=min(wait + 5, left)
            )
        except RpcTimeoutError:
            if loop.time() >= deadline:
                raise
            continue
        status = TaskStatus.model_validate(raw)
        if status.state.is_terminal:
            break
    if status.state is not TaskState.COMPLETED:
        detail = status.error.message if status.error else status.state.value
        raise TaskFailedError(
            f"task {task_id} on {address} ended {status.state.value}: {detail}", raw
        )
    return status


async def run_client(settings: Settings | None = None) -> Any:  # noqa: ANN401 - the receiver's JSON result
    """Run the seed scenario's client: one receiver task, waited for; returns its result."""
    settings = settings or Settings()
    demo = settings.demo
    async with Fabric(settings) as fabric:
        # One span around the whole run: with tracing on, the run is one trace.
        with fabric.instruments.tracing.span("mqttpush run"):
            receiver = fabric.remote(demo.receiver_address)
            started = TaskStatus.model_validate(await receiver.run_task())
            status = await wait_for_task(
                fabric, demo.receiver_address, started.task_id, timeout=demo.task_timeout + 10
            )
        return status.result
