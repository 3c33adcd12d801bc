"""The shared reply cache of every task store: claims, replies, expiry, bounds."""

import asyncio

import pytest

from mqttpush.store import MemoryTaskStore, SqliteTaskStore
from mqttpush.store.postgres import PostgresTaskStore


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def make_store(request, tmp_path):
    """Make a new, empty store of each kind; open it with ``async with``."""
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_url")
        return lambda: PostgresTaskStore(url, migrate=True)
    if request.param == "sqlite":
        return lambda: SqliteTaskStore(tmp_path / "s.db")
    return MemoryTaskStore


async def test_the_first_claimer_runs_others_wait_then_get_its_reply(make_store):
    async with make_store() as store:
        first = await store.claim_reply("k", "copy-a", 30)
        assert first.claimed
        assert not first.pending
        running = await store.claim_reply("k", "copy-b", 30)
        assert running.pending
        assert running.owner == "copy-a"
        assert (await store.claim_reply("k", "copy-a", 30)).pending  # its own run too
        assert await store.save_reply("k", "copy-a", b"\x00reply\xff")
        replied = await store.claim_reply("k", "copy-b", 30)
        assert not replied.claimed
        assert replied.reply == b"\x00reply\xff"
        assert not await store.save_reply("k", "copy-b", b"other")  # the first reply stays
        assert (await store.claim_reply("k", "copy-c", 30)).reply == b"\x00reply\xff"
        assert (await store.claim_reply("other", "copy-b", 30)).claimed


async def test_an_expired_claim_without_a_reply_goes_to_the_next_claimer(make_store):
    async with make_store() as store:
        assert (await store.claim_reply("k", "dead", 0.05)).claimed
        await asyncio.sleep(0.2)
        again = await store.claim_reply("k", "alive", 30)
        assert again.claimed
        assert again.owner == "alive"
        assert (await store.claim_reply("k", "third", 30)).pending
        assert await store.save_reply("k", "alive", b"r")
        await asyncio.sleep(0.2)
        replied = await store.claim_reply("k", "third", 0.05)  # a reply never expires
        assert replied.reply == b"r"


async def test_a_dropped_claim_lets_the_next_repeat_run(make_store):
    async with make_store() as store:
        assert (await store.claim_reply("k", "a", 30)).claimed
        await store.drop_reply("k", "b")  # not its claim: kept
        assert (await store.claim_reply("k", "b", 30)).pending
        await store.drop_reply("k", "a")
        assert (await store.claim_reply("k", "b", 30)).claimed
        assert await store.save_reply("k", "b", b"r")
        await store.drop_reply("k", "b")  # a saved reply is not dropped
        assert (await store.claim_reply("k", "c", 30)).reply == b"r"


async def test_claims_racing_for_one_key_give_it_to_one(make_store):
    async with make_store() as store:
        claims = await asyncio.gather(*(store.claim_reply("k", f"copy-{n}", 30) for n in range(12)))
        winners = [claim for claim in claims if claim.claimed]
        assert len(winners) == 1
        assert {claim.owner for claim in claims} == {winners[0].owner}


async def test_prune_keeps_the_newest_by_count_and_by_bytes(make_store):
    async with make_store() as store:
        for n in range(6):
            key = f"k{n}"  # 2 bytes of key
            assert (await store.claim_reply(key, "a", 30)).claimed
            assert await store.save_reply(key, "a", b"x" * 8)  # 10 bytes a row
        assert await store.prune_replies(4, 1_000) == 2
        assert (await store.claim_reply("k0", "b", 30)).claimed  # pruned: runs again
        assert (await store.claim_reply("k1", "b", 30)).claimed
        assert (await store.claim_reply("k2", "b", 30)).reply == b"x" * 8
        # Newest first: k1 (2 bytes, a claim), k0 (2), k5, k4, k3, k2 (10 each)
        assert await store.prune_replies(100, 15) == 3
        assert (await store.claim_reply("k5", "b", 30)).reply == b"x" * 8
        assert (await store.claim_reply("k4", "b", 30)).claimed
        assert await store.prune_replies(0, 0) == 4
        with pytest.raises(ValueError, match=">= 0"):
            await store.prune_replies(-1, 0)


async def test_claim_arguments_are_checked(make_store):
    async with make_store() as store:
        with pytest.raises(ValueError, match="ttl"):
            await store.claim_reply("k", "a", 0)
