"""RPC over MQTT 5: the caller side (the serving side lives on :class:`mqttpush.Agent`)."""
