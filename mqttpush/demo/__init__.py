"""The seed scenario: a PushSender, a PushReceiver and a client that drives the receiver."""

from mqttpush.demo.client import run_client
from mqttpush.demo.receiver import PushReceiver
from mqttpush.demo.sender import PushSender

__all__ = ["PushReceiver", "PushSender", "run_client"]
