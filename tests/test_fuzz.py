"""Fuzzing the RPC and push topics with generated payloads, on the real Mosquitto.

Hypothesis generates the payloads: random bytes, random JSON, JSON-RPC and notification
shaped objects with wrong types and missing or unknown members, deep nesting, long
strings, invalid UTF-8, and now and then one of 256 KiB to 1 MiB. Each example is a
batch of them, published by a plain MQTT 5 client to agents that stay up for the whole
test: hypothesis runs in a worker thread and hands every batch to the test's event loop.

Every request with a Response Topic must get exactly one JSON-RPC reply with its
Correlation Data and the outcome docs/protocol.md gives for it; every notification
must be counted exactly once, as malformed or as handled; the connection never drops;
and afterwards valid traffic (calls, the seed scenario) still flows.

The oracles below parse a payload with pydantic_core, the JSON parser the agents use,
so "is it JSON" is the parser's call (its nesting limit, its NaN); everything after
that is decided here from the protocol, independently of mqttpush's code.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import functools
import json
import math
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pydantic_core
import pytest
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from mqttpush import Agent, Fabric, InvalidParamsError, TaskState, operation
from mqttpush.address import Address
from mqttpush.testing import Collector, eventually
from mqttpush.tools.demo import PushSender, expected_notifications, run_client, seed_agents
from mqttpush.transport import Message
from mqttpush.transport.mqtt import MqttTransport

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

    from mqttpush import Settings

SENDER = "sender@fame.fabric"
RECEIVER = "receiver@fame.fabric"
NINE = expected_notifications(9)
TARGET = "target@fuzz.fabric"
COLLECTOR = "collector@fame.fabric"
RESULT = "result"  # an outcome: a successful reply, as opposed to an error code
MISSING: Any = object()  # a member left out of a generated object
ID_MARK = "@@fuzz-id@@"  # replaced by a unique notification id when published
ROUND_LIMIT = 20.0  # seconds one batch may take, publishing and checking included
KiB = 1024
BIG = 256 * KiB  # the least size of an oversized payload

FUZZ = hypothesis_settings(
    database=None,  # nothing carried over between runs
    derandomize=True,  # the same batches on every run: CI is deterministic
    deadline=None,  # an example is a whole batch of broker round trips
    # No shrinking: each payload is checked on its own and a failure names it.
    phases=(Phase.explicit, Phase.generate),
    # A batch of payloads is big by design; generating it is not the test's cost.
    suppress_health_check=(
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ),
    print_blob=False,
)


class Fuzz:
    """One generated message: payload, MQTT properties, and where it goes."""

    __slots__ = ("correlation", "expiry", "payload", "properties", "qos", "reply", "task")

    def __init__(
        self,
        payload: bytes,
        *,
        qos: int = 1,
        reply: bool = False,
        correlation: bytes | None = None,
        expiry: int | None = None,
        properties: tuple[tuple[str, str], ...] = (),
        task: str = "",
    ) -> None:
        self.payload = payload
        self.qos = qos
        self.reply = reply
        self.correlation = correlation
        self.expiry = expiry
        self.properties = properties
        self.task = task

    def with_payload(self, payload: bytes) -> Fuzz:
        return Fuzz(
            payload,
            qos=self.qos,
            reply=self.reply,
            correlation=self.correlation,
            expiry=self.expiry,
            properties=self.properties,
            task=self.task,
        )

    def __repr__(self) -> str:
        shown = self.payload if len(self.payload) <= 300 else self.payload[:300] + b"..."
        return (
            f"Fuzz({shown!r} ({len(self.payload)} bytes), qos={self.qos}, reply={self.reply}, "
            f"correlation={self.correlation!r}, task={self.task[:40]!r})"
        )

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))


# --- strategies --------------------------------------------------------------------------

# Strings that MQTT (and Mosquitto, which checks them) accepts in topics and properties.
mqtt_text = st.text(st.characters(exclude_categories=("Cc", "Cs", "Cn")), max_size=24)
json_text = st.text(max_size=16)  # any code point but lone surrogates
json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | json_text
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(json_text, inner, max_size=4),
    max_leaves=12,
)
long_text = st.builds(
    lambda chunk, copies: chunk * copies, st.text(min_size=1, max_size=4), st.integers(500, 8000)
)


def weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """Draw from one of ``choices``, picked in proportion to its weight."""
    table = [strategy for weight, strategy in choices for _ in range(weight)]

    @st.composite
    def pick(draw: st.DrawFn) -> Any:
        return draw(table[draw(st.integers(0, len(table) - 1))])

    return pick()


@st.composite
def encoded(draw: st.DrawFn, values: st.SearchStrategy[Any]) -> bytes:
    """A JSON value, serialised in one of the ways a client might."""
    value = draw(values)
    return json.dumps(
        value,
        ensure_ascii=draw(st.booleans()),
        separators=draw(st.sampled_from([(",", ":"), (", ", ": ")])),
    ).encode()


EXTRA = "(unknown member)"  # a fault: a member the protocol does not define


@st.composite
def faulty_object(
    draw: st.DrawFn,
    good: dict[str, st.SearchStrategy[Any]],
    bad: dict[str, st.SearchStrategy[Any]],
) -> dict[str, Any]:
    """A valid object, or one with one member wrong, or with several; in any member order.

    Members drawn as MISSING are left out.
    """
    faults = [*good, EXTRA]
    mode = draw(st.sampled_from(["valid", "one", "one", "several"]))
    broken = {
        "valid": set(),
        "one": {draw(st.sampled_from(faults))},
        "several": set(draw(st.lists(st.sampled_from(faults), unique=True))),
    }[mode]
    obj = {}
    for name, good_values in good.items():
        value = draw(bad[name] if name in broken else good_values)
        if value is not MISSING:
            obj[name] = value
    if EXTRA in broken:
        unknown = json_text.filter(lambda k: k not in good)
        obj.update(draw(st.dictionaries(unknown, json_values, min_size=1, max_size=2)))
    order = draw(st.permutations(list(obj)))
    return {name: obj[name] for name in order}


# Method names include control and non-characters: an agent must never echo them into
# a user property (Mosquitto would drop its connection; see the tests below).
method_names = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=30)
request_good = {
    "jsonrpc": st.just("2.0"),
    "method": st.sampled_from(["ping", "echo"]),
    "params": st.one_of(
        st.sampled_from([MISSING, None, {}]),
        st.fixed_dictionaries({"text": st.one_of(json_text, long_text)}),
    ),
    "id": st.one_of(st.just(MISSING), st.none(), json_text, st.integers()),
}
request_bad = {
    "jsonrpc": st.sampled_from(
        [MISSING, "1.0", "2", "2.00", " 2.0", "", 2.0, 2, None, [], {}, True]
    ),
    "method": weighted(
        (2, method_names),
        (1, st.sampled_from([MISSING, "", None, 0, -1, 3.5, True, [], ["ping"], {}])),
        (1, st.integers()),
    ),
    "params": st.one_of(
        st.just([]),
        st.fixed_dictionaries(
            {"text": json_values}, optional={"times": json_values, "text2": json_text}
        ),
        st.dictionaries(json_text, json_values, max_size=3),
        st.lists(json_values, max_size=3),
        json_text,
        st.integers(),
        st.floats(),
        st.booleans(),
    ),
    "id": st.one_of(
        st.floats(),
        st.booleans(),
        st.lists(json_scalars, max_size=2),
        st.dictionaries(json_text, json_scalars, max_size=2),
    ),
}
requests = encoded(faulty_object(request_good, request_bad))


@st.composite
def deep_nesting(draw: st.DrawFn, inside: tuple[bytes, bytes]) -> bytes:
    """Arrays or objects nested up to 5000 deep, maybe unclosed, maybe inside a request."""
    depth = draw(st.integers(20, 5000))
    opener, closer = draw(st.sampled_from([(b"[", b"]"), (b'{"a":', b"}"), (b'{"":[', b"]}")]))
    body = opener * depth + b"0" + closer * depth
    if draw(st.booleans()):
        body = body[: draw(st.integers(0, len(body) - 1))]
    head, tail = draw(st.sampled_from([(b"", b""), inside]))
    return head + body + tail


@st.composite
def invalid_utf8(draw: st.DrawFn, template: st.SearchStrategy[bytes]) -> bytes:
    """A JSON payload with a byte sequence that is not UTF-8 put somewhere in it."""
    payload = draw(template)
    bad = draw(
        st.sampled_from(
            [
                b"\xff",
                b"\xc3",
                b"\x80",
                b"\xc0\xaf",
                b"\xe2\x82",
                b"\xed\xa0\x80",
                b"\xf4\x90\x80\x80",
            ]
        )
    )
    at = draw(st.integers(0, len(payload)))
    return payload[:at] + bad + payload[at:]


@st.composite
def mutated(draw: st.DrawFn, template: st.SearchStrategy[bytes]) -> bytes:
    """A payload with one byte changed, dropped or inserted, or cut short."""
    payload = draw(template)
    at = draw(st.integers(0, len(payload) - 1))
    byte = bytes([draw(st.integers(0, 255))])
    how = draw(st.sampled_from(["replace", "drop", "insert", "cut"]))
    edits = {
        "replace": payload[:at] + byte + payload[at + 1 :],
        "drop": payload[:at] + payload[at + 1 :],
        "insert": payload[:at] + byte + payload[at:],
        "cut": payload[:at],
    }
    return edits[how]


@st.composite
def huge_text(draw: st.DrawFn) -> str:
    """A string of 256 KiB to 1 MiB once encoded, built by repeating a short one."""
    size = draw(st.integers(BIG, 1024 * KiB))
    chunk = draw(st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=4))
    return chunk * (size // len(chunk.encode()) + 1)


def _repeat(chunk: bytes, size: int) -> bytes:
    return (chunk * (size // len(chunk) + 1))[:size]


valid_call = encoded(
    st.fixed_dictionaries(
        {"jsonrpc": st.just("2.0"), "method": st.just("echo"), "params": st.just({"text": "x"})},
        optional={"id": st.integers(0, 9)},
    )
)
rpc_payloads = weighted(
    (1, st.binary(max_size=64)),
    (1, encoded(json_values)),
    (8, requests),
    (1, deep_nesting((b'{"jsonrpc":"2.0","id":7,"method":"echo","params":{"text":', b"}}"))),
    (1, invalid_utf8(requests)),
    (1, mutated(valid_call)),
)


@st.composite
def oversized_request(draw: st.DrawFn) -> bytes:
    """One request of 256 KiB to 1 MiB, of a kind drawn."""
    text = draw(huge_text())
    size = len(text.encode())
    kind = draw(st.sampled_from(["echo", "id", "member", "params", "batch", "junk"]))
    if kind == "batch":
        return b"[" + b"0," * (size // 2) + b"0]"
    if kind == "junk":
        return _repeat(draw(st.binary(min_size=1, max_size=8)), size)
    bodies = {
        "echo": {"jsonrpc": "2.0", "id": 1, "method": "echo", "params": {"text": text}},
        "id": {"jsonrpc": "2.0", "id": text, "method": "ping"},
        "member": {"jsonrpc": "2.0", "id": 2, "method": "ping", text: 1},
        "params": {
            "jsonrpc": "2.0",
            "id": 3,
            "method": "echo",
            "params": {f"k{i}": "v" * 32 for i in range(size // 40)},
        },
    }
    return json.dumps(bodies[kind], ensure_ascii=False).encode()


user_properties = st.lists(
    st.tuples(
        st.sampled_from(["mqttpush-trace", "mqttpush-cid", "mqttpush-sender", "x"]), mqtt_text
    ),
    max_size=2,
).map(tuple)


@st.composite
def rpc_fuzz(draw: st.DrawFn, payloads: st.SearchStrategy[bytes]) -> Fuzz:
    return Fuzz(
        draw(payloads),
        qos=draw(st.sampled_from([1, 1, 0, 2])),
        reply=draw(st.integers(0, 7)) != 0,  # about one in eight without a Response Topic
        correlation=draw(st.none() | st.binary(min_size=1, max_size=16)),
        expiry=draw(st.sampled_from([None, None, 3600])),
        properties=draw(user_properties),
    )


@st.composite
def batches(
    draw: st.DrawFn, items: st.SearchStrategy[Fuzz], big: st.SearchStrategy[Fuzz]
) -> list[Fuzz]:
    """One example: 45 to 100 messages, and one of 256 KiB to 1 MiB (see ``moderate``)."""
    batch = draw(st.lists(items, min_size=45, max_size=100))
    batch.insert(draw(st.integers(0, len(batch))), draw(big))
    return batch


def moderate(batch: list[Fuzz], round_number: int) -> list[Fuzz]:
    """Keep the big message of every third batch only, to keep the traffic moderate."""
    if round_number % 3 == 0:
        return batch
    return [item for item in batch if len(item.payload) < BIG]


rpc_batches = batches(rpc_fuzz(rpc_payloads), rpc_fuzz(oversized_request()))

STATES = [state.value for state in TaskState]
VALID_TASKS = ["t1", "fuzz-task", "émoji-✓", "a.b-c_d", "x" * 256]
# Legal MQTT topic levels that are not valid task ids.
INVALID_TASKS = ["", "$dollar", "has space", "nbsp\u00a0", "y" * 257]
iso_times = st.datetimes(timezones=st.just(UTC)).map(datetime.isoformat)


def notification_members(
    task: str,
) -> tuple[dict[str, st.SearchStrategy[Any]], dict[str, st.SearchStrategy[Any]]]:
    """Good and bad values of each member of a notification sent on ``.../push/{task}``."""
    good = {
        "id": st.sampled_from([MISSING, ID_MARK]),
        "task_id": st.just(task),
        "seq": st.integers(1, 2**31),
        "state": st.sampled_from([MISSING, *STATES]),
        "message": weighted((3, json_text), (1, long_text)),
        "timestamp": st.one_of(st.just(MISSING), iso_times),
        "data": st.one_of(
            st.just(MISSING), st.none(), st.dictionaries(json_text, json_values, max_size=3)
        ),
    }
    bad = {
        "id": st.sampled_from([None, 7, 1.5, True, ["x"], {}]),
        "task_id": st.one_of(
            st.sampled_from(
                [*VALID_TASKS, *INVALID_TASKS, "a/b", "a+b", "#", "+", "$x", " ", "t\x00"]
            ),
            json_scalars,
            st.just(MISSING),
        ),
        "seq": st.one_of(
            st.sampled_from([0, -1, -(2**40), 2**70, "1", "one", "", " 3 ", 2.0, 2.5, True, None]),
            st.integers(),
            st.floats(),
            st.just(MISSING),
        ),
        "state": st.sampled_from(["done", "WORKING", "", None, 1, [], "submitted "]),
        "message": st.one_of(json_values, st.just(MISSING)),
        "timestamp": st.one_of(
            st.sampled_from(["", "yesterday", 0, 1.5, None, [], {}, "2026-02-30T00:00:00Z"]),
            json_text,
        ),
        "data": json_values,
    }
    return good, bad


@functools.cache
def push_payloads(task: str, *, oversized: bool) -> st.SearchStrategy[bytes]:
    """Payloads for ``.../push/{task}`` (built once per task: strategies are costly to build)."""
    if oversized:
        return oversized_notification(task)
    minimal = encoded(
        st.fixed_dictionaries(
            {"task_id": st.just(task), "seq": st.integers(1, 99), "message": json_text}
        )
    )
    return weighted(
        (1, st.binary(max_size=64)),
        (1, encoded(json_values)),
        (8, encoded(faulty_object(*notification_members(task)))),
        (1, deep_nesting((b'{"task_id":"t1","seq":1,"message":"m","data":{"d":', b"}}"))),
        (1, invalid_utf8(minimal)),
        (1, mutated(minimal)),
    )


push_properties = st.lists(
    st.tuples(
        st.sampled_from(["mqttpush-sender", "mqttpush-trace", "mqttpush-token"]),
        st.one_of(st.sampled_from([SENDER, "fuzz@raw.fabric", "not an address"]), mqtt_text),
    ),
    max_size=2,
).map(tuple)


@st.composite
def push_fuzz(draw: st.DrawFn, *, oversized: bool = False) -> Fuzz:
    task = draw(st.sampled_from(VALID_TASKS * 6 + INVALID_TASKS))
    return Fuzz(
        draw(push_payloads(task, oversized=oversized)),
        qos=draw(st.sampled_from([1, 1, 0, 2])),
        properties=draw(push_properties),
        task=task,
    )


@st.composite
def oversized_notification(draw: st.DrawFn, task: str) -> bytes:
    text = draw(huge_text())
    size = len(text.encode())
    kind = draw(st.sampled_from(["message", "data", "member", "task", "junk"]))
    if kind == "junk":
        return _repeat(draw(st.binary(min_size=1, max_size=8)), size)
    base: dict[str, Any] = {"id": ID_MARK, "task_id": task, "seq": 1, "message": "m"}
    extras: dict[str, dict[str, Any]] = {
        "message": {"message": text},
        "data": {"data": {f"k{i}": i for i in range(size // 12)}},
        "member": {text: 1},
        "task": {"task_id": text},
    }
    return json.dumps(base | extras[kind], ensure_ascii=False).encode()


push_batches = batches(push_fuzz(), push_fuzz(oversized=True))


# --- oracles -----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Expected:
    """What the reply to one request must be: its id and the acceptable outcomes."""

    request_id: Any
    outcomes: frozenset[int | str]  # JSON-RPC error codes, or RESULT
    result: Any = None


def _parse(payload: bytes) -> tuple[bool, Any]:
    try:
        return True, pydantic_core.from_json(payload)
    except ValueError:
        return False, None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _request_shape(obj: dict[str, Any]) -> str:
    """Whether a request object is valid ("ok"), invalid ("bad") or either ("either")."""
    jsonrpc, method = obj.get("jsonrpc"), obj.get("method")
    if (
        set(obj) - {"jsonrpc", "method", "params", "id"}
        or not (isinstance(jsonrpc, str) and jsonrpc == "2.0")
        or not (isinstance(method, str) and method)
        or not isinstance(obj.get("params"), dict | list | None)
    ):
        return "bad"
    request_id = obj.get("id")
    if request_id is None or isinstance(request_id, str) or _is_int(request_id):
        return "ok"
    # The protocol says only that an id "should" be a string or an integer: a boolean or
    # an integral float may be taken leniently (replied with id null) or refused.
    if isinstance(request_id, bool) or (
        isinstance(request_id, float) and math.isfinite(request_id) and request_id.is_integer()
    ):
        return "either"
    return "bad"


def _call_outcome(method: str, params: Any) -> tuple[int | str, Any]:
    """The outcome of a valid request on the Target agent: an error code or a result."""
    if method not in {"ping", "echo"}:
        return -32601, None
    if isinstance(params, list):
        return -32602, None
    named = params or {}
    if method == "ping":
        return (RESULT, "pong") if not named else (-32602, None)
    if set(named) == {"text"} and isinstance(named["text"], str):
        return RESULT, named["text"]
    return -32602, None


def expect_request(payload: bytes) -> Expected:
    """The reply docs/protocol.md gives for one payload sent to the Target agent."""
    parsed, obj = _parse(payload)
    if not parsed:
        return Expected(None, frozenset({-32700}))
    if not isinstance(obj, dict):
        return Expected(None, frozenset({-32600}))
    raw_id = obj.get("id")
    request_id = raw_id if isinstance(raw_id, str) or _is_int(raw_id) else None
    shape = _request_shape(obj)
    if shape == "bad":
        return Expected(request_id, frozenset({-32600}))
    outcome, result = _call_outcome(obj["method"], obj.get("params"))
    outcomes = {outcome} if shape == "ok" else {outcome, -32600}
    return Expected(request_id, frozenset(outcomes), result)


ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?(Z|\+00:00)")


def _valid_level(value: str) -> bool:
    """A valid topic level per docs/protocol.md, checked here independently."""
    return (
        0 < len(value) <= 256
        and not any(c in "/+#\x00" or c.isspace() for c in value)
        and not value.startswith("$")
    )


def _seq_verdict(seq: Any) -> str:
    if _is_int(seq):
        if seq < 1:
            return "bad"
        return "ok" if seq < 2**63 else "either"
    if isinstance(seq, float):
        return "either" if math.isfinite(seq) else "bad"
    # Lenient conversions ("3", true) may or may not be taken.
    return "either" if isinstance(seq, str | bool) else "bad"


def _timestamp_verdict(value: Any) -> str:
    if isinstance(value, str) and ISO_UTC.fullmatch(value):
        try:
            datetime.fromisoformat(value)
        except ValueError:
            return "bad"  # the form of a date, but no such day
        return "ok"
    return "either" if isinstance(value, str | int | float) else "bad"


def expect_notification(payload: bytes, task: str) -> str:
    """Whether a payload on ``.../push/{task}`` is a valid notification: ok, bad or either."""
    parsed, obj = _parse(payload)
    if not parsed or not isinstance(obj, dict):
        return "bad"
    required = {"task_id", "seq", "message"}
    if not required <= set(obj) or set(obj) - required - {"id", "state", "timestamp", "data"}:
        return "bad"
    task_id = obj["task_id"]
    verdicts = {
        "ok" if isinstance(task_id, str) and _valid_level(task_id) and task_id == task else "bad",
        _seq_verdict(obj["seq"]),
        "ok" if isinstance(obj["message"], str) else "bad",
        "ok" if isinstance(obj.get("id", ""), str) else "bad",
        "ok" if obj.get("state", "working") in STATES else "bad",
        _timestamp_verdict(obj["timestamp"]) if "timestamp" in obj else "ok",
        "ok" if isinstance(obj.get("data"), dict | None) else "bad",
    }
    return next(v for v in ("bad", "either", "ok") if v in verdicts)


def _explicit_id(payload: bytes) -> set[str]:
    """The id a valid notification payload sets itself, if any."""
    return {obj["id"]} if "id" in (obj := pydantic_core.from_json(payload)) else set()


# --- harness -----------------------------------------------------------------------------


class RawClient:
    """A plain MQTT 5 client: publishes the fuzz, and keeps what its subscriptions get."""

    def __init__(self, settings: Settings) -> None:
        self.transport = MqttTransport(settings.broker)
        self.inbox: dict[str, list[Message]] = {}
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> RawClient:
        await self.transport.connect()
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        await self.transport.disconnect()

    async def _read(self) -> None:
        ack = getattr(self.transport, "ack", None)  # transports with manual acknowledgement
        async for message in self.transport.messages():
            self.inbox.setdefault(message.topic, []).append(message)
            if ack is not None:
                await ack(message)

    def check_alive(self) -> None:
        assert self._reader is not None
        assert not self._reader.done(), "the raw client lost its connection"

    async def send(self, topic: str, item: Fuzz, response_topic: str | None = None) -> None:
        await self.transport.publish(
            Message(
                topic=topic,
                payload=item.payload,
                qos=item.qos,
                response_topic=response_topic,
                correlation_data=item.correlation,
                message_expiry=item.expiry,
                user_properties=item.properties,
            )
        )


async def settle(done: Callable[[], bool], what: Callable[[], str]) -> None:
    """Wait until ``done()``, at most ROUND_LIMIT seconds, else fail saying ``what()``."""
    try:
        await eventually(done, timeout=ROUND_LIMIT)
    except TimeoutError:
        raise AssertionError(f"not settled within {ROUND_LIMIT:g} s: {what()}") from None


async def run_batches(
    strategy: st.SearchStrategy[list[Fuzz]],
    examples: int,
    check: Callable[[list[Fuzz]], Coroutine[Any, Any, None]],
) -> None:
    """Run ``check`` on ``examples`` generated batches, on this event loop.

    Hypothesis runs in a worker thread; each example hands its batch to this loop, where
    the agents keep running between examples.
    """
    loop = asyncio.get_running_loop()

    @hypothesis_settings(FUZZ, max_examples=examples)
    @given(batch=strategy)
    def one_batch(batch: list[Fuzz]) -> None:
        future = asyncio.run_coroutine_threadsafe(check(batch), loop)
        try:
            future.result(timeout=ROUND_LIMIT + 10)
        finally:
            future.cancel()

    await asyncio.to_thread(one_batch)


def _delta(agent: Agent, before: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in dataclasses.asdict(agent.stats).items()}


class Target(Agent):
    """Two operations that never fail, and a count of how often they ran."""

    def __init__(self) -> None:
        super().__init__()
        self.executed = 0

    @operation
    async def ping(self) -> str:
        self.executed += 1
        return "pong"

    @operation
    async def echo(self, text: str) -> str:
        self.executed += 1
        return text


# --- the RPC topic -----------------------------------------------------------------------


@dataclasses.dataclass
class RpcRun:
    fabric: Fabric
    agent: Target
    raw: RawClient
    reply_base: str
    rounds: int = 0
    sent: int = 0
    answered: dict[str, Fuzz] = dataclasses.field(default_factory=dict)
    oversized: int = 0
    outcomes: collections.Counter[int | str] = dataclasses.field(
        default_factory=collections.Counter
    )

    async def check(self, generated: list[Fuzz]) -> None:
        n, self.rounds = self.rounds, self.rounds + 1
        batch = moderate(generated, n)
        agent, raw = self.agent, self.raw
        before, executed_before = dataclasses.asdict(agent.stats), agent.executed
        rpc_topic = self.fabric.topics.rpc(agent.address)
        replied: dict[str, tuple[Fuzz, Expected]] = {}
        silent: list[Expected] = []
        for i, item in enumerate(batch):
            expected = expect_request(item.payload)
            reply_topic = f"{self.reply_base}/{n}/{i}" if item.reply else None
            await raw.send(rpc_topic, item, reply_topic)
            if reply_topic is None:
                silent.append(expected)
            else:
                replied[reply_topic] = (item, expected)
            self.oversized += len(item.payload) >= BIG
        self.sent += len(batch)
        self.answered.update({topic: item for topic, (item, _) in replied.items()})

        def done() -> bool:
            d = _delta(agent, before)
            finished = d["request_errors"] + agent.executed - executed_before
            return (
                d["requests"] == len(batch)
                and finished == len(batch)
                and all(topic in raw.inbox for topic in replied)
            )

        await settle(
            done,
            lambda: (
                f"{_delta(agent, before)}, no reply to "
                f"{[replied[t][0] for t in replied if t not in raw.inbox][:3]}"
            ),
        )
        outcomes = [
            check_reply(item, expected, raw.inbox[topic], str(agent.address))
            for topic, (item, expected) in replied.items()
        ]
        self.outcomes.update(outcomes)
        results = outcomes.count(RESULT)
        d = _delta(agent, before)
        executed = agent.executed - executed_before
        assert d["requests"] == len(batch)
        assert d["request_errors"] == len(batch) - executed
        assert d["handler_failures"] == d["requests_expired"] == 0, d
        least = sum(e.outcomes == {RESULT} for e in silent)
        most = sum(RESULT in e.outcomes for e in silent)
        assert results + least <= executed <= results + most
        assert self.fabric.reconnects == self.fabric.task_failures == self.fabric.unrouted == 0
        raw.check_alive()


def check_reply(item: Fuzz, expected: Expected, replies: list[Message], address: str) -> int | str:
    """Check the one reply to ``item``; return its outcome (RESULT or the error code)."""
    assert len(replies) == 1, f"{len(replies)} replies to {item!r}"
    (reply,) = replies
    assert reply.correlation_data == item.correlation, item
    assert reply.content_type == "application/json", item
    assert reply.user_property("mqttpush-sender") == address, item
    body = json.loads(reply.payload)
    assert isinstance(body, dict), item
    assert body.get("jsonrpc") == "2.0", (item, body)
    assert body.get("id") == expected.request_id, (item, body.get("id"))
    assert type(body.get("id")) is type(expected.request_id), (item, body.get("id"))
    if "result" in body:
        assert set(body) == {"jsonrpc", "id", "result"}, (item, set(body))
        assert RESULT in expected.outcomes, (item, expected, str(body)[:300])
        assert body["result"] == expected.result, item
        return RESULT
    assert set(body) == {"jsonrpc", "id", "error"}, (item, set(body))
    error = body["error"]
    assert error["code"] in expected.outcomes, (item, expected, str(error)[:300])
    assert isinstance(error["message"], str), item
    assert error["message"], item
    code: int = error["code"]
    return code


@pytest.mark.timeout_s(120)
async def test_fuzzed_requests_each_get_one_json_rpc_reply_and_the_agent_keeps_serving(settings):
    async with (
        Fabric(settings) as fabric,
        Fabric(settings) as client,
        RawClient(settings) as raw,
    ):
        agent = await fabric.serve(Target(), TARGET)
        reply_base = f"{settings.topic_prefix}/fuzz/replies"
        await raw.transport.subscribe(f"{reply_base}/#")
        run = RpcRun(fabric, agent, raw, reply_base)

        await run_batches(rpc_batches, 45, run.check)

        assert run.rounds == 45
        assert run.sent >= 2000
        assert run.oversized >= 15  # the oversized batches (a random payload may be big too)
        # Every kind of answer came up, many times.
        assert all(run.outcomes[o] >= 20 for o in (RESULT, -32700, -32600, -32601, -32602)), (
            run.outcomes
        )
        await asyncio.sleep(0.3)  # a late second reply would arrive by now
        assert set(raw.inbox) == set(run.answered)
        assert [t for t, replies in raw.inbox.items() if len(replies) != 1] == []
        remote = client.remote(TARGET)
        assert await remote.echo(text="still serving") == "still serving"
        assert await remote.ping() == "pong"
        assert agent.stats.requests == run.sent + 2
        assert agent.stats.handler_failures == 0
        assert fabric.reconnects == fabric.task_failures == 0


# --- the push topics ---------------------------------------------------------------------


@dataclasses.dataclass
class PushRun:
    fabric: Fabric
    agents: dict[str, Agent]  # by address
    collector: Collector
    raw: RawClient
    rounds: int = 0
    sent: int = 0
    oversized: int = 0
    verdicts: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    sent_to: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)

    async def check(self, generated: list[Fuzz]) -> None:
        n, self.rounds = self.rounds, self.rounds + 1
        batch = moderate(generated, n)
        before = {a: dataclasses.asdict(agent.stats) for a, agent in self.agents.items()}
        got_before = len(self.collector.got)
        sent = dict.fromkeys(self.agents, 0)
        bad = dict.fromkeys(self.agents, 0)
        either = dict.fromkeys(self.agents, 0)
        valid_ids: set[str] = set()
        for i, drawn in enumerate(batch):
            address = list(self.agents)[i % len(self.agents)]
            unique_id = f"fuzz-{n}-{i}".encode()
            item = drawn.with_payload(drawn.payload.replace(ID_MARK.encode(), unique_id))
            verdict = expect_notification(item.payload, item.task)
            topic = f"{self.fabric.topics.push_base(self.agents[address].address)}/{item.task}"
            await self.raw.send(topic, item)
            sent[address] += 1
            bad[address] += verdict == "bad"
            either[address] += verdict == "either"
            if verdict == "ok" and address == COLLECTOR:
                valid_ids.update(_explicit_id(item.payload))
            self.verdicts[verdict] += 1
            self.oversized += len(item.payload) >= BIG
        self.sent += len(batch)
        self.sent_to.update(sent)

        def counted(address: str) -> int:
            d = _delta(self.agents[address], before[address])
            return (
                d["notifications_malformed"]
                + d["notifications"]
                + d.get("notifications_duplicate", 0)
            )

        await settle(
            lambda: all(counted(a) == sent[a] for a in self.agents),
            lambda: f"counted {[counted(a) for a in self.agents]} of {list(sent.values())}",
        )
        for address, agent in self.agents.items():
            d = _delta(agent, before[address])
            assert counted(address) == sent[address], (address, d)
            assert d.get("notifications_duplicate", 0) == 0, (address, d)
            assert d["handler_failures"] == 0, (address, d)
            low, high = bad[address], bad[address] + either[address]
            assert low <= d["notifications_malformed"] <= high, (address, d, low, high)
            if address == COLLECTOR:
                got = self.collector.got[got_before:]
                assert len(got) == d["notifications"], (len(got), d)
                assert valid_ids <= {g.id for g in got}, valid_ids - {g.id for g in got}
                assert all(g.task_id in VALID_TASKS and g.seq >= 1 for g in got)
            else:  # the receiver waits on none of these tasks
                assert d["notifications_unknown_task"] == d["notifications"], (address, d)
            served_on = agent.host
            assert isinstance(served_on, Fabric)
            assert served_on.reconnects == served_on.task_failures == 0, address
        assert self.fabric.unrouted == 0
        self.raw.check_alive()


@pytest.mark.timeout_s(120)
async def test_fuzzed_notifications_are_counted_and_valid_traffic_keeps_flowing(settings):
    async with (
        seed_agents(settings) as (sender, receiver),
        Fabric(settings) as fabric,
        RawClient(settings) as raw,
    ):
        collector = await fabric.serve(Collector(), COLLECTOR)
        run = PushRun(fabric, {RECEIVER: receiver, COLLECTOR: collector}, collector, raw)

        await run_batches(push_batches, 45, run.check)

        assert run.rounds == 45
        assert run.sent >= 2000
        assert run.oversized >= 15  # the oversized batches (a random payload may be big too)
        # Valid and malformed ones came up many times, lenient borderline cases a few.
        assert run.verdicts["ok"] >= 100, run.verdicts
        assert run.verdicts["bad"] >= 1000, run.verdicts
        assert run.verdicts["either"] >= 10, run.verdicts
        # Every notification published was counted once: malformed, or handled (for the
        # receiver, which waits on none of these tasks, as one for an unknown task).
        before = dataclasses.asdict(receiver.stats)
        assert before["notifications_malformed"] + before["notifications"] == run.sent_to[RECEIVER]
        assert before["notifications_unknown_task"] == before["notifications"]
        assert (
            collector.stats.notifications_malformed + len(collector.got) == run.sent_to[COLLECTOR]
        )
        assert collector.stats.notifications == len(collector.got)

        # The seed scenario: nine notifications through the receiver that took the fuzz.
        assert await run_client(settings) == {"notifications": NINE}
        after = _delta(receiver, before)
        assert after["notifications"] == 10  # the nine and the final "completed"
        assert after["notifications_malformed"] == after["notifications_unknown_task"] == 0
        # And the collector still gets a real task's notifications.
        got = len(collector.got)
        remote = fabric.remote(SENDER)
        await remote.register_push_endpoint(config={"task_id": "after-fuzz", "address": COLLECTOR})
        await remote.run_task(task_id="after-fuzz")
        await eventually(lambda: len(collector.got) == got + 10)
        assert [n.message for n in collector.got[got : got + 9]] == NINE
        assert collector.got[-1].state is TaskState.COMPLETED
        assert sender.stats.handler_failures == receiver.stats.handler_failures == 0


# --- known bugs, pinned (strict: they fail loudly once fixed) -------------------------------


async def _call_raw(settings: Settings, fabric: Fabric, payload: bytes) -> Message | None:
    """Send one request with a Response Topic; return the reply, or None if the link broke."""
    async with RawClient(settings) as raw:
        reply_topic = f"{settings.topic_prefix}/fuzz/one"
        await raw.transport.subscribe(reply_topic)
        item = Fuzz(payload, correlation=b"c1")
        await raw.send(fabric.topics.rpc(Address.parse(TARGET)), item, reply_topic)
        await eventually(
            lambda: reply_topic in raw.inbox or fabric.reconnects > 0 or fabric.task_failures > 0,
            timeout=5,
        )
        return raw.inbox[reply_topic][0] if reply_topic in raw.inbox else None


async def test_a_method_name_with_a_control_character_gets_an_error_reply(settings):
    async with Fabric(settings) as fabric:
        await fabric.serve(Target(), TARGET)
        reply = await _call_raw(settings, fabric, b'{"jsonrpc":"2.0","id":1,"method":"a\\u0001"}')
        assert fabric.reconnects == 0
        assert reply is not None
        assert json.loads(reply.payload)["error"]["code"] == -32601


async def test_a_method_name_over_64_kib_gets_an_error_reply(settings):
    async with Fabric(settings) as fabric:
        await fabric.serve(Target(), TARGET)
        payload = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "m" * 70_000}).encode()
        reply = await _call_raw(settings, fabric, payload)
        assert fabric.task_failures == 0
        assert reply is not None
        assert json.loads(reply.payload)["error"]["code"] == -32601


async def test_a_task_id_with_a_control_character_never_breaks_the_senders_connection(settings):
    async with Fabric(settings) as fabric, Fabric(settings) as client:
        await fabric.serve(PushSender(count=1, interval=0), SENDER)
        sender = client.remote(SENDER)
        with contextlib.suppress(InvalidParamsError):  # refusing the id is a fine outcome too
            await sender.register_push_endpoint(config={"task_id": "a\x01", "address": COLLECTOR})
            await sender.run_task(task_id="a\x01")
        with contextlib.suppress(TimeoutError):
            await eventually(lambda: fabric.reconnects > 0, timeout=1.5)
        assert fabric.reconnects == 0
