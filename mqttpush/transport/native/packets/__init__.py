"""The MQTT 5 packet codec of the native transport: bytes in, packets out, and back; no I/O.

Only the packets a QoS 0/1 client needs are encoded (CONNECT, PUBLISH, PUBACK, SUBSCRIBE,
PINGREQ, DISCONNECT) and decoded (CONNACK, PUBLISH, PUBACK, SUBACK, PINGRESP,
DISCONNECT). Properties this client does not use are skipped by their type, so a broker
that adds some never breaks parsing; bytes that do not follow MQTT 5 raise
:class:`~mqttpush.errors.ProtocolError`, and so does a message that cannot be encoded.

- :mod:`.wire`: packet types, limits, variable byte integers.
- :mod:`.encode`: the encoders, and the checks that keep a broker from refusing a packet.
- :mod:`.fields`: the strings, binary data and PUBLISH properties the encoders write.
- :mod:`.properties`: property identifiers, read or skipped by their wire type.
- :mod:`.decode`: the PUBLISH and PUBACK decoders.
- :mod:`.acks`: the CONNACK, SUBACK and DISCONNECT decoders, and what they return.
- :mod:`.reader`: :class:`PacketReader`, which frames the received stream.
"""

from mqttpush.transport.native.packets.acks import (
    ConnAck,
    Disconnect,
    SubAck,
    decode_connack,
    decode_disconnect,
    decode_suback,
)
from mqttpush.transport.native.packets.decode import decode_puback, decode_publish
from mqttpush.transport.native.packets.encode import (
    encode_connect,
    encode_disconnect,
    encode_pingreq,
    encode_puback,
    encode_publish,
    encode_subscribe,
)
from mqttpush.transport.native.packets.fields import encode_publish_properties
from mqttpush.transport.native.packets.reader import PacketReader
from mqttpush.transport.native.packets.wire import (
    CONNACK,
    DISCONNECT,
    MAX_REMAINING_LENGTH,
    PINGRESP,
    PUBACK,
    PUBLISH,
    SUBACK,
    PacketError,
    decode_varint,
    encode_varint,
)

__all__ = [
    "CONNACK",
    "DISCONNECT",
    "MAX_REMAINING_LENGTH",
    "PINGRESP",
    "PUBACK",
    "PUBLISH",
    "SUBACK",
    "ConnAck",
    "Disconnect",
    "PacketError",
    "PacketReader",
    "SubAck",
    "decode_connack",
    "decode_disconnect",
    "decode_puback",
    "decode_publish",
    "decode_suback",
    "decode_varint",
    "encode_connect",
    "encode_disconnect",
    "encode_pingreq",
    "encode_puback",
    "encode_publish",
    "encode_publish_properties",
    "encode_subscribe",
    "encode_varint",
]
