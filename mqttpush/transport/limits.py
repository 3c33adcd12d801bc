"""What MQTT 5 forbids in an outgoing packet, checked the same way by both client stacks.

A broker answers a filter with a misplaced wildcard by dropping the whole connection
(Mosquitto does), so the check runs before anything is sent and raises
:class:`~mqttpush.errors.PacketRefusedError` instead.
"""

from __future__ import annotations

from mqttpush.errors import PacketRefusedError

__all__ = ["check_filter"]

_SHARE = "$share/"


def check_filter(topic_filter: str) -> None:
    """Refuse a topic filter that brokers drop the connection for (MQTT 5 section 4.7.1).

    Raises:
        PacketRefusedError: An empty filter; ``#`` that is not alone in the last level;
            ``+`` that does not fill its level; a shared subscription without a share
            name or filter.
    """
    if not topic_filter:
        raise PacketRefusedError("cannot subscribe to an empty topic filter")
    levels = topic_filter.split("/")
    if topic_filter.startswith(_SHARE):
        name = levels[1]
        if len(levels) < 3 or not name or "+" in name or "#" in name:  # noqa: PLR2004 - $share/N/F
            raise PacketRefusedError(
                f"topic filter {topic_filter!r}: a shared subscription is $share/NAME/FILTER"
            )
        levels = levels[2:]
    last = len(levels) - 1
    for index, level in enumerate(levels):
        if ("#" in level and (level != "#" or index != last)) or ("+" in level and level != "+"):
            raise PacketRefusedError(
                f"topic filter {topic_filter!r}: a wildcard must fill its level, "
                "and '#' must be the last"
            )
