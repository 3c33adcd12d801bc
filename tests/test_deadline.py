"""The Deadline of a call: TimeoutError on expiry, and a cancellation stays one."""

from __future__ import annotations

import asyncio

import pytest

from mqttpush.rpc.deadline import Deadline


async def test_the_block_raises_timeout_error_once_the_deadline_passes():
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(TimeoutError), Deadline(loop, started + 0.05) as deadline:
        await asyncio.sleep(5)
    assert deadline.expired
    assert 0.04 < loop.time() - started < 1
    task = asyncio.current_task()
    assert task is not None
    assert task.cancelling() == 0  # the cancellation it made is taken back


async def test_a_block_done_in_time_is_left_alone():
    loop = asyncio.get_running_loop()
    with Deadline(loop, loop.time() + 0.05) as deadline:
        await asyncio.sleep(0)
    await asyncio.sleep(0.1)  # the timer was cancelled: no cancellation arrives later
    assert not deadline.expired


async def test_a_cancellation_from_elsewhere_stays_a_cancellation():
    loop = asyncio.get_running_loop()
    entered = asyncio.Event()

    async def wait() -> None:
        with Deadline(loop, loop.time() + 5):
            entered.set()
            await asyncio.sleep(5)

    task = asyncio.create_task(wait())
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_cancellation_together_with_the_deadline_stays_a_cancellation():
    loop = asyncio.get_running_loop()
    entered = asyncio.Event()
    deadline: list[Deadline] = []

    async def wait() -> None:
        with Deadline(loop, loop.time() + 5) as mine:
            deadline.append(mine)
            entered.set()
            await asyncio.sleep(5)

    task = asyncio.create_task(wait())
    await entered.wait()
    deadline[0]._expire()  # the timer fires ...
    task.cancel()  # ... and someone cancels the task in the same loop iteration
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_an_exception_in_the_block_passes_through():
    loop = asyncio.get_running_loop()

    async def fail() -> None:
        with Deadline(loop, loop.time() + 5):
            await asyncio.sleep(0)
            raise ValueError("inner")

    with pytest.raises(ValueError, match="inner"):
        await fail()


def test_a_deadline_needs_a_task():
    loop = asyncio.new_event_loop()
    try:
        with pytest.raises(RuntimeError):
            Deadline(loop, 0.0)
    finally:
        loop.close()
