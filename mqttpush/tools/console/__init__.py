"""``mqttpush console``: a live web console of the agents, tasks, deliveries and notifications.

The page is static (HTML, CSS, JavaScript and the vendored browser bundle of MQTT.js,
https://github.com/mqttjs/MQTT.js, MIT licence, ``static/mqtt.LICENSE.md``): the browser
connects to the broker itself over MQTT 5 on WebSockets and reads the wire protocol, so
this command only serves files and ``config.json`` (the WebSocket URL and the prefix).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import signal
from importlib import resources
from typing import TYPE_CHECKING

from mqttpush.tools.httpd import serve_pages

if TYPE_CHECKING:
    from collections.abc import Callable

    from mqttpush.settings import Settings

__all__ = ["console_pages", "serve_console"]

log = logging.getLogger(__name__)

_TYPES = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "mqtt.min.js": "text/javascript; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
}


def console_pages(settings: Settings, ws_url: str) -> dict[str, Callable[[], tuple[str, bytes]]]:
    """The console's routes: its static files and its configuration."""
    static = resources.files(__package__) / "static"
    files = {name: (kind, (static / name).read_bytes()) for name, kind in _TYPES.items()}
    config = json.dumps(
        {"ws_url": ws_url, "prefix": settings.topic_prefix, "sender": settings.demo.sender_address}
    ).encode()
    routes: dict[str, Callable[[], tuple[str, bytes]]] = {
        f"/{name}": functools.partial(_same, page) for name, page in files.items()
    }
    routes["/"] = routes["/index.html"]
    routes["/config.json"] = lambda: ("application/json", config)
    return routes


def _same(page: tuple[str, bytes]) -> tuple[str, bytes]:
    return page


async def serve_console(settings: Settings, *, host: str, port: int, ws_url: str) -> None:
    """Serve the console until SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with serve_pages(console_pages(settings, ws_url), host, port) as bound:
        print(f"console at http://{host}:{bound}/ (broker {ws_url})", flush=True)
        await stop.wait()
