"""Presence: each served agent's retained card, kept on a connection of its own with a Will.

MQTT allows one Will message per connection, and a fabric may serve several agents, so
each agent's card lives on its own small connection (client id ``{client id}-card-
{name}.{domain}``, no session, no subscriptions). Its Will is the card marked offline,
retained: if the process dies or the network drops, the broker publishes it. A clean
stop publishes the offline card itself, then disconnects. Offline cards stay, so
``mqttpush agents`` can list agents that were served and are gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import logging
from typing import TYPE_CHECKING, Literal

from pydantic import PydanticUserError

from mqttpush.card import AgentCard, OperationCard, decode_card, encode_card
from mqttpush.errors import MqttPushError, ProtocolError
from mqttpush.models import utc_now
from mqttpush.transport import create_transport

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from mqttpush.address import Address, Topics
    from mqttpush.agent.base import Agent
    from mqttpush.settings import BrokerSettings
    from mqttpush.transport.base import Message, Transport

__all__ = ["Presence", "Presences", "agent_card", "read_cards"]

log = logging.getLogger(__name__)

_RECONNECT_MAX = 5.0  # seconds between attempts to bring a card's connection back


def _version() -> str:
    try:
        return importlib.metadata.version("mqttpush")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree
        return "unknown"


def agent_card(
    agent: Agent,
    address: Address,
    topics: Topics,
    *,
    status: Literal["online", "offline"],
    online_since: datetime,
) -> AgentCard:
    """The card of ``agent`` served at ``address``."""
    operations = []
    for name, op in sorted(type(agent).operations().items()):
        doc = (op.func.__doc__ or "").strip().splitlines()
        try:
            params = op.params_model.model_json_schema()
        except PydanticUserError:  # a param type without a JSON Schema: say so, do not fail
            log.warning("%s: no JSON Schema for the params of %s", address, name)
            params = {}
        operations.append(OperationCard(name=name, description=doc[0] if doc else None,
                                        params=params))  # fmt: skip
    schema = getattr(agent, "notification_schema", None)
    return AgentCard(
        address=str(address),
        status=status,
        agent=type(agent).__name__,
        version=_version(),
        online_since=online_since,
        updated_at=utc_now(),
        topics={
            "rpc": topics.rpc(address),
            "push": f"{topics.push_base(address)}/+",
            "ack": topics.receipts(address),
        },
        operations=operations,
        notification_schema=None if schema is None else schema.model_json_schema(),
    )


class Presence:
    """One agent's card, on its own connection whose Will marks it offline.

    Args:
        broker: The broker settings of the fabric (the client id is derived from its own).
        client_id: The client id of the card's connection.
        topic: The card's topic.
        card: The online card.
    """

    def __init__(self, broker: BrokerSettings, client_id: str, topic: str, card: AgentCard) -> None:
        settings = broker.model_copy(update={"client_id": client_id, "session_expiry": 0})
        self._transport: Transport = create_transport(settings)
        self._topic = topic
        self._card = card
        offline = card.model_copy(update={"status": "offline"})
        self._transport.will = encode_card(topic, offline, "will")

    @property
    def card(self) -> AgentCard:
        """The card published while the agent is served."""
        return self._card

    async def open(self) -> None:
        """Connect (with the Will) and publish the online card.

        Raises:
            BrokerUnavailableError: The broker cannot be reached.
            ProtocolError: The broker refused the card (e.g. its ACL).
        """
        await self._transport.connect()
        await self._transport.publish(encode_card(self._topic, self._card, "agent"))

    async def keep(self) -> None:
        """Bring the connection (and the online card) back whenever it drops, until cancelled."""
        delay = 0.1
        while True:
            with contextlib.suppress(MqttPushError):
                async for _ in self._transport.messages():
                    pass  # nothing is subscribed: this only notices the drop
            await asyncio.sleep(delay)
            delay = min(delay * 2, _RECONNECT_MAX)
            try:
                await self.open()
            except MqttPushError as exc:
                log.debug("card of %s not published again yet: %s", self._card.address, exc)
                continue
            delay = 0.1

    async def close(self) -> None:
        """Publish the offline card (retained), then disconnect without the Will."""
        offline = self._card.model_copy(update={"status": "offline", "updated_at": utc_now()})
        try:
            if self._transport.is_connected:
                await self._transport.publish(encode_card(self._topic, offline, "agent"))
        except MqttPushError as exc:  # the Will says the same if the connection is gone
            log.warning("offline card of %s not published: %s", self._card.address, exc)
        finally:
            await self._transport.disconnect()


class Presences:
    """The cards of the agents one fabric serves: online when served, offline on close.

    Args:
        broker: Where the cards' connections go.
        topics: The topic names of the fabric.
        client_id: The fabric's client id; each card's connection is named after it.
    """

    def __init__(self, broker: BrokerSettings, topics: Topics, client_id: str) -> None:
        self._broker = broker
        self._topics = topics
        self._client_id = client_id
        self._cards: list[Presence] = []

    async def publish(
        self,
        agent: Agent,
        address: Address,
        spawn: Callable[..., object],
    ) -> None:
        """Publish ``agent``'s online card and keep it, in a task made with ``spawn``."""
        card = agent_card(agent, address, self._topics, status="online", online_since=utc_now())
        client_id = f"{self._client_id}-card-{address.name}.{address.domain}"
        presence = Presence(self._broker, client_id, self._topics.card(address), card)
        try:
            await presence.open()
        except MqttPushError as exc:  # serving goes on without a card
            log.warning("%s: presence card not published: %s", address, exc)
        self._cards.append(presence)  # closed (offline card) on exit in any case
        spawn(presence.keep(), name=f"mqttpush-presence-{address}")

    async def close(self) -> None:
        """Publish every offline card and disconnect, each within the connect timeout."""
        for presence in self._cards:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._broker.connect_timeout):
                    await presence.close()

    async def lookup(self, address: Address, timeout: float) -> AgentCard | None:
        """The card of the agent at ``address``, or None if none came in ``timeout``."""
        cards = await read_cards(self._broker, self._topics.card(address), wait=timeout, first=True)
        return cards[0] if cards else None


async def read_cards(
    broker: BrokerSettings, topic_filter: str, *, wait: float, first: bool = False
) -> list[AgentCard]:
    """Read the retained cards matching ``topic_filter`` on a short-lived connection.

    Args:
        broker: The broker to ask (a random client id is used).
        topic_filter: A card topic, or :attr:`Topics.cards` for all.
        wait: Seconds to wait for retained cards after subscribing.
        first: Return as soon as one card has arrived.

    Raises:
        BrokerUnavailableError: The broker cannot be reached.
    """
    transport = create_transport(broker.model_copy(update={"client_id": None}))
    cards: dict[str, AgentCard] = {}
    taken = 0  # payload bytes kept
    await transport.connect()
    try:
        await transport.subscribe(topic_filter)

        async def collect() -> None:
            nonlocal taken
            async for message in transport.messages():
                if _take(message, cards):
                    taken += len(message.payload)
                await transport.ack(message)
                if len(cards) >= _MAX_CARDS or taken >= _MAX_BYTES:
                    log.warning("stopped reading cards: %d cards, %d bytes", len(cards), taken)
                    return
                if first and cards:
                    return

        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                await collect()
    finally:
        await transport.disconnect()
    return sorted(cards.values(), key=lambda c: c.address)


_MAX_CARDS = 10_000  # cards one read keeps (each at most 256 KiB) ...
_MAX_BYTES = 32 * 1024 * 1024  # ... and their payloads in all


def _take(message: Message, cards: dict[str, AgentCard]) -> bool:
    if not message.payload:
        return False  # a cleared card
    try:
        card = decode_card(message)
    except ProtocolError as exc:
        log.warning("%s", exc)
        return False
    cards[card.address] = card
    return True
