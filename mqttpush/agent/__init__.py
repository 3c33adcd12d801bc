"""Agents: the host they are served by, background tasks, push notifications and receipts."""
