"""The caller side of RPC: a table of pending calls keyed by correlation id.

Each caller owns one reply subscription, ``{prefix}/_reply/{client_id}/+``, made once
when the fabric connects; every call gets a fresh correlation id that is both the last
level of its reply topic and its MQTT 5 Correlation Data.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import TYPE_CHECKING, Any

from mqttpush import codec
from mqttpush.errors import ProtocolError, RpcTimeoutError, rpc_error_from_code

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from mqttpush.models import JsonRpcResponse
    from mqttpush.transport.base import Message

__all__ = ["RpcCaller"]

log = logging.getLogger(__name__)


class RpcCaller:
    """Sends requests and matches replies to the calls waiting for them."""

    def __init__(self, publish: Callable[[Message], Awaitable[None]], reply_base: str) -> None:
        self._publish = publish
        self._reply_base = reply_base
        self._pending: dict[str, asyncio.Future[JsonRpcResponse]] = {}
        self.unmatched_replies = 0

    @property
    def reply_filter(self) -> str:
        """The one topic filter this caller's replies arrive on."""
        return f"{self._reply_base}/+"

    @property
    def pending(self) -> int:
        """How many calls are waiting for a reply."""
        return len(self._pending)

    async def call(
        self,
        topic: str,
        method: str,
        params: Any,  # noqa: ANN401 - any JSON-serialisable object or pydantic model
        *,
        timeout: float,
        envelope: codec.Envelope,
        address: str,
    ) -> Any:  # noqa: ANN401 - the operation's JSON result
        """Publish a request and wait for its reply.

        Raises:
            RpcTimeoutError: No reply within ``timeout`` (also a TimeoutError).
            RpcError: The agent answered with an error (the subclass matching its code).
            ConnectionLostError: The connection dropped before the reply arrived.
            ProtocolError: The reply could not be decoded.
        """
        correlation_id = uuid.uuid4().hex
        future: asyncio.Future[JsonRpcResponse] = asyncio.get_running_loop().create_future()
        self._pending[correlation_id] = future
        request = codec.encode_request(
            topic=topic,
            method=method,
            params=params,
            correlation_id=correlation_id,
            reply_topic=f"{self._reply_base}/{correlation_id}",
            timeout=timeout,
            envelope=codec.Envelope(envelope.sender, method, correlation_id, envelope.trace_id),
        )
        try:
            async with asyncio.timeout(timeout):
                await self._publish(request)
                response = await future
        except TimeoutError:
            raise RpcTimeoutError(address, method, timeout) from None
        finally:
            del self._pending[correlation_id]
        if response.error is not None:
            err = response.error
            raise rpc_error_from_code(err.code, err.message, err.data)
        return response.result

    def resolve(self, message: Message) -> None:
        """Hand a reply to the call waiting for it; count and log replies nobody waits for."""
        data = message.correlation_data
        correlation_id = data.decode(errors="replace") if data else message.topic.rpartition("/")[2]
        future = self._pending.get(correlation_id)
        if future is None or future.done():
            self.unmatched_replies += 1
            log.debug("reply %s matches no pending call (late or unknown)", correlation_id)
            return
        try:
            future.set_result(codec.decode_response(message.payload))
        except ProtocolError as exc:
            future.set_exception(exc)

    def fail_all(self, exc: BaseException) -> None:
        """Fail every pending call with ``exc`` (the connection is gone)."""
        for future in self._pending.values():
            if not future.done():
                future.set_exception(exc)
