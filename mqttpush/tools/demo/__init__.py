"""The seed scenario: a PushSender, a PushReceiver and a client that drives the receiver."""

from mqttpush.tools.demo.client import run_client
from mqttpush.tools.demo.pair import expected_notifications, seed_agents
from mqttpush.tools.demo.receiver import PushReceiver
from mqttpush.tools.demo.sender import PushSender

__all__ = ["PushReceiver", "PushSender", "expected_notifications", "run_client", "seed_agents"]
