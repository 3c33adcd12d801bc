"""The seed scenario as separate processes: the sender and the receiver served by the CLI.

Shared by the tests of metrics, tracing, progress and the console, which all watch the
seed scenario run the way an operator runs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from typing import TYPE_CHECKING

from mqttpush import Fabric
from mqttpush.errors import MqttPushError, TaskNotFoundError
from mqttpush.settings import Settings

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

SENDER, RECEIVER = "sender@fame.fabric", "receiver@fame.fabric"


def seed_env(broker, prefix: str, **extra: str) -> dict[str, str]:
    """The environment of the test's processes: its broker and its own topic prefix."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MQTTPUSH_")}
    env.update(
        MQTTPUSH_BROKER__HOST=broker.host,
        MQTTPUSH_BROKER__PORT=str(broker.port),
        MQTTPUSH_TOPIC_PREFIX=prefix,
    )
    env.update(extra)
    return env


def settings_of(env: dict[str, str]) -> Settings:
    """Settings for an in-test fabric that talks to the same agents."""
    return Settings(
        topic_prefix=env["MQTTPUSH_TOPIC_PREFIX"],
        broker={"host": env["MQTTPUSH_BROKER__HOST"], "port": int(env["MQTTPUSH_BROKER__PORT"])},
    )


async def wait_served(settings: Settings, timeout: float = 20) -> None:
    """Wait until both agents answer (bounded)."""
    async with asyncio.timeout(timeout), Fabric(settings) as fabric:
        for address in (SENDER, RECEIVER):
            while True:
                try:
                    await fabric.remote(address).call(
                        "get_task_status", {"task_id": "probe"}, timeout=1
                    )
                except TaskNotFoundError:
                    break
                except MqttPushError:
                    continue


@contextlib.contextmanager
def serve_agents(
    env: dict[str, str],
    *,
    sender_args: Sequence[str] = (),
    receiver_args: Sequence[str] = (),
    sender_env: dict[str, str] | None = None,
    receiver_env: dict[str, str] | None = None,
) -> Iterator[list[subprocess.Popen[str]]]:
    """Serve the sender and the receiver as processes; stop them (by pid) afterwards."""
    tag = str(time.monotonic_ns())
    procs = []
    try:
        for which, args, extra in (
            ("sender", sender_args, sender_env),
            ("receiver", receiver_args, receiver_env),
        ):
            proc_env = {**env, "MQTTPUSH_BROKER__CLIENT_ID": f"t-{which}-{tag}", **(extra or {})}
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "mqttpush", "serve", which, *args],
                    env=proc_env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
        asyncio.run(wait_served(settings_of(env)))
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
            try:
                proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate(timeout=10)
