"""Answering JSON-RPC requests for one agent: decode, check expiry, repeats, run, reply.

Whatever an operation raises becomes an error reply; a repeated request (same Response
Topic, correlation and payload) is answered from a bounded cache, never run twice: the
process's own, then, for a copy of a pool, the one its copies share in their store.
"""

from __future__ import annotations

import hashlib
import logging
import time
from typing import TYPE_CHECKING, Any, Protocol

from mqttpush import _context, codec
from mqttpush.errors import (
    InternalError,
    MethodNotFoundError,
    MqttPushError,
    RequestExpiredError,
    RpcError,
)
from mqttpush.models import new_id
from mqttpush.observe import AgentMetrics, Tracing
from mqttpush.rpc.cache import ResponseCache, SharedReplies

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from contextlib import AbstractAsyncContextManager

    from mqttpush.address import Address
    from mqttpush.models import JsonRpcId
    from mqttpush.rpc.operation import Operation
    from mqttpush.transport.base import Message

__all__ = ["RequestCounters", "Responder", "Served"]

log = logging.getLogger(__name__)


class RequestCounters(Protocol):
    """The counters a responder keeps up to date (an agent's ``stats``)."""

    requests: int
    request_errors: int
    requests_expired: int
    requests_repeated: int
    replies_refused: int
    handler_failures: int


class Served(Protocol):
    """What a responder needs of the agent it answers for."""

    @property
    def address(self) -> Address:
        """The agent's address (replies carry it as their sender)."""
        ...

    @property
    def stats(self) -> RequestCounters:
        """Where requests, errors and refusals are counted."""
        ...

    def operation(self, name: str) -> Operation | None:
        """The operation served under ``name``, if any."""
        ...

    def operations(self) -> dict[str, Operation]:
        """Every operation served, by name."""
        ...

    def slot_released(self) -> AbstractAsyncContextManager[None]:
        """Give the request's concurrency slot back while waiting."""
        ...


class Responder:
    """Answers the requests sent to one agent.

    Args:
        agent: The agent whose operations run.
        publish: Publishes a reply.
        cache_size: Replies kept to answer repeated requests.
        cache_bytes: Bytes of replies (and their keys) kept, at most.
        max_request_bytes: A larger request is refused (-32600) without being parsed; a
            larger reply is replaced by -32603 (the broker's message size limit).
        confine_to: When given, replies go only to Response Topics under this prefix
            (the ``rpc.confine_replies`` setting); others are refused and counted.
        metrics: Where each answered request is reported (method, outcome, duration).
        tracing: Opens a SERVER span around each request.
    """

    def __init__(
        self,
        agent: Served,
        publish: Callable[[Message], Awaitable[object]],
        *,
        cache_size: int,
        cache_bytes: int | None = None,
        max_request_bytes: int | None = None,
        confine_to: str | None = None,
        metrics: AgentMetrics | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        self._agent = agent
        self._sender = str(agent.address)  # replies carry it; served agents keep theirs
        self._publish = publish
        self._metrics = metrics or AgentMetrics()
        self._tracing = tracing or Tracing()
        self._cache = ResponseCache(cache_size, cache_bytes)
        #: The cache a pool's copies share (second level); set when serving one copy.
        self.shared: SharedReplies | None = None
        self._max_request_bytes = max_request_bytes
        self._confine_to = confine_to

    async def answer(self, message: Message) -> None:
        """Answer one request message (the agent holds a request slot meanwhile)."""
        started = time.perf_counter()
        request_id, decoded = codec.read_request(message.payload, self._max_request_bytes)
        method = None if isinstance(decoded, RpcError) else decoded.method
        outcome = "ok"
        try:
            with self._tracing.rpc_server(message, method, self._sender):
                outcome = await self._answer(message, request_id, decoded, method)
        finally:
            known = method if method is None or self._agent.operation(method) else "_unknown"
            self._metrics.request_served(
                known or "_invalid", outcome, time.perf_counter() - started
            )

    async def _answer(
        self,
        message: Message,
        request_id: JsonRpcId,
        decoded: codec.Request | RpcError,
        method: str | None,
    ) -> str:
        """Answer, and return the outcome: ``ok``, ``repeated`` or the error code."""
        self._agent.stats.requests += 1
        ids = codec.correlation_and_trace(message)
        _context.trace_id.set(ids[1] or new_id())
        key = _request_key(message, request_id)
        if key is not None and (earlier := self._cache.lookup(key)) is not None:
            # A repeat (broker redelivery or a caller's retry): answer, do not run again.
            self._agent.stats.requests_repeated += 1
            async with self._agent.slot_released():  # the first copy does the work
                earlier_reply = await earlier
            if earlier_reply is not None:
                await self._publish_reply(earlier_reply)
            return "repeated"
        cached = self._cache.begin(key) if key is not None else None
        reply: Message | None = None
        outcome = "ok"
        ran_here = True
        try:
            shared = self.shared if self.shared is not None and self.shared.covers(method) else None
            if key is not None and shared is not None:
                ran_here, reply = await self._from_pool(shared, key, message)
            if ran_here:
                outcome, reply = await self._run(message, request_id, decoded, method, ids)
            else:  # another copy of the pool ran it
                self._agent.stats.requests_repeated += 1
                outcome = "repeated"
        finally:
            if cached is not None and key is not None:
                if ran_here or reply is not None:
                    self._cache.finish(key, cached, reply)  # repeats, now and later, get it
                else:  # still running on another copy: a later repeat asks the pool again
                    self._cache.abandon(key, cached)
        if reply is not None:
            await self._publish_reply(reply)
        elif ran_here:
            log.debug("%s: request without a response topic, no reply sent", self._agent.address)
        if ran_here and key is not None and shared is not None:
            await shared.save(key, reply)  # after the reply: a repeat meanwhile waits
        return outcome

    async def _from_pool(
        self, shared: SharedReplies, key: tuple[str, bytes], message: Message
    ) -> tuple[bool, Message | None]:
        """Claim the request for this copy (True), or take another copy's reply (False)."""
        claim = await shared.claim(key)
        if claim.pending:  # another copy runs it now
            async with self._agent.slot_released():
                claim = await shared.wait(key)
        if claim.claimed:
            return True, None
        if claim.reply is None:  # still running elsewhere after the bound: no reply
            log.warning("%s: repeated request still running on %s; not answered here",
                        self._agent.address, claim.owner)  # fmt: skip
            return False, None
        return False, shared.replay(claim.reply, message)

    async def _run(
        self,
        message: Message,
        request_id: JsonRpcId,
        decoded: codec.Request | RpcError,
        method: str | None,
        ids: tuple[str | None, str | None],
    ) -> tuple[str, Message | None]:
        """Run the request; return the outcome (``ok`` or the error code) and the reply."""
        try:
            op, kwargs = self._prepare(message, decoded)
            result = op.dump_result(await getattr(self._agent, op.attr)(**kwargs))
        except RpcError as exc:
            self._agent.stats.request_errors += 1
            reply = self._build_reply(message, request_id, method, ids, error=exc)
            return str(exc.code), reply
        except Exception as exc:
            self._agent.stats.request_errors += 1
            self._agent.stats.handler_failures += 1
            log.exception("%s: operation %s failed", self._agent.address, method)
            error = InternalError(data={"type": type(exc).__name__, "message": str(exc)})
            reply = self._build_reply(message, request_id, method, ids, error=error)
            return str(InternalError.code), reply
        return "ok", self._build_reply(message, request_id, method, ids, result=result)

    def _prepare(
        self, message: Message, decoded: codec.Request | RpcError
    ) -> tuple[Operation, dict[str, Any]]:
        """The operation to run and its arguments, or the error to answer with instead."""
        if isinstance(decoded, RpcError):
            raise decoded
        left = codec.remaining_expiry(message)
        if left is not None and left <= 0:
            self._agent.stats.requests_expired += 1
            raise RequestExpiredError(data={"method": decoded.method})
        op = self._agent.operation(decoded.method)
        if op is None:
            raise MethodNotFoundError(
                data={"method": decoded.method, "available": sorted(self._agent.operations())}
            )
        return op, op.validate(decoded.params)

    def _build_reply(
        self,
        request: Message,
        request_id: JsonRpcId,
        method: str | None,
        ids: tuple[str | None, str | None],
        *,
        result: Any = None,  # noqa: ANN401
        error: RpcError | None = None,
    ) -> Message | None:
        if not request.response_topic:
            return None
        reply_envelope = codec.Envelope(self._sender, method, ids[0], ids[1])
        reply = codec.encode_reply(
            request, request_id, result=result, error=error, envelope=reply_envelope
        )
        limit = self._max_request_bytes
        if reply is not None and limit is not None and len(reply.payload) > limit:
            # The broker would refuse it (message_size_limit) and the caller wait in vain.
            self._agent.stats.request_errors += error is None
            log.warning("%s: reply to %s is %d bytes, over %d", self._agent.address, method,
                        len(reply.payload), limit)  # fmt: skip
            too_large = InternalError(
                data={"type": "ReplyTooLarge", "message": f"the reply of {len(reply.payload)} "
                      f"bytes is over the limit of {limit} bytes"}
            )  # fmt: skip
            reply = codec.encode_reply(
                request, request_id, error=too_large, envelope=reply_envelope
            )
        return reply

    async def _publish_reply(self, reply: Message) -> None:
        if self._confine_to is not None and not reply.topic.startswith(self._confine_to + "/"):
            # An agent's identity may write any reply topic; the request chooses which.
            # Outside the reply tree, it would write where the caller itself may not.
            self._agent.stats.replies_refused += 1
            log.warning("%s: no reply to %s: outside %s/", self._agent.address, reply.topic,
                        self._confine_to)  # fmt: skip
            return
        try:
            await self._publish(reply)
        except MqttPushError as exc:  # the caller's retry gets it from the response cache
            log.warning("%s: reply to %s not sent: %s", self._agent.address, reply.topic, exc)


def _request_key(message: Message, request_id: JsonRpcId) -> tuple[str, bytes] | None:
    """What identifies a request across repeats; None when nothing does.

    A repeat has the same Response Topic, the same Correlation Data (or JSON-RPC id)
    and the same payload; a different request that reuses an id is not a repeat.
    """
    if not message.response_topic:
        return None
    digest = hashlib.blake2b(message.payload, digest_size=16).digest()
    if message.correlation_data:
        return message.response_topic, message.correlation_data + digest
    if request_id is not None:
        return message.response_topic, str(request_id).encode() + digest
    return None
