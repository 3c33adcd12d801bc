"""Receipts on the receiving side: queued per sender, published together a moment later.

An endpoint tells each notification's sender that it handled it with a receipt on the
sender's ``receipt`` topic (``{base}/ack`` on the wire, docs/protocol.md). Receipts queued
within :data:`GATHER` seconds of the first one travel together: one message per sender
and up to 500 receipts (sent at once when 500 are queued). Under load that is a few
messages instead of one per notification, so a sender's inbound stream (where its
requests come too) stays short. They are best effort: a lost one makes the sender
publish the notification again, and the duplicate is answered with a new receipt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from mqttpush import codec
from mqttpush.address import Address
from mqttpush.errors import FabricClosedError, InvalidAddressError, MqttPushError

if TYPE_CHECKING:
    from mqttpush.agent.host import Host
    from mqttpush.models import PushNotification
    from mqttpush.transport.base import Message

__all__ = ["GATHER", "ReceiptBatcher"]

log = logging.getLogger(__name__)

_RECEIPTS_PER_MESSAGE = 500
GATHER = 0.005  # seconds receipts are gathered before they are sent
_TOPICS_KEPT = 1024  # sender address -> receipt topic, cached (cleared when full)


class ReceiptBatcher:
    """Queues receipts for the senders of handled notifications and publishes them in batches.

    Args:
        host: Where to publish (and the topic names).
        endpoint: The address of the agent that handled the notifications.
    """

    def __init__(self, host: Host, endpoint: str) -> None:
        self._host = host
        self._endpoint = endpoint
        self._queued: dict[str, list[codec.ReceiptRow]] = {}
        self._topics: dict[str | None, str | None] = {}
        self._timer: asyncio.TimerHandle | None = None

    def queue(self, notification: PushNotification, sender: str | None, *, handled: bool) -> None:
        """Queue a receipt for ``sender``; nothing when the sender is not an agent."""
        topic = self._topics.get(sender, "")  # "": not looked up yet
        if topic == "":
            topic = self._topic(sender)
        if topic is None:
            return  # not from an agent: nobody to tell
        receipt = codec.receipt_of(notification, self._endpoint, handled=handled)
        queued = self._queued.get(topic)
        if queued is None:
            if not self._queued:
                self._timer = asyncio.get_running_loop().call_later(GATHER, self.flush)
            queued = self._queued[topic] = []
        queued.append(receipt)
        if len(queued) >= _RECEIPTS_PER_MESSAGE:
            self.flush()

    def _topic(self, sender: str | None) -> str | None:
        """The receipt topic of ``sender`` (None: not an agent's address), then kept."""
        topic = None
        if sender is not None:
            with contextlib.suppress(InvalidAddressError):
                topic = self._host.topics.receipts(Address.parse(sender))
        if len(self._topics) >= _TOPICS_KEPT:
            self._topics.clear()
        self._topics[sender] = topic
        return topic

    def flush(self) -> None:
        """Publish the queued receipts: one message per sender and up to 500 receipts."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        pending, self._queued = self._queued, {}
        envelope = codec.Envelope(self._endpoint, "ack")  # "ack": the wire name of receipts
        for topic, receipts in pending.items():
            for start in range(0, len(receipts), _RECEIPTS_PER_MESSAGE):
                message = codec.encode_receipt_rows(
                    topic, receipts[start : start + _RECEIPTS_PER_MESSAGE], envelope
                )
                try:
                    self._host.spawn(self._publish(message), name="mqttpush-receipts")
                except FabricClosedError:  # the sender will publish them again
                    log.debug("%s: receipts to %s not sent: closing", self._endpoint, topic)

    async def _publish(self, message: Message) -> None:
        try:
            await self._host.publish(message)
        except MqttPushError as exc:  # the sender publishes again; we answer the duplicate
            log.debug("%s: receipts to %s not sent: %s", self._endpoint, message.topic, exc)
