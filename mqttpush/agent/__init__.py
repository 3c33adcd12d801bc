"""Agents: operations over JSON-RPC, background tasks, push notifications, remote proxies."""
