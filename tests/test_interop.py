"""Non-Python MQTT 5 clients (Mosquitto's own command-line tools) speaking the protocol."""

from __future__ import annotations

import asyncio
import json

from mqttpush import Fabric, TaskState
from mqttpush.tools.demo import PushReceiver, PushSender, run_client

SENDER = "sender@fame.fabric"
RECEIVER = "receiver@fame.fabric"


async def _mosquitto_rr(broker, topic: str, payload: str, *extra: str) -> dict:
    proc = await asyncio.create_subprocess_exec(
        "mosquitto_rr", "-V", "mqttv5", "-h", broker.host, "-p", str(broker.port),
        "-t", topic, "-e", f"{topic}/../interop-replies", "-m", payload, "-W", "10", *extra,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 0, err.decode()
    return json.loads(out)


async def test_mosquitto_rr_gets_a_result_and_an_error(broker, settings):
    async with Fabric(settings) as fabric:
        agent = await fabric.serve(PushSender(count=0), SENDER)
        topic = fabric.topics.rpc(agent.address)
        ok = await _mosquitto_rr(
            broker, topic, '{"jsonrpc":"2.0","id":1,"method":"run_task","params":{"task_id":"rr"}}'
        )
        assert ok["id"] == 1
        assert ok["result"]["task_id"] == "rr"
        assert ok["result"]["state"] in {"submitted", "working", "completed"}
        status = await _mosquitto_rr(
            broker,
            topic,
            '{"jsonrpc":"2.0","id":"s","method":"get_task_status",'
            '"params":{"task_id":"rr","wait":5}}',
            "-D", "publish", "correlation-data", "abc",
        )  # fmt: skip
        assert status["result"]["state"] == TaskState.COMPLETED
        err = await _mosquitto_rr(
            broker,
            topic,
            '{"jsonrpc":"2.0","id":2,"method":"get_task_status","params":{"task_id":"nope"}}',
        )
        assert err == {
            "jsonrpc": "2.0",
            "id": 2,
            "error": {"code": -32001, "message": "Task not found", "data": {"task_id": "nope"}},
        }
        unknown = await _mosquitto_rr(broker, topic, '{"jsonrpc":"2.0","id":3,"method":"launch"}')
        assert unknown["error"]["code"] == -32601
        garbage = await _mosquitto_rr(broker, topic, "this is not json")
        assert garbage["error"]["code"] == -32700
        assert garbage["id"] is None


async def test_mosquitto_sub_sees_the_notifications_on_the_documented_topic(broker, settings):
    async with Fabric(settings) as sender_fabric, Fabric(settings) as receiver_fabric:
        await sender_fabric.serve(PushSender(count=9, interval=0), SENDER)
        receiver = await receiver_fabric.serve(PushReceiver(SENDER), RECEIVER)
        pattern = f"{settings.topic_prefix}/fame.fabric/receiver/push/#"
        sub = await asyncio.create_subprocess_exec(
            "mosquitto_sub", "-V", "mqttv5", "-h", broker.host, "-p", str(broker.port), "-q", "1",
            "-t", pattern, "-v", "-C", "10", "-W", "20", "-F", "%t %p",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        await asyncio.sleep(0.5)  # let mosquitto_sub subscribe before the pushes start
        assert await run_client(settings) == {
            "notifications": [f"Notification #{i}" for i in range(1, 10)]
        }
        out, err = await asyncio.wait_for(sub.communicate(), 25)
        assert sub.returncode == 0, err.decode()
        lines = out.decode().splitlines()
        assert len(lines) == 10
        topics = {line.split(" ", 1)[0] for line in lines}
        (topic,) = topics
        assert topic.startswith(
            fabric_base := f"{settings.topic_prefix}/fame.fabric/receiver/push/"
        )
        bodies = [json.loads(line.split(" ", 1)[1]) for line in lines]
        assert [b["message"] for b in bodies[:9]] == [f"Notification #{i}" for i in range(1, 10)]
        assert [b["seq"] for b in bodies] == list(range(1, 11))
        assert bodies[-1]["state"] == "completed"
        assert topic == fabric_base + bodies[0]["task_id"]
        assert receiver.stats.notifications == 10
