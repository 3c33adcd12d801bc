"""Delivery tracking on the sending side: every notification, for every endpoint.

queued -> published (the broker's PUBACK) -> delivered (the endpoint's receipt).
A publish that fails while the broker is away is retried once the connection is back,
for up to ``publish_window`` seconds, then the delivery is *failed* with the reason.
A published notification without a receipt after ``receipt_timeout`` is published
again (same id: receivers deduplicate), up to ``attempts`` times in all, then it is
*expired*. A receipt arriving later still marks it delivered, until the task folds
(:mod:`mqttpush.agent.kept`). Re-sends are driven by deadlines
(:mod:`mqttpush.agent.resend`): with nothing awaiting a receipt, no timer runs.

Flow control (:mod:`mqttpush.agent.window`): at most ``window`` notifications per
endpoint, and ``window_bytes`` of their payloads, wait for their receipt; a push to an
endpoint whose window is full waits until receipts (or expiries) make room, higher
priorities first. A slow receiver thus slows its sender, whatever the broker does with
the receiver's Receive Maximum (Mosquitto 2.0.11 was measured exceeding it). A
registration's ``rate`` spaces its notifications. At most ``backlog`` first
publications are under way at once, across all endpoints (:mod:`mqttpush.agent.backlog`).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from typing import TYPE_CHECKING

from mqttpush.agent.backlog import Backlog
from mqttpush.agent.kept import KeptDeliveries
from mqttpush.agent.resend import ResendQueue
from mqttpush.agent.tracked import NOBODY, TrackedDelivery, info_of
from mqttpush.agent.window import Pacer, Windows
from mqttpush.errors import ConnectionLostError, FabricClosedError, ProtocolError
from mqttpush.models import DeliveryInfo, DeliveryState, Receipt
from mqttpush.observe import AgentMetrics

if TYPE_CHECKING:
    from mqttpush.agent.host import Host
    from mqttpush.models import PushNotification
    from mqttpush.store import Delivery, TaskStore
    from mqttpush.transport.base import Message

__all__ = ["DeliveryTracker", "info_of"]

log = logging.getLogger(__name__)


class DeliveryTracker:
    """Publishes notifications, retries them, and records what happened to each."""

    def __init__(
        self,
        host: Host,
        *,
        receipt_timeout: float,
        attempts: int,
        publish_window: float,
        store: TaskStore | None = None,
        window: int = 100,
        window_bytes: int = 16 << 20,
        backlog: int = 1_000,
        metrics: AgentMetrics | None = None,
    ) -> None:
        self._host = host
        self._metrics = metrics or AgentMetrics()
        self._store = store
        self._windows = Windows(window, window_bytes)
        self._backlog = Backlog(backlog)
        self._pacer = Pacer()
        self._receipt_timeout = receipt_timeout
        self._attempts = attempts
        self._publish_window = publish_window
        self._kept = KeptDeliveries()
        self._unsettled = self._unsettled_bytes = 0
        self._resends = ResendQueue(receipt_timeout)
        self._unsaved: list[Delivery] = []
        self.receipts_unmatched = 0

    async def send(
        self,
        notification: PushNotification,
        messages: dict[str, Message],
        rates: dict[str, float] | None = None,
    ) -> None:
        """Queue ``notification`` for each endpoint (address -> message) and track it.

        Returns once every endpoint's window has room (taken by priority), each rate
        (endpoint -> notifications per second) allows it, and the publishes are under
        way; it does not wait for the broker's acknowledgements, so a sender keeps up
        to ``window`` notifications in flight per endpoint instead of one.
        """
        task_id = notification.task_id
        windows = self._windows
        taken: list[tuple[str, int]] = []
        try:
            for endpoint, message in messages.items():
                size = len(message.payload)
                if not windows.try_acquire(endpoint, size):  # full: wait, by priority
                    await windows.acquire(endpoint, notification.priority.rank, size)
                taken.append((endpoint, size))
                if rates and (rate := rates.get(endpoint)) is not None:
                    await self._pacer.wait(task_id, endpoint, rate)
            if not self._backlog.try_enter(task_id, len(messages)):
                await self._backlog.enter(task_id, len(messages))
        except BaseException:
            for endpoint, size in taken:
                windows.release(endpoint, size)
            raise
        self._metrics.notification_sent(len(messages))
        host = self._host
        seq = notification.seq
        for index, (endpoint, message) in enumerate(messages.items()):
            delivery = TrackedDelivery(notification.id, task_id, seq, endpoint, message)
            self._kept.add(delivery)
            self._unsettled += 1
            self._unsettled_bytes += delivery.size
            try:
                started = host.start_publish(message)
                if started is None:
                    host.spawn(self._first_publish(delivery), name="mqttpush-publish")
                else:
                    started.add_done_callback(functools.partial(self._first_done, delivery))
            except FabricClosedError as exc:  # the fabric is closing: never leave one queued
                self._backlog.leave(task_id, len(messages) - index)  # those never started
                self._final(delivery, DeliveryState.FAILED, f"not published: {exc}")
                raise

    def _release(self, delivery: TrackedDelivery) -> None:
        self._windows.release(delivery.endpoint, delivery.size)
        self._unsettled -= 1
        self._unsettled_bytes -= delivery.size
        if not self._unsettled:
            self._resends.clear()  # nothing awaits a receipt: no timer left running

    def outstanding(self, endpoint: str) -> int:
        """Notifications to ``endpoint`` still waiting for a receipt."""
        return self._windows.outstanding(endpoint)

    def waiting(self, endpoint: str) -> int:
        """Pushes waiting for room in ``endpoint``'s window."""
        return self._windows.waiting(endpoint)

    def outstanding_bytes(self, endpoint: str) -> int:
        """Payload bytes of the notifications to ``endpoint`` still waiting for a receipt."""
        return self._windows.outstanding_bytes(endpoint)

    def window_used(self) -> dict[str, int]:
        """Notifications awaiting a receipt, per endpoint (endpoints with none left out)."""
        return self._windows.used()

    def unsettled(self) -> tuple[int, int]:
        """Deliveries not in a final state yet, and the payload bytes kept to re-send them."""
        return self._unsettled, self._unsettled_bytes

    @property
    def resend_wakeups(self) -> int:
        """Times the resend loop woke for a deadline (it sleeps untimed when none is due)."""
        return self._resends.wakeups

    async def _first_publish(
        self, delivery: TrackedDelivery, lost: ConnectionLostError | None = None
    ) -> None:
        try:
            await self._publish(delivery, lost)
        finally:
            self._backlog.leave(delivery.task_id)

    def _first_done(self, delivery: TrackedDelivery, started: asyncio.Future[bool]) -> None:
        """A first publish started with ``start_publish`` ended: record how, or retry."""
        if started.cancelled():
            error: BaseException | None = FabricClosedError("the publish was cancelled")
        else:
            error = started.exception()
        if error is None:
            self._backlog.leave(delivery.task_id)
            self._acknowledged(delivery, started.result())
            return
        if isinstance(error, ConnectionLostError):  # retried as publish() would be
            try:
                self._host.spawn(self._first_publish(delivery, error), name="mqttpush-publish")
            except FabricClosedError:
                pass  # shutting down: failed below
            else:
                return
        self._backlog.leave(delivery.task_id)
        if isinstance(error, ProtocolError):  # refused by the broker (not authorized, too big...)
            self._fail(delivery, str(error))
        elif delivery.state is DeliveryState.QUEUED:
            self._final(delivery, DeliveryState.FAILED, "not published: shutting down")

    async def published(self, task_id: str) -> None:
        """Wait until every notification of a task queued so far was published (or failed)."""
        await self._backlog.published(task_id, self._publish_window + self._receipt_timeout)

    async def _publish(
        self, delivery: TrackedDelivery, lost: ConnectionLostError | None = None
    ) -> None:
        """Publish (again) until the broker acknowledges it, for up to ``publish_window``.

        ``lost`` is the error of a first attempt made already: wait for the connection.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._publish_window
        while delivery.message is not None:
            if lost is not None:
                await asyncio.sleep(0.05)  # yield: let the fabric notice the drop first
                left = deadline - loop.time()
                if left <= 0 or not await self._host.wait_connected(left):
                    self._fail(delivery, f"not published within {self._publish_window:g} s: {lost}")
                    return
                lost = None
                continue
            try:
                matched = await self._host.publish(delivery.message)
            except ConnectionLostError as exc:
                lost = exc
                continue
            except ProtocolError as exc:  # refused by the broker (not authorized, too big...)
                self._fail(delivery, str(exc))
                return
            except asyncio.CancelledError:  # shutting down: never leave one queued
                if delivery.state is DeliveryState.QUEUED:
                    self._final(delivery, DeliveryState.FAILED, "not published: shutting down")
                raise
            self._acknowledged(delivery, matched)
            return

    def _acknowledged(self, delivery: TrackedDelivery, matched: bool) -> None:  # noqa: FBT001
        if delivery.state.is_final:
            return  # a receipt (or expiry) arrived while this copy was being published
        first = delivery.state is DeliveryState.QUEUED
        delivery.published(None if matched else NOBODY)
        self._resends.schedule(delivery)
        if first:
            self._metrics.delivery_moved(DeliveryState.PUBLISHED)

    def _fail(self, delivery: TrackedDelivery, why: str) -> None:
        self._final(delivery, DeliveryState.FAILED, why)
        log.warning("notification %s to %s failed: %s", delivery.notification_id,
                    delivery.endpoint, why)  # fmt: skip

    def _final(self, delivery: TrackedDelivery, state: DeliveryState, detail: str | None) -> None:
        if not delivery.state.is_final:
            self._release(delivery)
            if self._kept.settled_one(delivery.task_id):
                self._fold_later(delivery.task_id)
            if state is DeliveryState.DELIVERED:
                self._metrics.delivery_latency(time.monotonic() - delivery.queued_at)
        if delivery.state is not state:  # a repeated receipt moves nothing
            self._metrics.delivery_moved(state)
        delivery.move(state, detail)
        if self._store is None:
            return
        if not self._unsaved:
            try:
                self._host.spawn(self.flush(), name="mqttpush-save-deliveries")
            except FabricClosedError:  # shutting down: on_stop flushes what is left
                log.debug("deliveries saved at shutdown: the fabric is closing")
        self._unsaved.append(delivery.row)

    async def flush(self) -> None:
        """Save the final states recorded so far, in one batch.

        Final states reached in the same event-loop iteration (a burst of receipts)
        are saved together, one transaction instead of one per delivery.
        """
        batch, self._unsaved = self._unsaved, []
        if batch and self._store is not None:
            await self._store.save_deliveries(batch)

    def on_receipt(self, receipt: Receipt) -> None:
        """Mark a delivery as delivered (even after it expired: the receipt is the truth)."""
        delivery = self._kept.find(receipt.task_id, receipt.id, receipt.endpoint)
        if delivery is None:
            self.receipts_unmatched += 1
            return
        detail = None if receipt.handled else "the endpoint's handler failed"
        self._final(delivery, DeliveryState.DELIVERED, detail)

    async def resend_due(self) -> int:
        """Publish again what has waited too long for a receipt; return how many."""
        due = self._resends.due()
        for delivery in due:
            if delivery.state.is_final:
                continue  # a receipt arrived while an earlier one was being re-sent
            if delivery.attempts >= self._attempts:
                why = f"no receipt after {delivery.attempts} attempts"
                if delivery.detail == NOBODY:
                    why += f" ({NOBODY})"
                self._final(delivery, DeliveryState.EXPIRED, why)
            else:
                self._metrics.resent()
                await self._publish(delivery)
        return len(due)

    async def run(self) -> None:
        """Re-send deliveries as their deadlines pass, until cancelled (idle: no timer)."""
        while True:
            await self._resends.wait()
            await self.resend_due()

    def status(self, task_id: str) -> list[DeliveryInfo]:
        """Every delivery of a task, by sequence number then endpoint (none once folded)."""
        return self._kept.status(task_id)

    def summary(self, task_id: str) -> dict[DeliveryState, int]:
        """How many deliveries of a task are in each state."""
        return self._kept.summary(task_id)

    async def settled(self, task_id: str) -> None:
        """Wait until every notification of a task is in a final state (bounded by retries)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._receipt_timeout * (self._attempts + 1) + 1.0
        # Polling: final states are reached in several places, with no event per task.
        while self.pending(task_id) and loop.time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)

    def pending(self, task_id: str) -> int:
        """Deliveries of a task not yet in a final state."""
        return self._kept.pending(task_id)

    def ended(self, task_id: str) -> None:
        """Note that a task sent its last notification: its records fold once all are final."""
        if self._kept.end(task_id):
            self._fold_later(task_id)

    def _fold_later(self, task_id: str) -> None:
        """Fold a settled task's records after one more receipt timeout (for late receipts)."""
        if self._store is not None:  # else nothing else has its rows: kept until forgotten
            loop = asyncio.get_running_loop()
            loop.call_later(self._receipt_timeout, self._kept.fold, task_id)

    def forget(self, task_ids: set[str]) -> None:
        """Drop the records of tasks no longer kept (freeing their window slots)."""
        for task_id in task_ids:
            for delivery in self._kept.pop(task_id):
                if not delivery.state.is_final:
                    self._release(delivery)
                    # final, so that a publish still under way does not count it again
                    delivery.move(DeliveryState.EXPIRED, "forgotten with its task")

    def tracked(self) -> set[str]:
        """Task ids with per-delivery records (a folded task keeps its counts only)."""
        return self._kept.tracked()

    @property
    def kept(self) -> KeptDeliveries:
        """The delivery records kept, per task."""
        return self._kept
