"""The pool's shared reply cache over a store: replay, bounds, expiry, a failing store."""

from __future__ import annotations

import asyncio

from mqttpush.rpc.cache import ResponseCache, SharedReplies
from mqttpush.store import MemoryTaskStore
from mqttpush.transport import Message

KEY = ("reply/topic", b"corr" + bytes(16))


def _shared(
    store: MemoryTaskStore, owner: str, *, keep: int = 1_000, max_reply_bytes: int = 1_000
) -> SharedReplies:
    return SharedReplies(
        store,
        owner,
        "sender@fame.fabric",
        claim_ttl=0.2,
        keep=keep,
        keep_bytes=1 << 20,
        max_reply_bytes=max_reply_bytes,
    )


def _reply(payload: bytes = b'{"jsonrpc":"2.0","id":1,"result":7}') -> Message:
    return Message(
        topic="reply/topic",
        payload=payload,
        content_type="application/json",
        correlation_data=b"corr",
        user_properties=(("mqttpush-sender", "sender@fame.fabric"), ("x", "y")),
    )


async def test_a_reply_saved_by_one_copy_is_replayed_by_another():
    store = MemoryTaskStore()
    one, two = _shared(store, "one"), _shared(store, "two")
    assert (await one.claim(KEY)).claimed
    assert (await two.claim(KEY)).pending
    await one.save(KEY, _reply())
    found = await two.claim(KEY)
    assert found.reply is not None
    request = Message("agent/rpc", b"{}", response_topic="reply/topic", correlation_data=b"corr")
    replayed = two.replay(found.reply, request)
    assert (replayed.topic, replayed.payload) == ("reply/topic", _reply().payload)
    assert replayed.correlation_data == b"corr"
    assert replayed.content_type == "application/json"
    assert replayed.user_properties == _reply().user_properties
    other_agent = SharedReplies(
        store, "two", "other@fame.fabric", claim_ttl=1, keep=9, keep_bytes=999, max_reply_bytes=99
    )
    assert (await other_agent.claim(KEY)).claimed  # keys are scoped by agent


async def test_a_repeat_waits_for_the_claim_and_runs_once_it_expires():
    store = MemoryTaskStore()
    one, two = _shared(store, "one"), _shared(store, "two")
    assert (await one.claim(KEY)).claimed  # then "one" dies without a reply
    async with asyncio.timeout(5):
        found = await two.wait(KEY)
    assert found.claimed
    assert found.owner == "two"


async def test_a_reply_over_the_limit_is_not_kept_and_its_claim_is_given_up():
    store = MemoryTaskStore()
    one, two = _shared(store, "one", max_reply_bytes=200), _shared(store, "two")
    assert (await one.claim(KEY)).claimed
    await one.save(KEY, _reply(b"x" * 500))
    assert (await two.claim(KEY)).claimed  # runs again there


async def test_the_cache_is_pruned_to_its_bounds_every_100_replies():
    store = MemoryTaskStore()
    one = _shared(store, "one", keep=10)
    for n in range(100):
        key = ("reply/topic", b"%d" % n)
        assert (await one.claim(key)).claimed
        await one.save(key, _reply())
    assert await store.prune_replies(1_000, 1 << 30) == 0  # nothing beyond: pruned to 10
    assert sum([(await one.claim(("reply/topic", b"%d" % n))).claimed for n in range(100)]) == 90


async def test_a_failing_store_lets_the_request_run_here():
    store = MemoryTaskStore()
    one = _shared(store, "one")
    await store.close()
    assert (await one.claim(KEY)).claimed
    await one.save(KEY, _reply())  # logged, not raised


async def test_an_abandoned_entry_lets_a_later_repeat_ask_again():
    cache = ResponseCache(10)
    future = cache.begin(KEY)
    cache.abandon(KEY, future)
    assert future.done()
    assert future.result() is None
    assert cache.lookup(KEY) is None
    assert cache.bytes == 0
