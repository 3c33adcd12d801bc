"""The receiving side of the load parts: every notification counted, late ones apart from lost.

A :class:`Tally` agent registers for tasks on a sender, starts them, and counts what
arrives per task: each ``seq`` once (a second arrival is "handled twice"), arrivals
whose ``seq`` is below one already seen (out of order), and arrivals after the task's
final notification (late, with their lateness: seconds after the final). It keeps
counting for a bounded drain period after the last final, so a notification that
comes late is reported as late; lost is only what never arrived.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mqttpush.agent.base import Agent
from mqttpush.errors import MqttPushError
from mqttpush.models import TaskState, new_id

if TYPE_CHECKING:
    from mqttpush.models import PushNotification

__all__ = ["MAX_LATE_SAMPLES", "Tally", "TaskCount", "merge"]

#: Lateness values a worker reports at most (the count of late ones is always whole).
MAX_LATE_SAMPLES = 20_000
_KEEP_ERRORS = 3  # failed calls' messages kept per agent, for the report


@dataclass
class TaskCount:
    """What arrived of one task: ``expected`` notifications, the final one included."""

    expected: int
    seen: bytearray = field(default_factory=bytearray)
    handled: int = 0
    top_seq: int = 0
    out_of_order: int = 0
    final_at: float | None = None
    late: list[float] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    started: bool = True

    def arrived(self, seq: int, final: bool, now: float) -> bool:  # noqa: FBT001
        """Count one arrival; False when this ``seq`` was handled before."""
        if seq >= len(self.seen):
            self.seen.extend(bytes(seq + 1 - len(self.seen)))
        if self.seen[seq]:
            return False
        self.seen[seq] = 1
        self.handled += 1
        if seq < self.top_seq:
            self.out_of_order += 1
        else:
            self.top_seq = seq
        if self.final_at is not None:
            self.late.append(now - self.final_at)
        if final:
            self.final_at = now
            self.done.set()
        return True


class Tally(Agent):
    """Counts the notifications of the tasks it started, per task."""

    def __init__(self) -> None:
        super().__init__()
        self.tasks: dict[str, TaskCount] = {}
        self.double_handled = 0
        self.rpc_failed = 0
        self.rpc_errors: list[str] = []
        self.first = 0.0
        self.last = 0.0

    async def on_message(self, notification: PushNotification) -> None:
        """Count one notification."""
        now = time.monotonic()
        count = self.tasks.get(notification.task_id)
        if count is None:
            await super().on_message(notification)
            return
        if not self.first:
            self.first = now
        final = notification.state is not TaskState.WORKING
        if not count.arrived(notification.seq, final, now):
            self.double_handled += 1
        if final:
            self.last = max(self.last, now)

    async def run_tasks(
        self, sender: str, tasks: int, count: int, timeout: float, drain: float
    ) -> None:
        """Register for and start ``tasks`` tasks of ``count`` notifications on ``sender``.

        Waits up to ``timeout`` for every final notification, then up to ``drain`` more
        while any task misses some; failed calls are counted, not raised.
        """
        remote = self.remote(sender)

        async def one() -> None:
            task_id = new_id()
            self.tasks[task_id] = TaskCount(expected=count + 1)
            try:
                await remote.register_push_endpoint(
                    config={"task_id": task_id, "address": str(self.address)}
                )
                await remote.run_task(task_id=task_id, params={"count": count})
            except MqttPushError as exc:
                self.tasks[task_id].started = False  # not waited for; what comes is counted
                self.rpc_failed += 1
                if len(self.rpc_errors) < _KEEP_ERRORS:
                    self.rpc_errors.append(f"{type(exc).__name__}: {exc}")

        async with asyncio.TaskGroup() as group:
            for _ in range(tasks):
                group.create_task(one())
        await self.settle(timeout, drain)

    async def settle(self, timeout: float, drain: float) -> None:
        """Wait up to ``timeout`` for every final, then up to ``drain`` for the rest.

        Tasks whose start failed are not waited for (whatever arrives of them counts).
        """
        waits = [asyncio.ensure_future(c.done.wait()) for c in self.tasks.values() if c.started]
        if waits:
            _, pending = await asyncio.wait(waits, timeout=timeout)
            for wait in pending:
                wait.cancel()
        deadline = time.monotonic() + drain
        while time.monotonic() < deadline and any(  # noqa: ASYNC110 - bounded drain
            c.handled < c.expected for c in self.tasks.values() if c.started
        ):
            await asyncio.sleep(0.02)

    def summary(self) -> dict[str, Any]:
        """Counts over every task so far: handled, lost, late (and lateness), order."""
        counts = list(self.tasks.values())
        late = [x for c in counts for x in c.late]
        return {
            "tasks": len(counts),
            "expected": sum(c.expected for c in counts),
            "handled": sum(c.handled for c in counts),
            "lost": sum(max(0, c.expected - c.handled) for c in counts),
            "no_final": sum(c.final_at is None for c in counts),
            "late": len(late),
            "lateness": late[:MAX_LATE_SAMPLES],
            "out_of_order": sum(c.out_of_order for c in counts),
            "final_not_last": sum(bool(c.late) for c in counts),
            "double_handled": self.double_handled,
            "duplicates_dropped": self.stats.notifications_duplicate,
            "rpc_failed": self.rpc_failed,
            "rpc_errors": self.rpc_errors,
        }


def merge(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """Several workers' (or rounds') summaries as one: counts added, lateness joined."""
    total: dict[str, Any] = {}
    for summary in summaries:
        for key, value in summary.items():
            if isinstance(value, list):
                total[key] = [*total.get(key, []), *value]
            elif isinstance(value, (int, float)):
                total[key] = total.get(key, 0) + value
    return total
