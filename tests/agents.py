"""Agents run as separate processes by the fault tests: ``python -m tests.agents ...``.

``collector ADDRESS FILE``: records every notification it handles as one JSON line
(appended and flushed before the handler returns), served like ``mqttpush serve``
does (fixed client id, persistent session). Settings come from MQTTPUSH_* variables.

Its handler is idempotent by notification id, as docs/reliability.md advises for
effects that must not repeat: a process killed between writing a line and
acknowledging gets that notification again after a restart, and must not write it twice.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

from mqttpush import Agent, Fabric, PushNotification, Settings
from mqttpush.tools.cli import agent_settings


class FileCollector(Agent):
    def __init__(self, path: Path) -> None:
        super().__init__()
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        self._done = {json.loads(line)["id"] for line in text.splitlines()}
        self._file = path.open("a", encoding="utf-8")

    async def on_message(self, notification: PushNotification) -> None:
        if notification.id in self._done:
            return  # handled before a crash: the effect already happened
        self._done.add(notification.id)
        line = {"id": notification.id, "seq": notification.seq, "state": notification.state}
        self._file.write(json.dumps(line) + "\n")
        self._file.flush()


async def main(address: str, path: str) -> None:
    settings = agent_settings(Settings.load(), address)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with Fabric(settings) as fabric:
        await fabric.serve(FileCollector(Path(path)), address)
        print("ready", flush=True)
        await stop.wait()


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] != "collector":
        sys.exit("usage: python -m tests.agents collector ADDRESS FILE")
    asyncio.run(main(sys.argv[2], sys.argv[3]))
