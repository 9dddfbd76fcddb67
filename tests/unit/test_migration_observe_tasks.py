"""Which tasks a ZkMigration counts as failed or lost in a master's /state
(operator/zkmigration/observe.py), as real Mesos reports them to a partition-aware framework."""

from typing import Any

from orchestrator_operator.operator.zkmigration.observe import _from_state


def _task(task_id: str, state: str, at: float = 100.0) -> dict[str, Any]:
    return {"id": task_id, "state": state, "statuses": [{"state": state, "timestamp": at}]}


def test_partition_aware_states_and_unreachable_tasks_count_as_lost() -> None:
    # Mesos 1.11 (mesos.proto, master/readonly_handler.cpp): a partition-aware framework's
    # task on an unreachable agent is TASK_UNREACHABLE under `unreachable_tasks`, and one
    # unknown to its registered agent TASK_GONE; TASK_LOST only for other frameworks.
    state = {
        "frameworks": [{
            "id": "marathon", "active": True,
            "tasks": [_task("web.1", "TASK_RUNNING")],
            "unreachable_tasks": [_task("web.2", "TASK_UNREACHABLE")],
            "completed_tasks": [
                _task("web.3", "TASK_GONE"), _task("web.4", "TASK_GONE_BY_OPERATOR"),
                _task("web.5", "TASK_FINISHED"), _task("web.6", "TASK_LOST"),
            ],
        }],
    }  # fmt: skip
    view = _from_state(state, None)
    assert view["running_tasks"] == {"web.1"}
    assert view["failed_tasks"] == {"web.2", "web.3", "web.4", "web.6"}


def test_only_tasks_that_ended_after_the_migration_began_count() -> None:
    state = {
        "frameworks": [{
            "id": "marathon",
            "unreachable_tasks": [_task("old", "TASK_UNREACHABLE", at=50.0)],
            "completed_tasks": [_task("new", "TASK_GONE", at=150.0)],
        }],
    }  # fmt: skip
    assert _from_state(state, since=100.0)["failed_tasks"] == {"new"}
