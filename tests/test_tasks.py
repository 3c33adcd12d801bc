import asyncio

import pytest

from mqttpush import TaskNotFoundError, TaskState, TaskStateError
from mqttpush.agent.task import TaskRunner
from mqttpush.agent.tasks import TaskRegistry
from mqttpush.models import ErrorInfo


def test_lifecycle_and_terminal_states_are_final():
    reg = TaskRegistry()
    runner, created = reg.create("t1", {"a": 1})
    assert created
    assert reg.create("t1")[1] is False  # same id: same task, nothing new
    runner.transition(TaskState.WORKING)
    runner.transition(TaskState.COMPLETED, result={"ok": 1})
    assert runner.done.is_set()
    status = runner.status()
    assert status.state is TaskState.COMPLETED
    assert status.result == {"ok": 1}
    for state in TaskState:
        with pytest.raises(TaskStateError):
            runner.transition(state)


def test_illegal_transitions_are_refused():
    reg = TaskRegistry()
    runner, _ = reg.create("t")
    with pytest.raises(TaskStateError):
        runner.transition(TaskState.COMPLETED)  # never worked
    with pytest.raises(TaskNotFoundError):
        reg.get("missing")


def test_finished_tasks_are_bounded():
    reg = TaskRegistry(max_finished=3)
    forgotten: list[str] = []
    for i in range(10):
        runner, _ = reg.create(f"t{i}")
        forgotten += runner.transition(TaskState.CANCELED)
    assert len(reg) == 3
    assert forgotten == [f"t{i}" for i in range(7)]
    assert reg.get("t9").state is TaskState.CANCELED
    with pytest.raises(TaskNotFoundError):
        reg.get("t0")


def test_a_task_goes_to_the_store_and_back_unchanged():
    runner = TaskRunner("t", {"n": 1})
    runner.transition(TaskState.WORKING)
    runner.transition(TaskState.FAILED, error=ErrorInfo(type="KeyError", message="x"))
    back = TaskRunner.from_stored(runner.to_stored())
    assert back.status() == runner.status()
    assert back.done.is_set()


def test_sequence_numbers_are_reserved_in_blocks_and_never_repeat_after_a_restart():
    runner = TaskRunner("t")
    assert runner.next_seq() == (1, True)  # a new block: save before sending
    assert runner.next_seq() == (2, False)
    restarted = TaskRunner.from_stored(runner.to_stored())
    seq, _ = restarted.next_seq()
    assert seq > 100  # past every number the first run may have used


async def test_a_task_asked_to_stop_pushes_no_more():
    runner = TaskRunner("t")
    runner.transition(TaskState.WORKING)
    runner.check_can_push()
    assert runner.request_cancel() is None  # no work attached
    with pytest.raises(asyncio.CancelledError):
        runner.check_can_push()
