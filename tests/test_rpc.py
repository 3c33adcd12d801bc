"""RPC contract: the same tests against the in-memory double and the real Mosquitto."""

from __future__ import annotations

import asyncio
import json
import time
from typing import TYPE_CHECKING

import pytest

from mqttpush import (
    Agent,
    InternalError,
    InvalidParamsError,
    MethodNotFoundError,
    RpcTimeoutError,
    TaskNotFoundError,
    operation,
)
from mqttpush.transport import Message

if TYPE_CHECKING:
    from mqttpush.transport import Transport


class Echo(Agent):
    def __init__(self, max_concurrency: int = 4) -> None:
        super().__init__(max_concurrency=max_concurrency)
        self.echoed: list[str] = []
        self.running = 0
        self.peak = 0

    @operation
    async def echo(self, text: str, times: int = 1) -> str:
        self.echoed.append(text)
        return text * times

    @operation
    async def boom(self) -> None:
        raise ValueError("kaput")

    @operation
    async def missing_task(self) -> None:
        raise TaskNotFoundError(data={"task_id": "x"})

    @operation
    async def nap(self, seconds: float) -> float:
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            await asyncio.sleep(seconds)
        finally:
            self.running -= 1
        return seconds


ADDRESS = "echo@test.fabric"


async def test_call_returns_the_result(kit):
    new_fabric, _ = kit
    async with new_fabric() as server, new_fabric():
        agent = await server.serve(Echo(), ADDRESS)
        remote = Agent.remote_by_address(ADDRESS)  # the innermost open fabric
        assert await remote.echo(text="hi", times=3) == "hihihi"
        assert await remote.call("echo", {"text": "x"}) == "x"
        assert agent.echoed == ["hi", "x"]


async def test_unknown_method_and_invalid_params_are_typed_errors(kit):
    new_fabric, _ = kit
    async with new_fabric() as fabric:
        await fabric.serve(Echo(), ADDRESS)
        remote = fabric.remote(ADDRESS)
        with pytest.raises(MethodNotFoundError) as missing:
            await remote.call("nope")
        assert missing.value.code == -32601
        assert "echo" in missing.value.data["available"]
        with pytest.raises(InvalidParamsError) as invalid:
            await remote.call("echo", {"text": 5, "extra": True})
        assert invalid.value.code == -32602
        assert {tuple(e["loc"]) for e in invalid.value.data} == {("text",), ("extra",)}


async def test_a_raising_handler_becomes_an_error_reply_and_the_agent_keeps_serving(kit):
    new_fabric, _ = kit
    async with new_fabric() as fabric:
        agent = await fabric.serve(Echo(), ADDRESS)
        remote = fabric.remote(ADDRESS)
        for _ in range(3):
            with pytest.raises(InternalError) as info:
                await remote.boom()
            assert info.value.code == -32603
            assert info.value.data == {"type": "ValueError", "message": "kaput"}
        with pytest.raises(TaskNotFoundError) as typed:
            await remote.missing_task()
        assert typed.value.data == {"task_id": "x"}
        assert await remote.echo(text="still here") == "still here"
        assert agent.stats.handler_failures == 3


async def test_timeout_is_a_typed_timeout_error_and_the_agent_survives(kit):
    new_fabric, _ = kit
    async with new_fabric() as fabric:
        await fabric.serve(Echo(), ADDRESS)
        remote = fabric.remote(ADDRESS)
        started = time.monotonic()
        with pytest.raises(TimeoutError) as info:
            await remote.call("nap", {"seconds": 3}, timeout=0.3)
        assert isinstance(info.value, RpcTimeoutError)
        assert info.value.method == "nap"
        assert time.monotonic() - started < 2
        assert fabric.caller.pending == 0
        assert await remote.echo(text="ok") == "ok"


async def test_expired_requests_are_not_executed(kit):
    new_fabric, _ = kit
    async with new_fabric() as fabric:
        agent = await fabric.serve(Echo(max_concurrency=1), ADDRESS)
        remote = fabric.remote(ADDRESS)
        blocker = asyncio.create_task(remote.call("nap", {"seconds": 1.6}, timeout=5))
        await asyncio.sleep(0.1)
        with pytest.raises(RpcTimeoutError):
            await remote.call(
                "echo", {"text": "late"}, timeout=0.5
            )  # expiry 1 s, slot free after 1.6 s
        assert await blocker == 1.6
        await asyncio.sleep(0.1)
        assert agent.echoed == []
        assert agent.stats.requests_expired == 1


async def test_concurrency_is_bounded_per_agent(kit):
    new_fabric, _ = kit
    async with new_fabric() as fabric:
        agent = await fabric.serve(Echo(max_concurrency=3), ADDRESS)
        remote = fabric.remote(ADDRESS)
        results = await asyncio.gather(*(remote.call("nap", {"seconds": 0.1}) for _ in range(12)))
        assert results == [0.1] * 12
        assert agent.peak == 3


async def _raw_exchange(transport: Transport, request: Message, reply_topic: str) -> Message:
    await transport.connect()
    try:
        await transport.subscribe(reply_topic)
        await transport.publish(request)
        async with asyncio.timeout(5):
            async for message in transport.messages():
                return message
    finally:
        await transport.disconnect()
    raise AssertionError("no reply")


@pytest.mark.parametrize(
    ("payload", "code", "reply_id"),
    [
        (b"{not json", -32700, None),
        (b"\xff\x00garbage", -32700, None),
        (b'{"jsonrpc": "2.0", "id": 9}', -32600, 9),
        (b'[{"jsonrpc": "2.0", "id": 1, "method": "echo"}]', -32600, None),
        (b'{"jsonrpc": "2.0", "id": "p", "method": "echo", "params": [1]}', -32602, "p"),
        # ids: a string, an integer or null; nothing else runs, not even with a null id
        (
            b'{"jsonrpc": "2.0", "id": true, "method": "echo", "params": {"text": "a"}}',
            -32600,
            None,
        ),
        (b'{"jsonrpc": "2.0", "id": 2.0, "method": "echo", "params": {"text": "a"}}', -32600, None),
        (b'{"jsonrpc": "2.0", "id": 1e2, "method": "echo", "params": {"text": "a"}}', -32600, None),
        (b'{"jsonrpc": "2.0", "id": 1.5, "method": "echo", "params": {"text": "a"}}', -32600, None),
        (b'{"jsonrpc": "2.0", "id": {}, "method": "echo", "params": {"text": "a"}}', -32600, None),
        (b'{"jsonrpc": "2.0", "id": [], "method": "echo", "params": {"text": "a"}}', -32600, None),
        # a lone surrogate is valid JSON text but not Unicode: where it is decides the code
        (
            b'{"jsonrpc": "2.0", "id": 3, "method": "echo", "params": {"text": "\\ud800"}}',
            -32602,
            3,
        ),
        (
            b'{"jsonrpc": "2.0", "id": 4, "method": "echo\\udc00", "params": {"text": "a"}}',
            -32600,
            4,
        ),
    ],
)
async def test_malformed_requests_get_json_rpc_errors(kit, payload, code, reply_id):
    settings = kit.settings
    new_fabric, new_transport = kit
    async with new_fabric() as fabric:
        agent = await fabric.serve(Echo(), ADDRESS)
        reply_topic = f"{settings.topic_prefix}/raw/replies"
        request = Message(
            topic=fabric.topics.rpc(agent.address),
            payload=payload,
            response_topic=reply_topic,
            correlation_data=b"c1",
        )
        reply = await _raw_exchange(new_transport(), request, reply_topic)
        assert reply.correlation_data == b"c1"
        body = json.loads(reply.payload)
        assert body["error"]["code"] == code
        assert body["id"] == reply_id
        assert agent.echoed == []  # none of them ran
        if b"\\u" in payload:  # said plainly: not a "Parse error" about hex escapes
            (problem,) = body["error"]["data"]
            assert problem["loc"] == (["text"] if code == -32602 else ["method"])
            assert problem["msg"].startswith("lone surrogate")
        if payload.startswith(b"{") and reply_id is None and code == -32600:
            assert body["error"]["data"][0]["loc"] == ["id"]
        assert await fabric.remote(ADDRESS).echo(text="fine") == "fine"


async def test_request_without_correlation_data_is_answered_by_json_rpc_id(kit):
    settings = kit.settings
    new_fabric, new_transport = kit
    async with new_fabric() as fabric:
        agent = await fabric.serve(Echo(), ADDRESS)
        reply_topic = f"{settings.topic_prefix}/raw/replies"
        payload = (
            b'{"jsonrpc": "2.0", "id": 41, "method": "echo", "params": {"text": "a", "times": 2}}'
        )
        request = Message(
            topic=fabric.topics.rpc(agent.address), payload=payload, response_topic=reply_topic
        )
        reply = await _raw_exchange(new_transport(), request, reply_topic)
        assert reply.correlation_data is None
        assert json.loads(reply.payload) == {"jsonrpc": "2.0", "id": 41, "result": "aa"}
        assert reply.content_type == "application/json"
        assert dict(reply.user_properties)["mqttpush-sender"] == ADDRESS


async def test_request_without_response_topic_runs_without_reply(kit):
    new_fabric, new_transport = kit
    async with new_fabric() as fabric:
        agent = await fabric.serve(Echo(), ADDRESS)
        raw = new_transport()
        await raw.connect()
        payload = b'{"jsonrpc": "2.0", "method": "echo", "params": {"text": "fire-and-forget"}}'
        await raw.publish(Message(topic=fabric.topics.rpc(agent.address), payload=payload))
        await raw.disconnect()
        for _ in range(100):  # bounded: at most ~5 s
            if agent.echoed:
                break
            await asyncio.sleep(0.05)
        assert agent.echoed == ["fire-and-forget"]


async def test_many_concurrent_calls_each_get_their_own_reply(kit):
    new_fabric, _ = kit
    async with new_fabric() as server, new_fabric() as client:
        await server.serve(Echo(max_concurrency=64), ADDRESS)
        remote = client.remote(ADDRESS)
        texts = [f"m{i}" for i in range(300)]
        assert await asyncio.gather(*(remote.echo(text=t) for t in texts)) == texts
        assert client.caller.pending == 0


async def test_a_proxy_method_is_made_once_and_calls_by_its_name(kit):
    new_fabric, _ = kit
    async with new_fabric() as fabric:
        await fabric.serve(Echo(), ADDRESS)
        remote = fabric.remote(ADDRESS)
        assert remote.echo is remote.echo
        assert remote.echo.__name__ == "echo"
        assert await remote.echo(text="a") == "a"
        assert await remote.echo(text="b", times=2) == "bb"
        with pytest.raises(AttributeError):
            remote._private  # noqa: B018 - the attribute access is the test
