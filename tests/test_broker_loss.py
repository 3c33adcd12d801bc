"""A broker that goes away: typed errors, no hangs, and recovery when it returns."""

from __future__ import annotations

import asyncio
import time

import pytest

from mqttpush import Agent, BrokerUnavailableError, ConnectionLostError, Fabric, operation
from mqttpush.tools.cli import agent_settings
from mqttpush.tools.devbroker import LocalMosquitto, free_port
from mqttpush.transport import MemoryBroker
from tests.conftest import CONFIG, make_settings


class Slow(Agent):
    def __init__(self) -> None:
        super().__init__()
        self.naps: list[float] = []

    @operation
    async def nap(self, seconds: float) -> float:
        self.naps.append(seconds)
        await asyncio.sleep(seconds)
        return seconds


async def test_connecting_to_no_broker_is_a_clear_error():
    port = free_port()
    settings = make_settings("127.0.0.1", port)
    with pytest.raises(BrokerUnavailableError, match=f"127.0.0.1:{port}"):
        async with Fabric(settings):
            pass


@pytest.mark.timeout_s(60)
async def test_calls_survive_a_broker_crash_and_run_once():
    with LocalMosquitto(CONFIG) as broker:
        settings = make_settings(broker.host, broker.port)
        # As `mqttpush serve` does: a fixed client id and a session the broker keeps.
        server_settings = agent_settings(settings, "slow@test.fabric")
        async with Fabric(server_settings) as server, Fabric(settings) as client:
            agent = await server.serve(Slow(), "slow@test.fabric")
            remote = client.remote("slow@test.fabric")
            assert await remote.nap(seconds=0) == 0
            await asyncio.to_thread(broker.wait_for_save, 10)  # the session is on disk first
            pending = asyncio.create_task(remote.call("nap", {"seconds": 1.5}, timeout=30))
            await asyncio.sleep(0.3)  # the agent is running it now
            broker.kill()
            started = time.monotonic()
            with pytest.raises(ConnectionLostError, match="no connection to the broker within 1 s"):
                await remote.call("nap", {"seconds": 0.1}, timeout=1)
            assert time.monotonic() - started < 5
            broker.start()  # same port, as a restarted broker would be
            # The pending call is published again after the reconnect with the same
            # correlation id: the agent answers it from its response cache.
            assert await pending == 1.5
            assert agent.naps == [0, 1.5]
            assert agent.stats.requests_repeated >= 1  # a repeat or two, answered from the cache
            assert server.reconnects >= 1
            assert client.reconnects >= 1
            assert agent.stats.handler_failures == 0


async def test_a_call_during_an_outage_fails_with_the_reason_at_its_timeout():
    memory = MemoryBroker()
    settings = make_settings("127.0.0.1", 1)
    async with Fabric(settings, transport=memory.transport()) as fabric:
        await fabric.serve(Slow(), "slow@test.fabric")
        pending = asyncio.create_task(
            fabric.remote("slow@test.fabric").call("nap", {"seconds": 5}, timeout=1)
        )
        await asyncio.sleep(0.05)
        memory.available = False  # the broker stays away
        memory.drop_all()
        with pytest.raises(ConnectionLostError, match=r"within 1 s \(\d+ attempts\)"):
            await pending
