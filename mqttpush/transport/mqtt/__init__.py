"""The MQTT 5 transport on aiomqtt: the only package that imports aiomqtt or paho-mqtt.

Every aiomqtt/paho error is translated here into the mqttpush exception tree (in
:mod:`.transport`); reason codes are read with the vocabulary both stacks share
(:mod:`mqttpush.transport.reasons`). Received messages are bounded as in the native
client: past ``inbox_max_messages`` or ``inbox_max_bytes`` waiting to be handled, the
socket is not read until half drained (:mod:`mqttpush.transport.gate`).

- :mod:`.transport`: :class:`MqttTransport`, the :class:`~mqttpush.transport.base.Transport`.
- :mod:`.hooks`: what it reaches in the paho client under aiomqtt.
- :mod:`.convert`: messages, properties and reason codes between paho and mqttpush.
"""

from mqttpush.transport.mqtt.transport import MqttTransport

__all__ = ["MqttTransport"]
