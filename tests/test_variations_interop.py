"""Filters, priorities and CloudEvents from Mosquitto's command-line clients."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING

from mqttpush import Fabric
from mqttpush.tools.demo import PushSender

if TYPE_CHECKING:
    from mqttpush.settings import Settings

SENDER = "sender@fame.fabric"


async def _rr(broker, settings: Settings, payload: dict) -> dict:
    topic = f"{settings.topic_prefix}/fame.fabric/sender/rpc"
    proc = await asyncio.create_subprocess_exec(
        "mosquitto_rr", "-V", "mqttv5", "-h", broker.host, "-p", str(broker.port), "-q", "1",
        "-t", topic, "-e", f"{settings.topic_prefix}/cli-replies", "-m", json.dumps(payload),
        "-W", "10",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 0, err.decode()
    reply: dict = json.loads(out)
    return reply


def _register(n: int, address: str, **options: object) -> dict:
    config = {"task_id": "cli", "address": address, **options}
    params = {"config": config}
    return {"jsonrpc": "2.0", "id": n, "method": "register_push_endpoint", "params": params}


async def test_filters_priorities_and_cloudevents_from_the_mosquitto_clients(broker, settings):
    async with Fabric(settings) as fabric:
        await fabric.serve(PushSender(count=3, interval=0), SENDER)
        sub = await asyncio.create_subprocess_exec(
            "mosquitto_sub", "-V", "mqttv5", "-h", broker.host, "-p", str(broker.port), "-q", "1",
            "-t", f"{settings.topic_prefix}/cli/+/push/#", "-C", "3", "-W", "20",
            "-F", "%t|%C|%P|%p",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        await asyncio.sleep(0.5)  # let mosquitto_sub subscribe before the pushes start
        bad = await _rr(broker, settings, _register(1, "x@cli", filter={"min_priority": "max"}))
        assert bad["error"]["code"] == -32602
        assert bad["error"]["data"][0]["loc"] == ["config", "filter", "min_priority"]
        events = _register(2, "events@cli", format="cloudevents",
                           filter={"min_priority": "high"})  # fmt: skip
        assert (await _rr(broker, settings, events))["result"]["format"] == "cloudevents"
        odd = _register(3, "odd@cli", filter={"data": {"parity": "odd"}})
        assert (await _rr(broker, settings, odd))["result"]["filter"]["data"] == {"parity": "odd"}
        listed = await _rr(broker, settings, {"jsonrpc": "2.0", "id": 4,
                                              "method": "list_push_endpoints",
                                              "params": {"task_id": "cli"}})  # fmt: skip
        assert [c["address"] for c in listed["result"]] == ["events@cli", "odd@cli"]
        run = {"jsonrpc": "2.0", "id": 5, "method": "run_task", "params": {"task_id": "cli"}}
        await _rr(broker, settings, run)
        out, err = await asyncio.wait_for(sub.communicate(), 25)
        assert sub.returncode == 0, err.decode()
        lines = [line.split("|", 3) for line in out.decode().splitlines()]
        by_endpoint: dict[str, list[tuple[str, str, dict]]] = {}
        for topic, content_type, properties, payload in lines:
            endpoint = topic.split("/")[-3]
            by_endpoint.setdefault(endpoint, []).append(
                (content_type, properties, json.loads(payload))
            )
        odd_got = by_endpoint["odd"]
        assert [body["message"] for _, _, body in odd_got] == ["Notification #1", "Notification #3"]
        assert [body["seq"] for _, _, body in odd_got] == [1, 3]  # seq shows the gap
        assert all(ct == "application/json" for ct, _, _ in odd_got)
        assert all("mqttpush-priority:normal" in props for _, props, _ in odd_got)
        [(content_type, properties, event)] = by_endpoint["events"]
        assert content_type == "application/cloudevents+json"
        assert "mqttpush-priority:high" in properties
        assert event["specversion"] == "1.0"
        assert event["type"] == "io.mqttpush.task.notification"
        assert event["data"]["state"] == "completed"
        assert event["data"]["seq"] == 4
        assert event["id"] == event["data"]["id"]
