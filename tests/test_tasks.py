import pytest

from mqttpush import TaskNotFoundError, TaskState, TaskStateError
from mqttpush.agent.tasks import TaskRegistry


def test_lifecycle_and_terminal_states_are_final():
    reg = TaskRegistry()
    record, created = reg.create("t1", {"a": 1})
    assert created
    assert reg.create("t1")[1] is False  # same id: same task, nothing new
    reg.transition(record, TaskState.WORKING)
    reg.transition(record, TaskState.COMPLETED, result={"ok": 1})
    assert record.done.is_set()
    status = record.status()
    assert status.state is TaskState.COMPLETED
    assert status.result == {"ok": 1}
    for state in TaskState:
        with pytest.raises(TaskStateError):
            reg.transition(record, state)


def test_illegal_transitions_are_refused():
    reg = TaskRegistry()
    record, _ = reg.create("t")
    with pytest.raises(TaskStateError):
        reg.transition(record, TaskState.COMPLETED)  # never worked
    with pytest.raises(TaskNotFoundError):
        reg.get("missing")


def test_finished_tasks_are_bounded():
    reg = TaskRegistry(max_finished=3)
    for i in range(10):
        record, _ = reg.create(f"t{i}")
        reg.transition(record, TaskState.CANCELED)
    assert len(reg) == 3
    assert reg.get("t9").state is TaskState.CANCELED
    with pytest.raises(TaskNotFoundError):
        reg.get("t0")
