import json

import pydantic
import pytest
from pydantic import ValidationError

from mqttpush import codec
from mqttpush.codec import envelope as envelope_module
from mqttpush.errors import InvalidRequestError, ParseError, ProtocolError
from mqttpush.models import JsonRpcRequest, PushNotification, Receipt, TaskState
from mqttpush.transport.base import Message


def test_request_carries_mqtt5_properties_and_jsonrpc_body():
    msg = codec.encode_request(
        topic="p/d/n/rpc",
        method="echo",
        params={"x": 1},
        correlation_id="abc",
        reply_topic="p/_reply/c/abc",
        timeout=2.5,
        envelope=codec.Envelope(
            sender="me@d", operation="echo", correlation_id="abc", trace_id="t"
        ),
    )
    assert msg.qos == 1
    assert msg.content_type == "application/json"
    assert msg.correlation_data == b"abc"
    assert msg.response_topic == "p/_reply/c/abc"
    assert msg.message_expiry == 3  # whole seconds, rounded up
    assert json.loads(msg.payload) == {
        "jsonrpc": "2.0",
        "id": "abc",
        "method": "echo",
        "params": {"x": 1},
    }
    assert dict(msg.user_properties) == {
        "mqttpush-sender": "me@d",
        "mqttpush-op": "echo",
        "mqttpush-cid": "abc",
        "mqttpush-trace": "t",
    }


def test_decode_request_distinguishes_parse_errors_from_invalid_requests():
    assert isinstance(codec.decode_request(b"{nope")[1], ParseError)
    rid, err = codec.decode_request(b'{"jsonrpc": "1.0", "id": 7, "method": "m"}')
    assert rid == 7
    assert isinstance(err, InvalidRequestError)
    assert isinstance(codec.decode_request(b"[]")[1], InvalidRequestError)
    assert isinstance(codec.decode_request(b'"text"')[1], InvalidRequestError)
    rid, req = codec.decode_request(
        b'{"jsonrpc": "2.0", "id": "a", "method": "m", "params": {"k": 1}}'
    )
    assert rid == "a"
    assert isinstance(req, JsonRpcRequest)
    assert req.params == {"k": 1}


def test_reply_goes_to_the_response_topic_with_the_same_correlation_data():
    request = Message(
        topic="x/rpc",
        payload=b"{}",
        response_topic="r/1",
        correlation_data=b"cid",
        message_expiry=10,
    )
    reply = codec.encode_reply(request, 5, result={"ok": True}, envelope=codec.Envelope())
    assert reply is not None
    assert reply.topic == "r/1"
    assert reply.correlation_data == b"cid"
    assert 1 <= (reply.message_expiry or 0) <= 10
    assert json.loads(reply.payload) == {"jsonrpc": "2.0", "id": 5, "result": {"ok": True}}
    error = codec.encode_reply(
        request, 5, error=ParseError(data={"d": 1}), envelope=codec.Envelope()
    )
    assert error is not None
    assert json.loads(error.payload)["error"] == {
        "code": -32700,
        "message": "Parse error",
        "data": {"d": 1},
    }


def test_no_reply_without_a_response_topic():
    assert (
        codec.encode_reply(Message(topic="x", payload=b""), 1, result=1, envelope=codec.Envelope())
        is None
    )


def test_notification_round_trip_and_malformed_notifications():
    n = PushNotification(task_id="t1", seq=1, message="Notification #1")
    msg = codec.encode_notification("p/push/t1", n, codec.Envelope(sender="s@d", operation="push"))
    body = json.loads(msg.payload)
    assert set(body) == {"id", "task_id", "seq", "state", "message", "timestamp", "priority"}
    assert body["state"] == TaskState.WORKING
    assert codec.decode_notification(msg.payload) == n
    for bad in (b"", b"{}", b"[1]", b'{"task_id": "t", "seq": 0, "message": "m"}', b"\xff\xfe"):
        with pytest.raises(ProtocolError):
            codec.decode_notification(bad)


def test_malformed_response_is_a_protocol_error():
    with pytest.raises(ProtocolError):
        codec.decode_response(b'{"jsonrpc": "2.0"}')


def _receipt(n: int) -> Receipt:
    return Receipt(id=f"n{n}", task_id="t", seq=n, endpoint="r@fame.fabric")


def test_one_receipt_is_an_object_several_are_an_array():
    one = codec.encode_receipts("p/d/s/ack", [_receipt(1)], codec.Envelope(sender="r@fame.fabric"))
    assert json.loads(one.payload) == {
        "id": "n1", "task_id": "t", "seq": 1, "endpoint": "r@fame.fabric", "handled": True,
    }  # fmt: skip
    many = codec.encode_receipts("p/d/s/ack", [_receipt(1), _receipt(2)], codec.Envelope())
    assert [r["id"] for r in json.loads(many.payload)] == ["n1", "n2"]
    assert codec.decode_receipts(one.payload) == [_receipt(1)]
    assert codec.decode_receipts(many.payload) == [_receipt(1), _receipt(2)]


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b'{"id": "n1"}',
        b'[{"id": "n1", "task_id": "t", "seq": 1, "endpoint": "e"}, {"id": 5}]',
        b'{"id": "n1", "task_id": "t", "seq": 1, "endpoint": "e", "extra": 1}',
        b'"a string"',
    ],
)
def test_malformed_receipts_are_a_protocol_error(payload: bytes):
    with pytest.raises(ProtocolError, match="malformed delivery receipt"):
        codec.decode_receipts(payload)


def test_validation_details_are_bounded_in_count_and_name_length():
    class Strict(pydantic.BaseModel):
        model_config = pydantic.ConfigDict(extra="forbid")

    long_name = "k" * 1000
    with pytest.raises(pydantic.ValidationError) as caught:
        Strict.model_validate({long_name: 1, **{f"k{i}": i for i in range(500)}})
    detail = codec.validation_detail(caught.value)
    assert len(detail) == codec.MAX_VALIDATION_ERRORS + 1
    assert detail[0]["loc"] == ["k" * codec.MAX_LOC_CHARS + "…"]
    assert detail[-1] == {"loc": [], "msg": "401 more errors not listed", "type": "too_many_errors"}
    assert len(json.dumps(detail)) < 20_000


_REQUESTS = [
    b'{"jsonrpc": "2.0", "id": "a", "method": "m"}',
    b'{"jsonrpc": "2.0", "id": 7, "method": "m", "params": {"k": [1, 2.5, null]}}',
    b'{"jsonrpc": "2.0", "id": 123456789012345678901234567890, "method": "m"}',
    b'{"jsonrpc": "2.0", "id": null, "method": "m", "params": null}',
    b'{"jsonrpc": "2.0", "method": "m", "params": [1, 2]}',
    b'{"method": "m", "jsonrpc": "2.0", "params": {}, "id": ""}',
    b'{"jsonrpc": "2.0", "id": true, "method": "m"}',
    b'{"jsonrpc": "2.0", "id": 1.0, "method": "m"}',
    b'{"jsonrpc": "2.0", "id": 1e2, "method": "m"}',
    b'{"jsonrpc": "2.0", "id": [], "method": "m"}',
    b'{"jsonrpc": 2.0, "id": 1, "method": "m"}',
    b'{"jsonrpc": "2.0 ", "id": 1, "method": "m"}',
    b'{"jsonrpc": "2.0", "id": 1, "method": ""}',
    b'{"jsonrpc": "2.0", "id": 1, "method": 5}',
    b'{"jsonrpc": "2.0", "id": 1}',
    b'{"jsonrpc": "2.0", "id": 1, "method": "m", "params": "p"}',
    b'{"jsonrpc": "2.0", "id": 1, "method": "m", "params": 3}',
    b'{"jsonrpc": "2.0", "id": 1, "method": "m", "extra": 0}',
    b'{"id": 1, "method": "m"}',
    b"[]",
    b"null",
]


@pytest.mark.parametrize("payload", _REQUESTS)
def test_a_request_reads_as_the_model_reads_it(payload: bytes) -> None:
    request_id, read = codec.read_request(payload)
    try:
        model = JsonRpcRequest.model_validate_json(payload)
    except ValidationError:
        assert isinstance(read, InvalidRequestError)
        return
    assert read == codec.Request(model.id, model.method, model.params)
    assert request_id == model.id
    decoded = codec.decode_request(payload)[1]
    assert isinstance(decoded, JsonRpcRequest)
    assert (decoded.id, decoded.method, decoded.params) == (model.id, model.method, model.params)


_RESPONSES = [
    b'{"jsonrpc": "2.0", "id": "a", "result": "pong"}',
    b'{"jsonrpc": "2.0", "id": 3, "result": {"k": [1, null]}}',
    b'{"jsonrpc": "2.0", "id": null, "result": null}',
    b'{"result": [], "id": "a", "jsonrpc": "2.0"}',
    b'{"jsonrpc": "2.0", "id": "a", "error": {"code": -32001, "message": "m", "data": 1}}',
    b'{"jsonrpc": "2.0", "id": "a", "result": 1, "error": null}',
    b'{"jsonrpc": "2.0", "id": "a"}',
    b'{"jsonrpc": "2.0", "id": true, "result": 1}',
    b'{"jsonrpc": "2.0", "id": 1.5, "result": 1}',
    b'{"jsonrpc": "1.0", "id": "a", "result": 1}',
    b'{"jsonrpc": "2.0", "id": "a", "result": 1, "extra": 2}',
    b'{"jsonrpc": "2.0", "result": 1}',
    b"[1]",
    b"{nope",
]


@pytest.mark.parametrize("payload", _RESPONSES)
def test_a_response_reads_as_the_model_reads_it(payload: bytes) -> None:
    try:
        model = codec.decode_response(payload)
    except ProtocolError:
        with pytest.raises(ProtocolError):
            codec.read_response(payload)
        return
    assert codec.read_response(payload) == codec.Reply(model.result, model.error)


def test_values_too_long_to_send_never_become_keys_of_the_envelope_caches():
    module = envelope_module
    before = (module._leading.cache_info().currsize, module._fits.cache_info().currsize)
    for n in range(20):
        huge = ("é" if n % 2 else "x") * (200_000 + n)  # a request's method can be this long
        pairs = codec.Envelope(sender="a@b.fabric", operation=huge).to_user_properties()
        assert pairs == (("mqttpush-sender", "a@b.fabric"),)  # left out, as before
    after = (module._leading.cache_info().currsize, module._fits.cache_info().currsize)
    assert after == before
