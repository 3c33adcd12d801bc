"""The tools' tiny HTTP server: GET and HEAD of known paths, clear refusals otherwise."""

from __future__ import annotations

import asyncio

from mqttpush.settings import Settings
from mqttpush.tools.console import console_pages
from mqttpush.tools.httpd import serve_pages


async def _request(port: int, line: str) -> tuple[str, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"{line}\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    raw = await reader.read()
    writer.close()
    await writer.wait_closed()
    head, _, body = raw.partition(b"\r\n\r\n")
    status, *headers = head.decode().split("\r\n")
    return status, dict(h.split(": ", 1) for h in headers), body


async def test_known_paths_are_served_and_others_refused():
    routes = {"/metrics": lambda: ("text/plain", b"up 1\n")}
    async with serve_pages(routes, "127.0.0.1", 0) as port:
        status, headers, body = await _request(port, "GET /metrics?x=1 HTTP/1.1")
        assert (status, headers["Content-Type"], body) == (
            "HTTP/1.1 200 OK",
            "text/plain",
            b"up 1\n",
        )
        status, headers, body = await _request(port, "HEAD /metrics HTTP/1.1")
        assert (status, headers["Content-Length"], body) == ("HTTP/1.1 200 OK", "5", b"")
        assert (await _request(port, "GET /nope HTTP/1.1"))[0] == "HTTP/1.1 404 Not Found"
        assert (await _request(port, "POST /metrics HTTP/1.1"))[
            0
        ] == "HTTP/1.1 405 Method Not Allowed"


async def test_the_console_serves_its_page_its_client_and_its_configuration():
    settings = Settings(topic_prefix="demo/v1")
    async with serve_pages(console_pages(settings, "ws://127.0.0.1:9001"), "127.0.0.1", 0) as port:
        status, headers, page = await _request(port, "GET / HTTP/1.1")
        assert status == "HTTP/1.1 200 OK"
        assert headers["Content-Type"].startswith("text/html")
        assert b'<script src="mqtt.min.js">' in page
        _, _, bundle = await _request(port, "GET /mqtt.min.js HTTP/1.1")
        assert len(bundle) > 100_000  # the vendored MQTT.js browser bundle
        _, headers, config = await _request(port, "GET /config.json HTTP/1.1")
    assert headers["Content-Type"] == "application/json"
    assert (
        config
        == b'{"ws_url": "ws://127.0.0.1:9001", "prefix": "demo/v1", "sender": "sender@fame.fabric"}'
    )
