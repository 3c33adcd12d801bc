"""A broker that goes away: typed errors, no hangs, and recovery when it returns."""

from __future__ import annotations

import asyncio
import time

import pytest

from mqttpush import Agent, BrokerUnavailableError, ConnectionLostError, Fabric, operation
from mqttpush.devbroker import LocalMosquitto, free_port
from mqttpush.transport import MemoryBroker
from tests.conftest import CONFIG, make_settings


class Slow(Agent):
    @operation
    async def nap(self, seconds: float) -> float:
        await asyncio.sleep(seconds)
        return seconds


async def test_connecting_to_no_broker_is_a_clear_error():
    port = free_port()
    settings = make_settings("127.0.0.1", port)
    with pytest.raises(BrokerUnavailableError, match=f"127.0.0.1:{port}"):
        async with Fabric(settings):
            pass


@pytest.mark.timeout_s(60)
async def test_broker_crash_fails_pending_calls_and_agents_recover():
    with LocalMosquitto(CONFIG) as broker:
        settings = make_settings(broker.host, broker.port)
        async with Fabric(settings) as server, Fabric(settings) as client:
            agent = await server.serve(Slow(), "slow@test.fabric")
            remote = client.remote("slow@test.fabric")
            assert await remote.nap(seconds=0) == 0
            pending = asyncio.create_task(remote.call("nap", {"seconds": 5}, timeout=30))
            await asyncio.sleep(0.3)
            started = time.monotonic()
            broker.kill()
            with pytest.raises(ConnectionLostError):
                await pending
            assert time.monotonic() - started < 5  # failed at once, not at the 30 s timeout
            with pytest.raises(ConnectionLostError):
                await remote.call("nap", {"seconds": 0}, timeout=2)
            broker.start()  # same port, as a restarted broker would be
            async with asyncio.timeout(20):
                while True:
                    try:
                        assert await remote.call("nap", {"seconds": 0}, timeout=1) == 0
                        break
                    except (ConnectionLostError, TimeoutError):
                        await asyncio.sleep(0.1)
            assert server.reconnects >= 1
            assert client.reconnects >= 1
            assert agent.stats.handler_failures == 0


async def test_memory_broker_drop_fails_pending_calls_too():
    memory = MemoryBroker()
    settings = make_settings("127.0.0.1", 1)
    async with Fabric(settings, transport=memory.transport()) as fabric:
        await fabric.serve(Slow(), "slow@test.fabric")
        pending = asyncio.create_task(
            fabric.remote("slow@test.fabric").call("nap", {"seconds": 5}, timeout=30)
        )
        await asyncio.sleep(0.05)
        memory.drop_all()
        with pytest.raises(ConnectionLostError):
            await pending
