"""The caller side of RPC: a table of pending calls keyed by correlation id.

Each caller owns one reply subscription, ``{prefix}/_reply/{client_id}/+``, made once
when the fabric connects; every call gets a fresh correlation id that is both the last
level of its reply topic and its MQTT 5 Correlation Data.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from mqttpush import codec
from mqttpush.errors import (
    ConnectionLostError,
    ProtocolError,
    RpcError,
    RpcTimeoutError,
    rpc_error_from_code,
)
from mqttpush.models import new_id
from mqttpush.observe import Instruments
from mqttpush.rpc.deadline import Deadlines

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from mqttpush.transport.base import Message

__all__ = ["RpcCaller"]

log = logging.getLogger(__name__)


class RpcCaller:
    """Sends requests and matches replies to the calls waiting for them."""

    def __init__(
        self,
        publish: Callable[[Message], Awaitable[object]],
        reply_base: str,
        connected: asyncio.Event | None = None,
        instruments: Instruments | None = None,
    ) -> None:
        self._publish = publish
        self._instruments = instruments or Instruments()
        self._connected = connected
        self._reply_base = reply_base
        self._pending: dict[str, asyncio.Future[codec.Reply]] = {}
        self._deadlines: Deadlines | None = None  # made in the loop of the first call
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

        If the connection drops, the call waits for it to come back and publishes the
        same request again (same correlation id, so the agent answers a repeat from its
        response cache rather than running it twice), all within ``timeout``. Of
        ``envelope``, the request carries the sender and the trace id.

        Raises:
            RpcTimeoutError: No reply within ``timeout`` (also a TimeoutError).
            RpcError: The agent answered with an error (the subclass matching its code).
            ConnectionLostError: No connection to the broker for the rest of ``timeout``.
            ProtocolError: The reply could not be decoded.
        """
        return await self.call_as(
            envelope.sender, envelope.trace_id, topic, method, params,
            timeout=timeout, address=address,
        )  # fmt: skip

    async def call_as(
        self,
        sender: str | None,
        trace_id: str | None,
        topic: str,
        method: str,
        params: Any,  # noqa: ANN401 - any JSON-serialisable object or pydantic model
        *,
        timeout: float,
        address: str,
    ) -> Any:  # noqa: ANN401 - the operation's JSON result
        """:meth:`call` with the sender and trace id given as they are, no envelope built first."""
        correlation_id = new_id()
        started = time.perf_counter()
        outcome = "ok"
        try:
            with self._instruments.tracing.rpc_client(method, topic, correlation_id) as headers:
                envelope = codec.Envelope(sender, method, correlation_id, trace_id, headers=headers)
                return await self._call(topic, params, envelope, timeout=timeout, address=address)
        except RpcError as exc:
            outcome = str(exc.code)
            raise
        except RpcTimeoutError:
            outcome = "timeout"
            raise
        except ConnectionLostError:
            outcome = "connection"
            raise
        except ProtocolError:
            outcome = "protocol"
            raise
        finally:
            self._instruments.metrics.call_done(method, outcome, time.perf_counter() - started)

    async def _call(
        self,
        topic: str,
        params: Any,  # noqa: ANN401
        envelope: codec.Envelope,
        *,
        timeout: float,
        address: str,
    ) -> Any:  # noqa: ANN401
        method, correlation_id = envelope.operation or "", envelope.correlation_id or ""
        request = codec.encode_request(
            topic=topic,
            method=method,
            params=params,
            correlation_id=correlation_id,
            reply_topic=f"{self._reply_base}/{correlation_id}",
            timeout=timeout,
            envelope=envelope,
        )
        lost: ConnectionLostError | None = None
        attempts = 0
        loop = asyncio.get_running_loop()
        deadlines = self._deadlines
        if deadlines is None or deadlines.loop is not loop:
            deadlines = self._deadlines = Deadlines(loop)
        try:
            with deadlines.start(timeout):
                while True:
                    attempts += 1
                    future: asyncio.Future[codec.Reply] = loop.create_future()
                    self._pending[correlation_id] = future
                    try:
                        await self._publish(request)
                        response = await future
                        break
                    except ConnectionLostError as exc:
                        if self._connected is None:
                            raise
                        lost = exc
                        if future.done() and not future.cancelled():
                            future.exception()  # retrieved: this attempt is over
                        future.cancel()  # so a later fail_all leaves it alone
                        await asyncio.sleep(0.05)  # let the fabric notice the drop first
                        await self._connected.wait()
        except TimeoutError:
            if self._connected is not None and not self._connected.is_set():
                raise ConnectionLostError(
                    f"{method} on {address}: no connection to the broker within {timeout:g} s "
                    f"({attempts} attempts){f': {lost}' if lost else ''}"
                ) from None
            raise RpcTimeoutError(address, method, timeout) from None
        finally:
            self._pending.pop(correlation_id, None)
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
            future.set_result(codec.read_response(message.payload))
        except ProtocolError as exc:
            future.set_exception(exc)

    def fail_all(self, exc: BaseException) -> None:
        """Fail every pending call with ``exc`` (the connection is gone)."""
        for future in self._pending.values():
            if not future.done():
                future.set_exception(exc)
