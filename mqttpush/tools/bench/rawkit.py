"""What every raw baseline shares: the payload, the in-flight window, timing and CPU time.

A raw baseline does the least a careful user would write by hand on one client library
for the same job: MQTT 5, QoS 1, the same payload size and in-flight window as mqttpush
uses, and nothing else (no validation, no deduplication, no receipts). Each client's
workers live in their own module (``raw_native``, ``raw_paho``, ``raw_gmqtt``,
``raw_aiomqtt``, ``raw_mosquitto``), so a worker process loads one client only.

Roles are named ``raw-{client}-{part}``: ``subscriber`` and ``publisher`` (the push
pair), ``responder`` and ``caller`` (the RPC round trip).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mqttpush.tools.bench.harness import peak_rss_kb

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

__all__ = ["REQUEST", "RESPONSE", "Arrivals", "payload", "timed_lanes"]

REQUEST = b'{"jsonrpc": "2.0", "method": "ping", "id": 1}'
RESPONSE = b'{"jsonrpc": "2.0", "result": "pong", "id": 1}'


def payload(size: int) -> bytes:
    """A JSON object of about ``size`` bytes, like a notification."""
    filler = "x" * max(0, size - 40)
    return f'{{"seq": 1, "state": "working", "message": "{filler}"}}'.encode()


async def timed_lanes(
    lane: Callable[[], Coroutine[Any, Any, None]], window: int, timeout: float
) -> dict[str, Any]:
    """Run ``window`` copies of ``lane`` at once: their wall and CPU time, as a publisher's."""
    start, cpu = time.monotonic(), time.process_time()
    async with asyncio.timeout(timeout), asyncio.TaskGroup() as group:
        for _ in range(window):
            group.create_task(lane())
    return {"elapsed": time.monotonic() - start, "cpu": time.process_time() - cpu}


@dataclass
class Arrivals:
    """A subscriber's count: first and last arrival, and its CPU time from ready to last."""

    count: int
    received: int = 0
    first: float = 0.0
    last: float = 0.0
    cpu_start: float = field(default_factory=time.process_time)
    cpu: float = 0.0

    def arrived(self) -> bool:
        """Count one message; True once all ``count`` have arrived."""
        self.received += 1
        now = time.monotonic()
        if self.received == 1:
            self.first = now
        if self.received >= self.count:
            self.last = now
            self.cpu = time.process_time() - self.cpu_start
            return True
        return False

    def result(self) -> dict[str, Any]:
        """The subscriber's result: the rate (first to last message), CPU time, memory."""
        span = max(self.last - self.first, 1e-9)
        return {
            "rate": (self.received - 1) / span,
            "received": self.received,
            "cpu": self.cpu,
            "peak_kb": peak_rss_kb(),
        }
