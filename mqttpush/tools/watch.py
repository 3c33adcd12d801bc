"""Readable views of live traffic: notifications (``mqttpush watch``) and envelopes (``run -v``)."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, TextIO

from mqttpush import codec
from mqttpush.address import Address, Topics
from mqttpush.errors import ProtocolError
from mqttpush.routing import acknowledged
from mqttpush.transport import create_transport

if TYPE_CHECKING:
    import asyncio

    from mqttpush.settings import Settings
    from mqttpush.transport.base import Message

__all__ = ["describe_envelope", "describe_notification", "tap", "watch"]


def describe_notification(message: Message) -> str:
    """One line for a notification: time, endpoint, task, sequence, state and message."""
    endpoint = "/".join(message.topic.split("/")[-4:-2][::-1]).replace("/", "@", 1)
    try:
        n = codec.decode_notification(message.payload)
    except ProtocolError as exc:
        return f"(malformed) {message.topic}: {exc}"
    when = n.timestamp.strftime("%H:%M:%S.%f")[:-3]
    sender = message.user_property(codec.SENDER) or "?"
    return (
        f"{when}  {sender} -> {endpoint}  task {n.task_id}  #{n.seq} {n.state.value}  {n.message}"
    )


def describe_envelope(message: Message) -> str:
    """One line of metadata for any message: topic, QoS, correlation id, user properties."""
    cid = message.correlation_data.decode(errors="replace") if message.correlation_data else "-"
    props = " ".join(f"{k}={v}" for k, v in message.user_properties) or "-"
    expiry = f" expiry={message.message_expiry}s" if message.message_expiry is not None else ""
    return f"[{message.topic}] qos={message.qos} cid={cid}{expiry} {props}"


async def watch(
    settings: Settings, address: str | None, out: TextIO, *, count: int | None = None
) -> int:
    """Print notifications sent to ``address`` (all addresses when None) as they arrive.

    Returns:
        How many were printed (stops after ``count`` when given).
    """
    topics = Topics(settings.topic_prefix)
    topic_filter = (
        f"{topics.push_base(Address.parse(address))}/+"
        if address
        else f"{settings.topic_prefix}/+/+/push/+"
    )
    transport = create_transport(settings.broker)
    await transport.connect()
    seen = 0
    try:
        await transport.subscribe(topic_filter, 1)
        print(
            f"watching {topic_filter} on {transport.where} (Ctrl-C to stop)", file=out, flush=True
        )
        async with contextlib.aclosing(acknowledged(transport)) as messages:
            async for message in messages:
                print(describe_notification(message), file=out, flush=True)
                seen += 1
                if count is not None and seen >= count:
                    break
    finally:
        await transport.disconnect()
    return seen


async def tap(settings: Settings, out: TextIO, subscribed: asyncio.Event) -> None:
    """Print the envelope of every mqttpush message until cancelled."""
    transport = create_transport(settings.broker)
    await transport.connect()
    try:
        await transport.subscribe(f"{settings.topic_prefix}/#", 1)
        subscribed.set()
        async with contextlib.aclosing(acknowledged(transport)) as messages:
            async for message in messages:
                print(describe_envelope(message), file=out, flush=True)
    finally:
        with contextlib.suppress(Exception):
            await transport.disconnect()
