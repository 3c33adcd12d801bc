"""The one codec: wire models to payload bytes plus MQTT 5 properties, and back.

Nothing else in mqttpush builds payloads or reads properties; see docs/protocol.md.
"""

from mqttpush.codec.envelope import (
    CONTENT_TYPE,
    CORRELATION_ID,
    MAX_LOC_CHARS,
    MAX_VALIDATION_ERRORS,
    OPERATION,
    PRIORITY,
    SENDER,
    TOKEN,
    TRACE_ID,
    Envelope,
    remaining_expiry,
    validation_detail,
)
from mqttpush.codec.notifications import (
    CLOUDEVENTS_CONTENT_TYPE,
    CLOUDEVENTS_TYPE,
    MAX_NOTIFICATION_BYTES,
    ReceiptRow,
    decode_notification,
    decode_receipts,
    encode_notification,
    encode_push,
    encode_receipt_rows,
    encode_receipts,
    receipt_of,
)
from mqttpush.codec.rpc import decode_request, decode_response, encode_reply, encode_request

__all__ = [
    "CLOUDEVENTS_CONTENT_TYPE",
    "CLOUDEVENTS_TYPE",
    "CONTENT_TYPE",
    "CORRELATION_ID",
    "MAX_LOC_CHARS",
    "MAX_NOTIFICATION_BYTES",
    "MAX_VALIDATION_ERRORS",
    "OPERATION",
    "PRIORITY",
    "SENDER",
    "TOKEN",
    "TRACE_ID",
    "Envelope",
    "ReceiptRow",
    "decode_notification",
    "decode_receipts",
    "decode_request",
    "decode_response",
    "encode_notification",
    "encode_push",
    "encode_receipt_rows",
    "encode_receipts",
    "encode_reply",
    "encode_request",
    "receipt_of",
    "remaining_expiry",
    "validation_detail",
]
