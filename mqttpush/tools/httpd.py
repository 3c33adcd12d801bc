"""A tiny HTTP/1.1 server on asyncio for the tools' pages: GET only, whole bodies.

Enough for a Prometheus scrape and the console's few files; no threads, no framework.
Each route returns ``(content type, body)``; the body is made when requested.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Mapping

__all__ = ["serve_pages"]

log = logging.getLogger(__name__)

_MAX_HEAD = 16_384


def _response(status: str, content_type: str, body: bytes, *, head_only: bool = False) -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + (b"" if head_only else body)


async def _answer(
    routes: Mapping[str, Callable[[], tuple[str, bytes]]],
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
) -> None:
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
        method, target, _ = head[: head.index(b"\r\n")].decode("latin-1").split(" ", 2)
        path = target.split("?", 1)[0]
        page = routes.get(path)
        if method not in {"GET", "HEAD"}:
            writer.write(_response("405 Method Not Allowed", "text/plain", b"GET only\n"))
        elif page is None:
            writer.write(_response("404 Not Found", "text/plain", b"not found\n"))
        else:
            content_type, body = page()
            writer.write(_response("200 OK", content_type, body, head_only=method == "HEAD"))
        await writer.drain()
    except (OSError, ValueError, TimeoutError, asyncio.IncompleteReadError,
            asyncio.LimitOverrunError) as exc:  # fmt: skip
        log.debug("HTTP request not answered: %s", exc)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


@contextlib.asynccontextmanager
async def serve_pages(
    routes: Mapping[str, Callable[[], tuple[str, bytes]]], host: str, port: int
) -> AsyncIterator[int]:
    """Serve ``routes`` (path -> page) on ``host:port`` while the block runs; yields the port.

    Port 0 picks a free one.
    """

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _answer(routes, reader, writer)

    server = await asyncio.start_server(handle, host, port, limit=_MAX_HEAD)
    bound = int(server.sockets[0].getsockname()[1])
    try:
        yield bound
    finally:
        server.close()
        await server.wait_closed()
