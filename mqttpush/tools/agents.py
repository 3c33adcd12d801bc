"""``mqttpush agents``: the agents whose presence cards the broker keeps, online and offline."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from mqttpush.address import Topics
from mqttpush.presence import read_cards

if TYPE_CHECKING:
    from mqttpush.card import AgentCard
    from mqttpush.settings import Settings

__all__ = ["list_agents", "render_agents"]


async def list_agents(settings: Settings, wait: float = 1.0) -> list[AgentCard]:
    """Every retained card under the prefix, by address (read for ``wait`` seconds)."""
    return await read_cards(settings.broker, Topics(settings.topic_prefix).cards, wait=wait)


def render_agents(cards: list[AgentCard], *, as_json: bool = False) -> str:
    """One line per agent (online first), or the cards as a JSON array."""
    if as_json:
        return json.dumps([c.model_dump(mode="json") for c in cards], indent=2)
    if not cards:
        return "no agents: no presence card under this prefix"
    rows = sorted(cards, key=lambda c: (c.status != "online", c.address))
    width = max(len(c.address) for c in rows)
    lines = []
    for card in rows:
        when = "since" if card.status == "online" else "until"
        at = card.online_since if card.status == "online" else card.updated_at
        ops = ", ".join(op.name for op in card.operations)
        lines.append(
            f"{card.status:<8}{card.address:<{width}}  {card.agent}  {when} "
            f"{at:%Y-%m-%d %H:%M:%S} UTC  operations: {ops or '-'}"
        )
    return "\n".join(lines)
