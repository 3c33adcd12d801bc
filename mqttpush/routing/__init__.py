"""Inbound messages: a router from topics to handlers, and the loop that acknowledges them.

Every consumer of a connection's messages (the fabric and its agents, ``mqttpush watch``,
the envelope tap) goes through :mod:`.loop`, which acknowledges each message (PUBACK)
once its handler has finished, so no consumer can forget to and stall its connection at
the broker's Receive Maximum.
"""

from mqttpush.routing.loop import MessageLoop, acknowledged
from mqttpush.routing.router import Lane, Route, Router

__all__ = ["Lane", "MessageLoop", "Route", "Router", "acknowledged"]
