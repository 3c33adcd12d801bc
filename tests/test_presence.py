"""Presence cards on a real Mosquitto: online, offline on a clean stop, offline by Will."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest
from pydantic import BaseModel

from mqttpush import AgentOfflineError, BackgroundTaskAgent, Fabric, TaskContext
from mqttpush.address import Address, Topics
from mqttpush.card import CARD_STATUS, CARD_STATUS_SOURCE
from mqttpush.errors import UsageError
from mqttpush.presence import read_cards
from mqttpush.testing import MemoryBroker
from mqttpush.tools.agents import list_agents, render_agents
from mqttpush.tools.demo import PushSender

SENDER = "sender@fame.fabric"


class Step(BaseModel):
    step: int


class Stepper(BackgroundTaskAgent):
    notification_schema = Step

    async def run_background_task(self, task: TaskContext) -> None:
        await task.push("one", Step(step=1))


async def _sub_card(broker, topic: str) -> str:
    """The retained card on ``topic`` as mosquitto_sub prints it: retain|properties|payload."""
    proc = await asyncio.create_subprocess_exec(
        "mosquitto_sub", "-V", "mqttv5", "-h", broker.host, "-p", str(broker.port),
        "-t", topic, "-C", "1", "-W", "10", "-F", "%r|%P|%p",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 15)
    assert proc.returncode == 0, err.decode()
    return out.decode().strip()


async def test_a_served_agent_has_a_retained_online_card_and_an_offline_one_after(broker, settings):
    topic = Topics(settings.topic_prefix).card(Address.parse("steps@fame.fabric"))
    async with Fabric(settings) as fabric:
        await fabric.serve(Stepper(), "steps@fame.fabric")
        retained, properties, payload = (await _sub_card(broker, topic)).split("|", 2)
        card = json.loads(payload)
        assert retained == "1"
        assert f"{CARD_STATUS}:online" in properties
        assert f"{CARD_STATUS_SOURCE}:agent" in properties
        assert card["address"] == "steps@fame.fabric"
        assert card["status"] == "online"
        assert card["agent"] == "Stepper"
        assert card["topics"]["rpc"] == f"{settings.topic_prefix}/fame.fabric/steps/rpc"
        ops = {op["name"]: op for op in card["operations"]}
        assert set(ops) >= {"run_task", "get_task_status", "register_push_endpoint"}
        assert ops["get_task_status"]["params"]["properties"]["wait"]["maximum"] == 300
        assert ops["get_task_status"]["params"]["required"] == ["task_id"]
        assert card["notification_schema"]["properties"]["step"]["type"] == "integer"
        assert card["version"]
        assert card["online_since"].endswith("Z")
        remote = fabric.remote("steps@fame.fabric")
        served = await remote.ensure_served()
        assert served.status == "online"
    retained, properties, payload = (await _sub_card(broker, topic)).split("|", 2)
    assert retained == "1"
    assert f"{CARD_STATUS}:offline" in properties
    assert f"{CARD_STATUS_SOURCE}:agent" in properties  # a clean stop, not the Will
    assert json.loads(payload)["status"] == "offline"


async def test_ensure_served_gives_a_typed_error_for_unknown_and_offline_agents(settings):
    async with Fabric(settings) as gone:
        await gone.serve(PushSender(count=0), "gone@fame.fabric")
    async with Fabric(settings) as fabric:
        with pytest.raises(AgentOfflineError) as unknown:
            await fabric.remote("nobody@fame.fabric").ensure_served(timeout=0.5)
        assert unknown.value.status == "unknown"
        assert unknown.value.address == "nobody@fame.fabric"
        with pytest.raises(AgentOfflineError, match="offline") as offline:
            await fabric.remote("gone@fame.fabric").ensure_served(timeout=5)
        assert offline.value.status == "offline"


async def test_a_killed_agent_is_marked_offline_by_its_will(broker, settings):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MQTTPUSH_")}
    env.update(
        MQTTPUSH_BROKER__PORT=str(broker.port),
        MQTTPUSH_TOPIC_PREFIX=settings.topic_prefix,
        MQTTPUSH_BROKER__CLIENT=settings.broker.client,  # the Will of the client under test
    )
    command = [sys.executable, "-m", "mqttpush", "serve", "sender"]
    proc = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
    topic = Topics(settings.topic_prefix).card(Address.parse(SENDER))
    try:
        async with asyncio.timeout(30):
            while True:  # bounded: until the process has published its card
                cards = await read_cards(settings.broker, topic, wait=0.5, first=True)
                if cards and cards[0].status == "online":
                    break
    finally:
        proc.kill()  # no clean stop: only the Will can say it is gone
        proc.wait(timeout=10)
    retained, properties, payload = (await _sub_card(broker, topic)).split("|", 2)
    assert retained == "1"
    assert f"{CARD_STATUS}:offline" in properties
    assert f"{CARD_STATUS_SOURCE}:will" in properties
    assert json.loads(payload)["status"] == "offline"
    agents = await list_agents(settings, wait=0.5)
    assert [(c.address, c.status) for c in agents] == [(SENDER, "offline")]
    assert render_agents(agents).startswith(f"offline {SENDER}")


async def test_mqttpush_agents_lists_online_and_offline_agents(broker, settings):
    async with Fabric(settings) as fabric:
        await fabric.serve(PushSender(count=0), "before@fame.fabric")
    async with Fabric(settings) as fabric:
        await fabric.serve(PushSender(count=0), SENDER)
        env = {k: v for k, v in os.environ.items() if not k.startswith("MQTTPUSH_")}
        env.update(
            MQTTPUSH_BROKER__PORT=str(broker.port), MQTTPUSH_TOPIC_PREFIX=settings.topic_prefix
        )
        command = [sys.executable, "-m", "mqttpush", "agents", "--wait", "0.5"]
        done = await asyncio.to_thread(
            subprocess.run, command, env=env, capture_output=True, text=True, timeout=30
        )
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        assert lines[0].startswith(f"online  {SENDER}  PushSender  since ")
        assert lines[1].startswith("offline before@fame.fabric  PushSender  until ")
        assert "register_push_endpoint" in lines[0]


async def test_presence_can_be_turned_off_and_needs_a_broker_of_its_own(settings):
    quiet = settings.model_copy(
        update={"agent": settings.agent.model_copy(update={"presence": False})}
    )
    async with Fabric(quiet) as fabric:
        await fabric.serve(PushSender(count=0), "quiet@fame.fabric")
        with pytest.raises(AgentOfflineError):
            await fabric.remote("quiet@fame.fabric").ensure_served(timeout=0.5)
    async with Fabric(settings, transport=MemoryBroker().transport()) as memory:
        await memory.serve(PushSender(count=0), SENDER)
        with pytest.raises(UsageError, match="presence cards are read from a broker"):
            await memory.lookup(SENDER)
