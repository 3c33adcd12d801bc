"""The deadlines of calls: TimeoutError on expiry, a cancellation stays one, one timer."""

from __future__ import annotations

import asyncio

import pytest

from mqttpush.rpc.deadline import Deadline, Deadlines


def _deadlines() -> Deadlines:
    return Deadlines(asyncio.get_running_loop())


async def test_the_block_raises_timeout_error_once_the_deadline_passes():
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(TimeoutError), _deadlines().start(0.05) as deadline:
        await asyncio.sleep(5)
    assert deadline.expired
    assert 0.04 < loop.time() - started < 1
    task = asyncio.current_task()
    assert task is not None
    assert task.cancelling() == 0  # the cancellation it made is taken back


async def test_a_block_done_in_time_is_left_alone():
    with _deadlines().start(0.05) as deadline:
        await asyncio.sleep(0)
    await asyncio.sleep(0.1)  # the deadline ended: no cancellation arrives later
    assert not deadline.expired


async def test_a_cancellation_from_elsewhere_stays_a_cancellation():
    deadlines = _deadlines()
    entered = asyncio.Event()

    async def wait() -> None:
        with deadlines.start(5):
            entered.set()
            await asyncio.sleep(5)

    task = asyncio.create_task(wait())
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_cancellation_together_with_the_deadline_stays_a_cancellation():
    deadlines = _deadlines()
    entered = asyncio.Event()
    started: list[Deadline] = []

    async def wait() -> None:
        with deadlines.start(5) as mine:
            started.append(mine)
            entered.set()
            await asyncio.sleep(5)

    task = asyncio.create_task(wait())
    await entered.wait()
    started[0].expire()  # the time is up ...
    task.cancel()  # ... and someone cancels the task in the same loop iteration
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_an_exception_in_the_block_passes_through():
    deadlines = _deadlines()

    async def fail() -> None:
        with deadlines.start(5):
            await asyncio.sleep(0)
            raise ValueError("inner")

    with pytest.raises(ValueError, match="inner"):
        await fail()


async def test_each_task_times_out_at_its_own_deadline_whatever_the_order_they_came_in():
    deadlines = _deadlines()
    loop = asyncio.get_running_loop()
    started = loop.time()
    ended: dict[float, float] = {}

    async def wait(seconds: float) -> None:
        with pytest.raises(TimeoutError), deadlines.start(seconds):
            await asyncio.sleep(5)
        ended[seconds] = loop.time() - started

    async def in_time() -> None:
        with deadlines.start(0.05):
            await asyncio.sleep(0.01)

    await asyncio.gather(wait(0.3), wait(0.1), in_time(), wait(0.2))
    assert sorted(ended, key=ended.__getitem__) == [0.1, 0.2, 0.3]
    for seconds, after in ended.items():
        assert seconds - 0.01 <= after < seconds + 0.5
    assert len(deadlines) == 0  # every entry left the heap once due


async def test_ended_deadlines_do_not_pile_up():
    deadlines = _deadlines()
    for _ in range(1_000):
        with deadlines.start(60):
            await asyncio.sleep(0)
    assert len(deadlines) <= 200


def test_a_deadline_needs_a_task():
    loop = asyncio.new_event_loop()
    try:
        with pytest.raises(RuntimeError):
            Deadlines(loop).start(1.0)
    finally:
        loop.close()
