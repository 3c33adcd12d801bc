"""The web console end to end: broker with WebSockets, both agents, the console, headless Chromium.

The page is driven by playwright-core (tools/node/console-check.mjs) in the system's
chromium. It watches the seed scenario run, then acts as a push endpoint itself.
"""

from __future__ import annotations

import asyncio
import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mqttpush import Fabric
from mqttpush.models import DeliveryInfo, DeliveryState, new_id
from mqttpush.tools.devbroker import LocalMosquitto, free_port, render_config, wait_for_port
from mqttpush.transport import create_transport
from mqttpush.transport.base import Message
from tests.conftest import CONFIG, EXPECTED
from tests.node_tools import node_tools
from tests.seed_procs import RECEIVER, SENDER, seed_env, serve_agents, settings_of

CHROMIUM = os.environ.get("MQTTPUSH_CHROMIUM", "/usr/bin/chromium")


def _read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    """The next line of ``proc``'s stdout, bounded in time."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.5)
        if ready:
            line = proc.stdout.readline()
            if line:
                return line.strip()
        if proc.poll() is not None:
            break
    stderr = proc.stderr.read() if proc.stderr and proc.poll() is not None else ""
    pytest.fail(f"no line from the browser driver within {timeout:g} s: {stderr[-3000:]}")


async def _publish_card(settings, address: str, status: str) -> None:
    """A retained presence card, as agents that publish them do (docs/protocol.md)."""
    name, domain = address.split("@")
    transport = create_transport(settings.broker)
    await transport.connect()
    card = {"address": address, "status": status, "operations": ["run_task"],
            "online_since": None}  # fmt: skip
    await transport.publish(
        Message(
            topic=f"{settings.topic_prefix}/{domain}/{name}/card",
            payload=json.dumps(card).encode(),
            retain=True,
            content_type="application/json",
            user_properties=(("mqttpush-status", status),),
        )
    )
    await transport.disconnect()


async def _deliveries(settings, task_id: str) -> list[DeliveryInfo]:
    async with Fabric(settings) as fabric:
        raw = await fabric.remote(SENDER).get_delivery_status(task_id=task_id)
    return [DeliveryInfo.model_validate(d) for d in raw]


def _drive(tools: Path, broker: LocalMosquitto, env: dict[str, str], screenshot: Path):
    """Serve the console, run the seed and then the page's own task; what the page showed."""
    http_port = free_port()
    console = subprocess.Popen(
        [sys.executable, "-m", "mqttpush", "console", "--port", str(http_port),
         "--ws-url", f"ws://127.0.0.1:{broker.ws_port}"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    driver = None
    try:
        wait_for_port("127.0.0.1", http_port, 20)
        driver = subprocess.Popen(
            ["node", str(tools / "console-check.mjs"), f"http://127.0.0.1:{http_port}/",
             str(screenshot), CHROMIUM],
            cwd=tools, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert _read_line(driver, 60) == "READY"
        seed = subprocess.run(
            [sys.executable, "-m", "mqttpush", "run"],
            env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert (seed.stdout, seed.returncode) == (EXPECTED, 0)
        task_id = new_id()
        assert driver.stdin is not None
        driver.stdin.write(task_id + "\n")
        driver.stdin.flush()
        shown = json.loads(_read_line(driver, 90))
        driver.communicate(timeout=30)
        return task_id, shown
    finally:
        for proc in (driver, console):
            if proc is not None:
                if proc.poll() is None:
                    proc.terminate()
                proc.communicate(timeout=10)  # reaps it and closes its pipes


@pytest.mark.broker
def test_the_console_shows_the_seed_scenario_and_receives_as_an_endpoint(tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no chromium at {CHROMIUM}: apt-get install chromium, or MQTTPUSH_CHROMIUM")
    tools = node_tools()
    screenshot = Path(os.environ.get("MQTTPUSH_CONSOLE_SCREENSHOT", tmp_path / "console.png"))
    with LocalMosquitto(CONFIG, ws_port=free_port()) as broker:
        env = seed_env(broker, f"console/{time.monotonic_ns()}",
                       MQTTPUSH_DEMO__NOTIFICATION_INTERVAL="0.05")  # fmt: skip
        settings = settings_of(env)
        asyncio.run(_publish_card(settings, "ghost@fame.fabric", "offline"))
        # The receiver publishes no presence card, so the page must know it from traffic.
        with serve_agents(env, receiver_env={"MQTTPUSH_AGENT__PRESENCE": "false"}):
            task_id, shown = _drive(tools, broker, env, screenshot)
            delivered = asyncio.run(_deliveries(settings, task_id))
    assert shown["problems"] == []
    me = shown["me"]
    agents = {row[0]: row[1:3] for row in shown["agents"]}
    assert agents["ghost@fame.fabric"] == ["offline", "card"]  # from its presence card
    assert agents[SENDER] == ["online", "card"]  # from its presence card
    assert agents[RECEIVER] == ["seen", "traffic"]  # no card: seen from its traffic
    tasks = {row[0]: row[1:4] for row in shown["tasks"]}
    assert tasks[task_id] == [SENDER, "completed", "10 notifications"]
    receiver_tasks = [t for t in tasks.values() if t[0] == RECEIVER]
    assert [t[1] for t in receiver_tasks] == ["completed"]  # the seed's task, from the long poll
    seed_sender_tasks = [tid for tid, t in tasks.items() if t[0] == SENDER and tid != task_id]
    assert len(seed_sender_tasks) == 1
    assert tasks[seed_sender_tasks[0]][1:] == ["completed", "10 notifications"]
    rows = {(row[0], row[2]): row[3:] for row in shown["deliveries"]}
    assert rows[(seed_sender_tasks[0], RECEIVER)] == ["published 10 · receipts 10", "delivered 10"]
    assert rows[(task_id, me)] == ["published 10 · receipts 10", "delivered 10"]
    assert shown["mine"][0] == "#1 working  Notification #1"
    assert shown["mine"][-1] == "#10 completed  Task completed"
    assert len(shown["mine"]) == 10
    assert len(shown["stream"]) == 20
    # The sender's own record: every notification to the browser was receipted.
    assert [d.endpoint for d in delivered] == [me] * 10
    assert all(d.state is DeliveryState.DELIVERED and d.detail is None for d in delivered)
    assert screenshot.stat().st_size > 10_000


def test_local_brokers_move_the_websockets_listener_or_leave_it_out():
    for name in ("mosquitto.conf", "mosquitto-secure.conf"):
        template = (CONFIG.parent / name).read_text()
        without = render_config(template, port=1884)
        moved = render_config(template, port=1884, ws_port=9002)
        lines = [line for line in moved.splitlines() if line and not line.startswith("#")]
        assert "websockets" not in " ".join(line for line in without.splitlines()
                                            if not line.startswith("#"))  # fmt: skip
        assert "listener 9002 127.0.0.1" in lines
        assert lines[lines.index("listener 9002 127.0.0.1") + 1] == "protocol websockets"
        # Nothing else is lost with it (the anonymous access of the open profile, say).
        rest = [line for line in without.splitlines() if line and not line.startswith("#")]
        assert set(rest) <= set(lines)
    assert "allow_anonymous true" in render_config((CONFIG.parent / "mosquitto.conf").read_text(),
                                                   port=1884)  # fmt: skip
