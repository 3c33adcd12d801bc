"""RPC over MQTT 5: operations, the responder that serves them, the caller, remote proxies."""
